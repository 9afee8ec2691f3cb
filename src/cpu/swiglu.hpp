// The SiLU-gated linear unit of the Llama MLP: down_proj's input is silu(gate_proj(x)) · up_proj(x).
#pragma once

namespace vkattn::cpu {

// silu(x) = x · sigmoid(x) = x / (1 + exp(−x)), in double.
double silu(double x);

// out [n] = silu(gate [n]) · up [n], elementwise, in double; out may alias gate or up.
void swiglu(long n, const float* gate, const float* up, float* out);

}  // namespace vkattn::cpu
