// Text for error messages of the public API.
#pragma once

#include <vkattn/units.hpp>  // bytes_str: sizes in the messages

#include <cstdint>
#include <span>
#include <string>

namespace vkattn {

// "[2, 12, 64]": a shape or strides as the messages print them.
inline std::string dims_str(std::span<const int64_t> v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

}  // namespace vkattn
