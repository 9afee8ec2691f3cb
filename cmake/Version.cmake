# vkattn::version() and vkattn::git_commit(): the project version from project(), the commit from git at
# build time (not configure time, so a rebuild after a commit reports the new one). Outside a git checkout
# (a source tarball) the commit is "unknown".
set(VKATTN_GENERATED_DIR ${CMAKE_CURRENT_BINARY_DIR}/generated)
add_custom_target(vkattn_git_version
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DOUT=${VKATTN_GENERATED_DIR}/vkattn_git.h
          -DVERSION=${PROJECT_VERSION} -P ${PROJECT_SOURCE_DIR}/cmake/WriteGitVersion.cmake
  BYPRODUCTS ${VKATTN_GENERATED_DIR}/vkattn_git.h
  COMMENT "vkattn version from git" VERBATIM)
target_include_directories(vkattn_api PRIVATE ${VKATTN_GENERATED_DIR})
add_dependencies(vkattn_api vkattn_git_version)
