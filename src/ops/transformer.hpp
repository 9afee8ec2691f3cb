// The transformer's other kernels: token + position embedding and LayerNorm (the projections are matmul.hpp).
#pragma once

#include "ops/encoder.hpp"

#include <span>

namespace vkattn::ops {

// x [row0 + t, C] f32 = wte [tokens[t]] + wpe [pos0 + t] for t < T; wte [V, C] and wpe [P, C] in dtype. rows
// is [row0 + T, C] dtype scratch (the same rows are used): the token rows are gathered into it by buffer
// copies, so wte may exceed one binding.
void record_embedding(Encoder& enc, std::span<const int> tokens, int pos0, uint32_t C, DType dtype,
                      const vk::Buffer& wte, const vk::Buffer& wpe, const vk::Buffer& rows, const vk::Buffer& x,
                      uint32_t row0 = 0);
// Its two halves, which a step recorded ahead of its token records apart (model/step_ahead.hpp): the gather of
// the token rows into rows [row0, row0 + T), and x = those rows + wpe [pos0, pos0 + T).
void record_token_rows(Encoder& enc, std::span<const int> tokens, uint32_t C, DType dtype, const vk::Buffer& wte,
                       const vk::Buffer& rows, uint32_t row0 = 0);
// With step (a glsl::StepParams buffer: a decode step recorded once and replayed, model/step_ahead.hpp), pos0 is
// read from it when the dispatch runs, and wpe is bound whole.
void record_position_add(Encoder& enc, uint32_t T, int pos0, uint32_t C, DType dtype, const vk::Buffer& wpe,
                         const vk::Buffer& rows, const vk::Buffer& x, uint32_t row0 = 0,
                         const vk::Buffer* step = nullptr);

// Rows of an f32 buffer: offsets and row strides in elements.
struct RowsRef {
    const vk::Buffer* buffer = nullptr;
    uint32_t offset = 0;
    uint32_t stride = 0;
};

// y [T, C] = layernorm(x [T, C]) · w [C] + b [C], f32.
void record_layernorm(Encoder& enc, uint32_t T, uint32_t C, const RowsRef& x, const vk::Buffer& w,
                      const vk::Buffer& b, const RowsRef& y, float eps);

}  // namespace vkattn::ops
