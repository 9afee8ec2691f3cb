// matmul: Y = X · W (+ bias) (GELU) (+ Y), the projections of the transformer (shaders/matmul.comp).
#pragma once

#include "ops/encoder.hpp"

namespace vkattn::ops {

// A row-major matrix inside a buffer: element offset, rows × cols, row stride >= cols.
struct MatrixRef {
    const vk::Buffer* buffer = nullptr;
    DType dtype = DType::f32;
    uint64_t offset = 0;
    uint32_t rows = 0, cols = 0, stride = 0;
};

MatrixRef matrix(const vk::Buffer& buffer, DType dtype, uint32_t rows, uint32_t cols, uint64_t offset = 0);

struct MatmulEpilogue {
    const vk::Buffer* bias = nullptr;  // [N] f32
    uint64_t bias_offset = 0;
    bool gelu = false;                 // tanh form, after the bias
    bool accumulate = false;           // Y += result (a residual add), after GELU
};

// y [M, N] f32 = x [M, K] f32 · w, where w is [K, N] or, when w_transposed, [N, K] (f32 or f16).
// A w larger than one binding is split: over N when transposed, over K (accumulating) otherwise.
void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& epilogue = {});

}  // namespace vkattn::ops
