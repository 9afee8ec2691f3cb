// Byte counts as vkattn's messages and the CLI print them: binary units next to the exact count.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>

namespace vkattn {

// "32 GiB": binary units, three significant digits at most ("1.5 GiB", "12.3 MiB", "1023 KiB"); "512 bytes"
// below 1 KiB.
inline std::string size_str(uint64_t bytes) {
    static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = double(bytes);
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    if (u == 0) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 1000 ? "%.3g %s" : "%.0f %s", v, units[u]);
    return buf;
}

// "32 GiB (34359738368 bytes)": readable units next to the exact count ("512 bytes" alone below 1 KiB).
inline std::string bytes_str(uint64_t bytes) {
    const std::string readable = size_str(bytes);
    if (bytes < 1024) return readable;
    return readable + " (" + std::to_string(bytes) + " bytes)";
}

}  // namespace vkattn
