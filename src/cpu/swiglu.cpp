#include "cpu/swiglu.hpp"

#include <cmath>

namespace vkattn::cpu {

// For x → −∞, exp(−x) overflows to inf and the quotient is −0, the limit; no NaN on any finite input.
double silu(double x) { return x / (1.0 + std::exp(-x)); }

void swiglu(long n, const float* gate, const float* up, float* out) {
    for (long i = 0; i < n; ++i) out[i] = static_cast<float>(silu(gate[i]) * up[i]);
}

}  // namespace vkattn::cpu
