// matmul: Y = X · W (+ bias) (GELU) (+ Y), the projections of the transformer. Three kernels, chosen per device
// and per M by ops/tuning.cpp: shaders/matmul.comp (tiled, GPUs), matmul_simd.comp (CPU devices) and
// matmul_vec.comp (a few rows of X: the decode step).
#pragma once

#include "ops/encoder.hpp"
#include "ops/tuning.hpp"

#include <optional>

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
    // A decode step recorded once and replayed (model/step_ahead.hpp): Y's rows start StepParams.pos rows below
    // y (its KV-cache row), read from this glsl::StepParams buffer when the dispatch runs; y is bound to the end
    // of its buffer. Never the cooperative-matrix kernel.
    const vk::Buffer* step = nullptr;
};

// y [M, N] f32 = x [M, K] f32 · w, where w is [K, N] or, when w_transposed, [N, K] (f32, f16 or bf16;
// bf16 is widened exactly in the shader, and never takes the cooperative-matrix kernel).
// A w larger than one binding is split: over N when transposed, over K (accumulating) otherwise.
void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& epilogue = {});

// For tests and tuning: what record_matmul would otherwise choose itself.
struct MatmulOverride {
    std::optional<MatmulKernel> kernel;  // instead of the choice by M and device
    std::optional<Tuning> tuning;        // instead of tuning_for(device)
    uint64_t max_binding_bytes = 0;      // nonzero: split W as if a binding could cover no more
};
void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& epilogue, const MatmulOverride& override_);

}  // namespace vkattn::ops
