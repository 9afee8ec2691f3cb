# cmake --install puts the library, the public headers, a CMake package config and a pkg-config file in the
# prefix, so that another project can find_package(vkattn CONFIG) and link vkattn::vkattn, or use
# `pkg-config --cflags --libs vkattn` (`--static` too for a static libvkattn.a). Everything installed is
# relocatable: paths are relative to the file that holds them, and dependencies are found again by name.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_target_property(vkattn_type vkattn TYPE)
if(vkattn_type STREQUAL "SHARED_LIBRARY")
  set(VKATTN_SHARED ON)
else()
  set(VKATTN_SHARED OFF)
endif()

install(TARGETS vkattn EXPORT vkattnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/vkattn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET vkattn_cli)
  install(TARGETS vkattn_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# A shared libvkattn is found from the installed programs through a relative RPATH ($ORIGIN/../lib), so the
# prefix can move; a CMAKE_INSTALL_RPATH given on the command line wins.
if(VKATTN_SHARED AND NOT DEFINED CMAKE_INSTALL_RPATH)
  if(APPLE)
    set(origin "@loader_path")
  else()
    set(origin "$ORIGIN")
  endif()
  # vkattn_rpath(<target> <install dir, relative to the prefix or absolute>)
  function(vkattn_rpath target dir)
    if(NOT TARGET ${target})
      return()
    endif()
    if(NOT IS_ABSOLUTE "${dir}")
      set(dir "${CMAKE_INSTALL_PREFIX}/${dir}")
    endif()
    file(RELATIVE_PATH rel "${dir}" "${CMAKE_INSTALL_FULL_LIBDIR}")
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "${origin}/${rel}")
  endfunction()
  vkattn_rpath(vkattn_cli "${CMAKE_INSTALL_BINDIR}")
  vkattn_rpath(vkattn_python "${VKATTN_PYTHON_INSTALL_DIR}")
endif()

install(EXPORT vkattnTargets NAMESPACE vkattn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vkattn)
configure_package_config_file(cmake/vkattnConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/vkattnConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vkattn)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/vkattnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vkattnConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/vkattnConfigVersion.cmake
  cmake/vkattnFindPCRE2.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vkattn)

# vkattn.pc. Its prefix is found from where the file lies (${pcfiledir}), so it moves with the prefix.
set(pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${pc_dir}")
  file(RELATIVE_PATH pc_to_prefix "${pc_dir}" "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH pc_to_prefix "/prefix/${pc_dir}" "/prefix")
endif()
set(pc_prefix "\${pcfiledir}/${pc_to_prefix}")
string(REGEX REPLACE "/$" "" pc_prefix "${pc_prefix}")
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(pc_requires "")
set(pc_cflags "")
set(pc_libs "-L\${libdir} -lvkattn")
set(pc_libs_private "")
set(pc_requires_private "")
if(VKATTN_HAS_MPI)
  # ring.hpp includes <mpi.h> and the library links MPI publicly, as vkattn::vkattn does.
  string(APPEND pc_cflags " -DVKATTN_HAS_MPI=1")
  find_package(PkgConfig QUIET)
  foreach(module ompi-cxx mpich)
    if(PKG_CONFIG_FOUND AND NOT pc_requires)
      pkg_check_modules(vkattn_pc_${module} QUIET ${module})
      if(vkattn_pc_${module}_FOUND)
        set(pc_requires "${module}")
      endif()
    endif()
  endforeach()
  if(NOT pc_requires)
    get_target_property(mpi_includes MPI::MPI_CXX INTERFACE_INCLUDE_DIRECTORIES)
    get_target_property(mpi_libs MPI::MPI_CXX INTERFACE_LINK_LIBRARIES)
    foreach(dir IN LISTS mpi_includes)
      string(APPEND pc_cflags " -I${dir}")
    endforeach()
    foreach(lib IN LISTS mpi_libs)
      string(APPEND pc_libs " ${lib}")
    endforeach()
  endif()
endif()
if(NOT VKATTN_SHARED)
  # What libvkattn.a links, for `pkg-config --static --libs vkattn`.
  set(pc_requires_private "vulkan libpcre2-8 icu-uc libpng")
  string(APPEND pc_libs_private " ${CMAKE_THREAD_LIBS_INIT}")
endif()
string(STRIP "${pc_cflags}" pc_cflags)
string(STRIP "${pc_libs_private}" pc_libs_private)
string(STRIP "${pc_libs}" pc_libs)
configure_file(cmake/vkattn.pc.in ${CMAKE_CURRENT_BINARY_DIR}/vkattn.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vkattn.pc DESTINATION ${pc_dir})
