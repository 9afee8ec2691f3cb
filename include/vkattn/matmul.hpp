// Dense projection on device tensors: y = x · w (+ bias), the building block of the transformer layers.
#pragma once

#include <vkattn/context.hpp>
#include <vkattn/export.hpp>
#include <vkattn/tensor.hpp>

namespace vkattn {

// y [M, N] f32 = x [M, K] f32 · w [K, N] (f32 or f16) + bias [N] f32 (optional).
VKATTN_API void matmul(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias = nullptr);

// y [M, N] f32 = x [M, K] f32 · wᵀ + bias [N] f32 (optional), w [N, K] (f32, f16 or bf16): the layout of
// PyTorch's nn.Linear and of Llama-family checkpoints.
VKATTN_API void matmul_nt(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias = nullptr);

}  // namespace vkattn
