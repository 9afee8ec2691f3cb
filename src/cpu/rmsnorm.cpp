#include "cpu/rmsnorm.hpp"

#include <cmath>

namespace vkattn::cpu {

void rmsnorm(int T, int C, const float* x, const float* w, float eps, float* out) {
    for (int t = 0; t < T; ++t) {
        const float* xt = x + static_cast<long>(t) * C;  // [C]
        float* ot = out + static_cast<long>(t) * C;       // [C]

        double ss = 0.0;
        for (int c = 0; c < C; ++c) ss += double(xt[c]) * xt[c];
        const double rrms = 1.0 / std::sqrt(ss / C + static_cast<double>(eps));

        for (int c = 0; c < C; ++c) ot[c] = static_cast<float>(xt[c] * rrms * w[c]);
    }
}

}  // namespace vkattn::cpu
