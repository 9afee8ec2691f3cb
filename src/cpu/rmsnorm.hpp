// RMSNorm over the channel axis (Llama, Mistral, Qwen2), the reference for the GPU kernel and the CPU model.
#pragma once

namespace vkattn::cpu {

// out [T, C] = x [T, C] / sqrt(mean(x²) + eps) · w [C], the mean over C, in double; out may alias x.
// As Hugging Face's LlamaRMSNorm: no mean subtraction, no bias, the gain multiplies after normalising.
void rmsnorm(int T, int C, const float* x, const float* w, float eps, float* out);

}  // namespace vkattn::cpu
