// LayerNorm over the channel axis, the reference for the GPU kernel and the CPU model.
#pragma once

namespace vkattn::cpu {

// out [T, C] = (x [T, C] - mean) / sqrt(var + eps) · w [C] + b [C], mean and biased variance over C, in double.
void layernorm(int T, int C, const float* x, const float* w, const float* b, float eps, float* out);

}  // namespace vkattn::cpu
