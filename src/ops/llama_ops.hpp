// The Llama family's kernels besides the projections (matmul.hpp) and attention (attention.hpp): RMSNorm,
// rotary embedding and the SiLU-gated unit. All f32. Offsets and row strides in elements.
#pragma once

#include "ops/encoder.hpp"
#include "ops/transformer.hpp"

namespace vkattn::ops {

// y [T, C] = x [T, C] / sqrt(mean(x²) + eps) · w [C] (Hugging Face's LlamaRMSNorm); y may be x itself.
// wg: invocations per row, a multiple of the subgroup size; 0 takes the device's tuning (tests force others).
void record_rmsnorm(Encoder& enc, uint32_t T, uint32_t C, const RowsRef& x, const vk::Buffer& w, const RowsRef& y,
                    float eps, uint32_t wg = 0);

// Rotary embedding in place on q [1, Hq, T, D] and k [1, Hk, T, D] views (shape {1, heads, T, D}, strides
// {0, D, row stride, 1}, f32: the layout of Q and K inside fused QKV rows or a KV cache), at absolute positions
// pos0 .. pos0 + T − 1, with inv_freq [D/2] f32 from cpu::rope_inv_freq. One dispatch does both; k may be
// absent (heads 0). Hugging Face's rotate-half pairing: i with i + D/2. The kernel's sin and cos take angles
// below 2^24: positions below 2^24 (checked here) and inv_freq <= 1, i.e. rope_theta >= 1, which the config
// reader must check.
// With step (a glsl::StepParams buffer: a decode step recorded once and replayed), pos0 is read from it when the
// dispatch runs, and with k_at_step k's rows start that many rows further than k says (K inside the KV-cache row
// the step wrote; k is then bound to the end of its buffer).
void record_rope(Encoder& enc, uint32_t pos0, const vk::Buffer& inv_freq, const TensorRef& q, const TensorRef& k,
                 const vk::Buffer* step = nullptr, bool k_at_step = false);

// y [T, F] = silu(gate [T, F]) · up [T, F]. With gate and up as the two halves of one [T, 2F] row (the output
// of one matmul against the concatenated [gate; up] weights, which reads X once and dispatches once), the
// refs differ only in offset. y may be the gate view itself; down_proj then reads it with row stride 2F.
void record_swiglu(Encoder& enc, uint32_t T, uint32_t F, const RowsRef& gate, const RowsRef& up, const RowsRef& y);

}  // namespace vkattn::ops
