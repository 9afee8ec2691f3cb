// Dense products for the model's linear layers (Conv1D layout, y = x · W + b) and the tied LM head.
#pragma once

namespace vkattn::cpu {

// out [M, N] = x [M, K] · w [K, N] + bias [N] (bias may be null). Accumulates in double.
// Rows and column tiles are spread over std::thread workers: GPT-2 small's 128-token forward is ~16 G
// multiply-adds, which would take minutes as one naive loop.
void matmul(int M, int K, int N, const float* x, const float* w, const float* bias, float* out);

// out [M, N] = x [M, K] · wᵀ with w [N, K]: the LM head against the token embedding wte [V, C], which is
// stored row per token, so no transposed copy of the largest tensor is needed. Accumulates in double.
void matmul_transposed_b(int M, int K, int N, const float* x, const float* w, float* out);

}  // namespace vkattn::cpu
