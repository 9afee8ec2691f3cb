# PCRE2's 8-bit library as the imported target PCRE2::8BIT, so that no path to it is written into vkattn's
# exported targets (the installed package stays relocatable): PCRE2's own CMake package where there is one
# (vcpkg, a PCRE2 built with CMake), else pkg-config's libpcre2-8 (Debian, Homebrew), else pcre2.h and
# libpcre2-8 found by name. Included by the build and by the installed vkattnConfig.cmake of a static vkattn;
# prints nothing. Sets VKATTN_PCRE2_FOUND.
if(NOT TARGET PCRE2::8BIT)
  find_package(PCRE2 CONFIG QUIET COMPONENTS 8BIT)
endif()
if(NOT TARGET PCRE2::8BIT)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(vkattn_pcre2 QUIET IMPORTED_TARGET libpcre2-8)
  endif()
  if(TARGET PkgConfig::vkattn_pcre2)
    add_library(PCRE2::8BIT INTERFACE IMPORTED)
    set_target_properties(PCRE2::8BIT PROPERTIES INTERFACE_LINK_LIBRARIES PkgConfig::vkattn_pcre2)
  else()
    find_path(VKATTN_PCRE2_INCLUDE_DIR pcre2.h)
    find_library(VKATTN_PCRE2_LIBRARY NAMES pcre2-8)
    if(VKATTN_PCRE2_INCLUDE_DIR AND VKATTN_PCRE2_LIBRARY)
      add_library(PCRE2::8BIT UNKNOWN IMPORTED)
      set_target_properties(PCRE2::8BIT PROPERTIES IMPORTED_LOCATION "${VKATTN_PCRE2_LIBRARY}"
                            INTERFACE_INCLUDE_DIRECTORIES "${VKATTN_PCRE2_INCLUDE_DIR}")
    endif()
  endif()
endif()
if(TARGET PCRE2::8BIT)
  set(VKATTN_PCRE2_FOUND TRUE)
else()
  set(VKATTN_PCRE2_FOUND FALSE)
endif()
