// Which vkattn this is: for bug reports and for the provenance of every --json result.
#pragma once

#include <vkattn/export.hpp>

#include <string>

namespace vkattn {

// The release version, e.g. "0.1.0".
VKATTN_API std::string version();
// The git commit the library was built from (12 hex digits, "-dirty" with local changes), or "unknown".
VKATTN_API std::string git_commit();

}  // namespace vkattn
