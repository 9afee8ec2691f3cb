# Compiles GLSL compute shaders to SPIR-V at build time and embeds them in the library as data.
# Prefers glslc (shaderc, built on glslang); glslangValidator works as well.

find_program(VKATTN_GLSLC NAMES glslc HINTS "$ENV{VULKAN_SDK}/bin" "$ENV{VULKAN_SDK}/Bin")
find_program(VKATTN_GLSLANG NAMES glslangValidator HINTS "$ENV{VULKAN_SDK}/bin" "$ENV{VULKAN_SDK}/Bin")
if(NOT VKATTN_GLSLC AND NOT VKATTN_GLSLANG)
  message(FATAL_ERROR "vkattn needs glslc (Debian: glslc) or glslangValidator (Debian: glslang-tools) to compile its shaders")
endif()
if(VKATTN_GLSLC)
  message(STATUS "vkattn: shader compiler ${VKATTN_GLSLC}")
else()
  message(STATUS "vkattn: shader compiler ${VKATTN_GLSLANG}")
endif()

# Cooperative matrices (tensor cores): the matmul_coopmat variants are built only when the compiler takes
# GL_NV_cooperative_matrix (Debian 12's glslang does; GL_KHR_cooperative_matrix needs a newer one and is not
# used yet). VKATTN_HAVE_COOPMAT_NV=1 then tells the C++ side that the modules are embedded.
option(VKATTN_COOPMAT "Build the cooperative-matrix matmul where the shader compiler supports it" ON)
set(VKATTN_HAVE_COOPMAT_NV OFF)
if(VKATTN_COOPMAT)
  set(probe_dir ${CMAKE_BINARY_DIR}/feature-tests)
  file(WRITE ${probe_dir}/coopmat_nv.comp [=[
#version 450
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer Buf { float c[]; };
shared float16_t s[256];
void main() {
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a;
    coopMatLoadNV(a, s, 0, 16, false);
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> d = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    d = coopMatMulAddNV(a, a, d);
    coopMatStoreNV(d, c, 0, 16, false);
}
]=])
  if(VKATTN_GLSLC)
    set(probe ${VKATTN_GLSLC} --target-env=vulkan1.1 -fshader-stage=compute -o ${probe_dir}/coopmat_nv.spv
              ${probe_dir}/coopmat_nv.comp)
  else()
    set(probe ${VKATTN_GLSLANG} --target-env vulkan1.1 -V -S comp -o ${probe_dir}/coopmat_nv.spv
              ${probe_dir}/coopmat_nv.comp)
  endif()
  execute_process(COMMAND ${probe} RESULT_VARIABLE probe_rc OUTPUT_VARIABLE probe_out ERROR_VARIABLE probe_out)
  if(probe_rc EQUAL 0)
    set(VKATTN_HAVE_COOPMAT_NV ON)
    add_compile_definitions(VKATTN_HAVE_COOPMAT_NV=1)
  endif()
endif()
message(STATUS "vkattn: cooperative-matrix matmul (GL_NV_cooperative_matrix): ${VKATTN_HAVE_COOPMAT_NV}")

# vkattn_compile_shader(<out_list_var> NAME <variant> SOURCE <file.comp> [DEFINES A=1 ...])
function(vkattn_compile_shader out_var)
  cmake_parse_arguments(arg "" "NAME;SOURCE" "DEFINES" ${ARGN})
  set(spv ${CMAKE_CURRENT_BINARY_DIR}/spv/${arg_NAME}.spv)
  set(dep ${CMAKE_CURRENT_BINARY_DIR}/spv/${arg_NAME}.d)
  set(defs "")
  foreach(d IN LISTS arg_DEFINES)
    list(APPEND defs "-D${d}")
  endforeach()
  get_filename_component(src ${arg_SOURCE} ABSOLUTE)
  if(VKATTN_GLSLC)
    set(cmd ${VKATTN_GLSLC} --target-env=vulkan1.1 -O -fshader-stage=compute
            -I${CMAKE_CURRENT_SOURCE_DIR}/include ${defs} -MD -MF ${dep} -o ${spv} ${src})
    set(depfile DEPFILE ${dep})
  else()
    set(cmd ${VKATTN_GLSLANG} --target-env vulkan1.1 -V -S comp
            -I${CMAKE_CURRENT_SOURCE_DIR}/include ${defs} --depfile ${dep} -o ${spv} ${src})
    set(depfile DEPFILE ${dep})
  endif()
  add_custom_command(OUTPUT ${spv}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/spv
    COMMAND ${cmd}
    MAIN_DEPENDENCY ${src}
    ${depfile}
    COMMENT "GLSL ${arg_NAME}"
    VERBATIM)
  set(${out_var} ${${out_var}} ${spv} PARENT_SCOPE)
endfunction()

# vkattn_embed_spirv(<target> <generated.cpp> SPV <files...>): a C++ table name -> SPIR-V words.
function(vkattn_embed_spirv out_cpp)
  cmake_parse_arguments(arg "" "" "SPV" ${ARGN})
  add_custom_command(OUTPUT ${out_cpp}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_cpp} "-DSPV=${arg_SPV}" -P ${PROJECT_SOURCE_DIR}/cmake/EmbedSpirv.cmake
    DEPENDS ${arg_SPV} ${PROJECT_SOURCE_DIR}/cmake/EmbedSpirv.cmake
    COMMENT "Embedding SPIR-V"
    VERBATIM)
endfunction()
