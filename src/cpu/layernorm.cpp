#include "cpu/layernorm.hpp"

#include <cmath>

namespace vkattn::cpu {

void layernorm(int T, int C, const float* x, const float* w, const float* b, float eps, float* out) {
    for (int t = 0; t < T; ++t) {
        const float* xt = x + static_cast<long>(t) * C;  // [C]
        float* ot = out + static_cast<long>(t) * C;       // [C]

        double mean = 0.0;
        for (int c = 0; c < C; ++c) mean += xt[c];
        mean /= C;

        // Biased variance (divide by C), as torch.nn.LayerNorm; two passes so large means do not cancel.
        double var = 0.0;
        for (int c = 0; c < C; ++c) {
            const double d = xt[c] - mean;
            var += d * d;
        }
        var /= C;

        const double rstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
        for (int c = 0; c < C; ++c) {
            ot[c] = static_cast<float>((xt[c] - mean) * rstd * w[c] + b[c]);
        }
    }
}

}  // namespace vkattn::cpu
