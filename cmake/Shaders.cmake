# Compiles GLSL compute shaders to SPIR-V at build time and embeds them in the library as data.
# Prefers glslc (shaderc, built on glslang); glslangValidator works as well.

find_program(VKATTN_GLSLC NAMES glslc HINTS "$ENV{VULKAN_SDK}/bin" "$ENV{VULKAN_SDK}/Bin")
find_program(VKATTN_GLSLANG NAMES glslangValidator HINTS "$ENV{VULKAN_SDK}/bin" "$ENV{VULKAN_SDK}/Bin")
if(NOT VKATTN_GLSLC AND NOT VKATTN_GLSLANG)
  message(FATAL_ERROR "vkattn needs glslc (Debian: glslc) or glslangValidator (Debian: glslang-tools) to compile its shaders")
endif()

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
