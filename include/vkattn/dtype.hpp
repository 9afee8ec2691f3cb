// Storage types of device tensors. Arithmetic is always fp32; fp16 and bf16 are storage formats.
#pragma once

#include <vkattn/export.hpp>

#include <cstddef>
#include <string_view>

namespace vkattn {

// bf16 (the top half of an f32: f32's range, 8 mantissa bits) is for weights: the matmul kernels widen it
// exactly in the shader. Attention tensors are f32 or f16.
enum class DType { f32, f16, bf16 };

constexpr size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
constexpr std::string_view dtype_name(DType t) {
    return t == DType::f16 ? "f16" : t == DType::bf16 ? "bf16" : "f32";
}

// x as the device stores it in dtype t (round to nearest even for f16 and bf16), back as float.
VKATTN_API float round_to_dtype(float x, DType t);

}  // namespace vkattn
