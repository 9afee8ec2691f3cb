// Which vkattn this is: for bug reports and for the provenance of every --json result.
#pragma once

#include <string>

namespace vkattn {

// The release version, e.g. "0.1.0".
std::string version();
// The git commit the library was built from (12 hex digits, "-dirty" with local changes), or "unknown".
std::string git_commit();

}  // namespace vkattn
