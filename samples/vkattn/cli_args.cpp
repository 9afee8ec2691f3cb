#include "cli_args.hpp"

#include <vkattn/error.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>

namespace vkattn::cli {
namespace {

[[noreturn]] void refuse(std::string_view option, const std::string& expected, std::string_view text) {
    throw Error(std::string(option) + ": expected " + expected + ", got " + quoted_prefix(text));
}

std::string range_str(int64_t min, int64_t max) {
    if (max == std::numeric_limits<int64_t>::max()) return "an integer >= " + std::to_string(min);
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

// Runs parse on the option's text and turns its vkattn::Error into CLI11's error for a bad value.
template <class Fn>
CLI::Option* add_parsed(CLI::App& cmd, const std::string& name, const std::string& help, Fn parse) {
    auto* opt = cmd.add_option_function<std::string>(
        name,
        [name, parse](const std::string& text) {
            try {
                parse(text);
            } catch (const Error& e) {
                throw CLI::ValidationError(e.what());
            }
        },
        help);
    return opt;
}

}  // namespace

std::string quoted_prefix(std::string_view text, size_t max_chars) {
    std::string out = "'";
    size_t shown = 0;
    for (unsigned char c : text) {
        if (shown >= max_chars) {
            out += "...";
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
        ++shown;
    }
    return out + "'";
}

int64_t parse_integer(std::string_view text, std::string_view option, int64_t min, int64_t max) {
    const std::string expected = range_str(min, max);
    size_t i = 0;
    const bool negative = !text.empty() && text[0] == '-';
    if (negative) ++i;
    if (i == text.size()) refuse(option, expected, text);
    // Magnitude in uint64 so that INT64_MIN parses; anything longer than 19 digits is out of range anyway.
    uint64_t magnitude = 0;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c < '0' || c > '9') refuse(option, expected + " in decimal digits", text);
        if (magnitude > (std::numeric_limits<uint64_t>::max() - uint64_t(c - '0')) / 10) refuse(option, expected, text);
        magnitude = magnitude * 10 + uint64_t(c - '0');
    }
    const uint64_t limit = negative ? uint64_t(std::numeric_limits<int64_t>::max()) + 1
                                    : uint64_t(std::numeric_limits<int64_t>::max());
    if (magnitude > limit) refuse(option, expected, text);
    const int64_t value = negative ? int64_t(0 - magnitude) : int64_t(magnitude);
    if (value < min || value > max) refuse(option, expected, text);
    return value;
}

double parse_real(std::string_view text, std::string_view option, double min, double max, bool min_exclusive) {
    char bounds[96];
    std::snprintf(bounds, sizeof bounds, "a decimal number %s %g and <= %g", min_exclusive ? ">" : ">=", min, max);
    const std::string expected = bounds;
    // Grammar: -?digits[.digits][e[+-]digits] or -?.digits...; strtod alone would take hex, inf and nan.
    size_t i = 0, digits = 0;
    if (i < text.size() && text[i] == '-') ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
    }
    if (digits == 0) refuse(option, expected, text);
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
        size_t exp_digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++exp_digits;
        if (exp_digits == 0) refuse(option, expected, text);
    }
    if (i != text.size() || text.size() > 64) refuse(option, expected, text);
    const double value = std::strtod(std::string(text).c_str(), nullptr);
    if (!std::isfinite(value) || value < min || value > max || (min_exclusive && value == min)) {
        refuse(option, expected, text);
    }
    return value;
}

CLI::Option* add_int(CLI::App& cmd, const std::string& name, int& target, int min, int max, const std::string& help) {
    return add_parsed(cmd, name, help, [&target, name, min, max](const std::string& text) {
               target = int(parse_integer(text, name, min, max));
           })
        ->type_name("INT")
        ->default_str(std::to_string(target));
}

CLI::Option* add_int(CLI::App& cmd, const std::string& name, std::optional<int>& target, int min, int max,
                     const std::string& help) {
    return add_parsed(cmd, name, help, [&target, name, min, max](const std::string& text) {
               target = int(parse_integer(text, name, min, max));
           })
        ->type_name("INT");
}

CLI::Option* add_uint64(CLI::App& cmd, const std::string& name, uint64_t& target, const std::string& help) {
    return add_parsed(cmd, name, help, [&target, name](const std::string& text) {
               target = uint64_t(parse_integer(text, name, 0, std::numeric_limits<int64_t>::max()));
           })
        ->type_name("UINT")
        ->default_str(std::to_string(target));
}

CLI::Option* add_positive_float(CLI::App& cmd, const std::string& name, std::optional<float>& target,
                                const std::string& help) {
    return add_parsed(cmd, name, help, [&target, name](const std::string& text) {
               target = float(parse_real(text, name, 0, double(std::numeric_limits<float>::max()), true));
               if (*target == 0) refuse(name, "a number that is not 0 in float32", text);
           })
        ->type_name("FLOAT");
}

CLI::Option* add_float(CLI::App& cmd, const std::string& name, float& target, double min, double max,
                       bool min_exclusive, const std::string& help) {
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", double(target));
    return add_parsed(cmd, name, help, [&target, name, min, max, min_exclusive](const std::string& text) {
               target = float(parse_real(text, name, min, max, min_exclusive));
           })
        ->type_name("FLOAT")
        ->default_str(shown);
}

uint64_t host_memory_available() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit) {
        if (key == "MemAvailable:") return kib * 1024;
    }
    return 0;
}

void check_host_memory(uint64_t bytes, const std::string& what) {
    const uint64_t available = host_memory_available();
    if (available != 0 && bytes > available) {
        throw Error(what + " needs " + bytes_str(bytes) + " of host memory, more than the " + bytes_str(available) +
                    " available");
    }
}

}  // namespace vkattn::cli
