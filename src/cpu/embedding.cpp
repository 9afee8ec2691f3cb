#include "cpu/embedding.hpp"

namespace vkattn::cpu {

void embedding(int T, int C, const int* tokens, const int* positions, const float* wte, const float* wpe,
               float* out) {
    for (int t = 0; t < T; ++t) {
        const float* te = wte + static_cast<long>(tokens[t]) * C;     // [C]
        const float* pe = wpe + static_cast<long>(positions[t]) * C;  // [C]
        float* ot = out + static_cast<long>(t) * C;                   // [C]
        for (int c = 0; c < C; ++c) ot[c] = te[c] + pe[c];
    }
}

}  // namespace vkattn::cpu
