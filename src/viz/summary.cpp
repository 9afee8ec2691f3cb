// Per-head numbers; the definitions are in attention_map.hpp.
#include "viz/canvas.hpp"

#include <vkattn/attention_map.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>

namespace vkattn::viz {

std::vector<HeadSummary> summarize_heads(const AttentionProbs& probs) {
    check_probs(probs, "attention probabilities");
    const int Lq = probs.Lq, Lk = probs.Lk;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<HeadSummary> out;
    for (int h = 0; h < probs.H; ++h) {
        double prev = 0, first = 0, distance = 0, entropy = 0;
        int rows_with_prev = 0, rows = 0;
        for (int i = 0; i < Lq; ++i) {
            const float* p = probs.data.data() + (size_t(h) * size_t(Lq) + size_t(i)) * size_t(Lk);
            const int pos = i + Lk - Lq;  // bottom-right aligned
            double sum = 0, d = 0, e = 0;
            for (int j = 0; j < Lk; ++j) {
                const double v = p[j];
                sum += v;
                d += v * std::abs(pos - j);
                if (v > 0) e -= v * std::log(v);
            }
            if (sum == 0) continue;  // no visible key
            ++rows;
            distance += d;
            entropy += e;
            if (pos >= 1 && pos - 1 < Lk) {
                ++rows_with_prev;
                prev += p[pos - 1];
                first += p[0];
            }
        }
        out.push_back({h, rows_with_prev ? prev / rows_with_prev : nan, rows_with_prev ? first / rows_with_prev : nan,
                       rows ? distance / rows : nan, rows ? entropy / rows : nan});
    }
    return out;
}

}  // namespace vkattn::viz
