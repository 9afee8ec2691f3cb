// Storage types of device tensors. Arithmetic is always fp32; fp16 is a storage format.
#pragma once

#include <cstddef>
#include <string_view>

namespace vkattn {

enum class DType { f32, f16 };

constexpr size_t dtype_size(DType t) { return t == DType::f16 ? 2 : 4; }
constexpr std::string_view dtype_name(DType t) { return t == DType::f16 ? "f16" : "f32"; }

// x as the device stores it in dtype t (round to nearest even for f16), back as float.
float round_to_dtype(float x, DType t);

}  // namespace vkattn
