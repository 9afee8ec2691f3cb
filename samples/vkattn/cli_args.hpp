// Strict parsing of the numbers and sizes the CLI takes, for every command: decimal digits only (no "0x10",
// "1e3", "+4", " 4" or "4abc"), a range per option, and "default" only for an absent flag.
#pragma once

#include <CLI/CLI.hpp>

#include <vkattn/units.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vkattn::cli {

// text as an integer in [min, max]; throws vkattn::Error "--option: expected ..., got '...'" otherwise.
int64_t parse_integer(std::string_view text, std::string_view option, int64_t min, int64_t max);
// text as a finite decimal number (digits, one '.', an optional exponent; no hex, inf or nan) in [min, max],
// and not equal to min when min_exclusive.
double parse_real(std::string_view text, std::string_view option, double min, double max, bool min_exclusive = false);

// Options parsed by the functions above; the target keeps its value when the flag is absent. A bad value is a
// CLI::ValidationError, reported like every other parse error (one line, exit code 2).
CLI::Option* add_int(CLI::App& cmd, const std::string& name, int& target, int min, int max, const std::string& help);
CLI::Option* add_int(CLI::App& cmd, const std::string& name, std::optional<int>& target, int min, int max,
                     const std::string& help);
CLI::Option* add_uint64(CLI::App& cmd, const std::string& name, uint64_t& target, const std::string& help);
// A positive finite float; absent leaves nullopt.
CLI::Option* add_positive_float(CLI::App& cmd, const std::string& name, std::optional<float>& target,
                                const std::string& help);

// A finite float in [min, max] (min excluded when min_exclusive); absent keeps the target's value.
CLI::Option* add_float(CLI::App& cmd, const std::string& name, float& target, double min, double max,
                       bool min_exclusive, const std::string& help);

// Untrusted text for a message: at most max_chars, control and non-ASCII bytes escaped as \xNN, "..." when cut.
std::string quoted_prefix(std::string_view text, size_t max_chars = 40);

// Sizes: vkattn::size_str ("32 GiB") and vkattn::bytes_str ("32 GiB (34359738368 bytes)"), the library's own
// (include/vkattn/units.hpp), so that the CLI and the library's messages print sizes alike.
using vkattn::bytes_str;
using vkattn::size_str;
// Bytes of host memory the system says are available now (MemAvailable), or 0 when it cannot tell.
uint64_t host_memory_available();
// Throws vkattn::Error when `what` needs more host memory than is available, before anything is allocated.
void check_host_memory(uint64_t bytes, const std::string& what);

}  // namespace vkattn::cli
