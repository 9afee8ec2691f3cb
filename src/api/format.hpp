// Text for error messages of the public API.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace vkattn {

// "[2, 12, 64]": a shape or strides as the messages print them.
inline std::string dims_str(std::span<const int64_t> v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

// "34359738368 bytes (34.4 GB)": a byte count as the messages print it, decimal units and the exact count.
inline std::string bytes_str(uint64_t bytes) {
    static const char* const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    double v = double(bytes);
    size_t u = 0;
    while (v >= 1000 && u + 1 < std::size(units)) {
        v /= 1000;
        ++u;
    }
    if (u == 0) return std::to_string(bytes) + " bytes";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%llu bytes (%.1f %s)", static_cast<unsigned long long>(bytes), v, units[u]);
    return buf;
}

}  // namespace vkattn
