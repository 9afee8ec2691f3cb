#include <vkattn/version.hpp>

#include "vkattn_git.h"

namespace vkattn {

std::string version() { return VKATTN_VERSION_STRING; }
std::string git_commit() { return VKATTN_GIT_COMMIT; }

}  // namespace vkattn
