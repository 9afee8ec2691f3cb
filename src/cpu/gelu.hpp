// GELU, tanh approximation: GPT-2's "gelu_new" (PyTorch's gelu(approximate="tanh")).
#pragma once

namespace vkattn::cpu {

// out [n] = 0.5 · x · (1 + tanh(sqrt(2/π) · (x + 0.044715 · x³))), x [n], in double; out may alias x.
void gelu(long n, const float* x, float* out);

}  // namespace vkattn::cpu
