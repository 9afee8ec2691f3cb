#include "cpu/gelu.hpp"

#include <cmath>
#include <numbers>

namespace vkattn::cpu {

void gelu(long n, const float* x, float* out) {
    const double k = std::sqrt(2.0 / std::numbers::pi);
    for (long i = 0; i < n; ++i) {
        const double v = x[i];
        out[i] = static_cast<float>(0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v))));
    }
}

}  // namespace vkattn::cpu
