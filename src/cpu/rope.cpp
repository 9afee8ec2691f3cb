#include "cpu/rope.hpp"

#include <cmath>
#include <numbers>

namespace vkattn::cpu {

std::vector<float> rope_inv_freq(int D, double theta, const std::optional<Llama3RopeScaling>& scaling) {
    const int half = D / 2;
    std::vector<float> inv(half);  // [D/2]
    // transformers: 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), every step in float32. The pow
    // is taken in double and rounded once, which is the correctly rounded float result powf aims for.
    const float base = static_cast<float>(theta);
    for (int i = 0; i < half; ++i) {
        const float e = static_cast<float>(2 * i) / static_cast<float>(D);
        const float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
        inv[i] = 1.0f / p;
    }
    if (!scaling) return inv;

    // _compute_llama3_parameters, step by step. Python scalars meet float32 tensors as float32, and
    // `scalar / tensor` is tensor.reciprocal() * scalar (torch's __rtruediv__).
    const Llama3RopeScaling& s = *scaling;
    const float factor = static_cast<float>(s.factor);
    const float low = static_cast<float>(s.low_freq_factor);
    const double old_context_len = s.original_max_position_embeddings;
    const float low_freq_wavelen = static_cast<float>(old_context_len / s.low_freq_factor);
    const float high_freq_wavelen = static_cast<float>(old_context_len / s.high_freq_factor);
    const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
    const float factor_span = static_cast<float>(s.high_freq_factor - s.low_freq_factor);
    for (float& f : inv) {
        const float wavelen = (1.0f / f) * two_pi;
        if (wavelen < high_freq_wavelen) continue;  // high frequency: kept
        if (wavelen > low_freq_wavelen) {           // low frequency: slowed by factor
            f = f / factor;
            continue;
        }
        // Medium: (1 − smooth) · f / factor + smooth · f, smooth rising from 0 at the low-frequency end to 1.
        const float smooth = ((1.0f / wavelen) * static_cast<float>(old_context_len) - low) / factor_span;
        const float slow = ((1.0f - smooth) * f) / factor;
        const float fast = smooth * f;
        f = slow + fast;
    }
    return inv;
}

void rope(int T, int H, int D, long row_stride, int pos0, const float* inv_freq, float* x) {
    const int half = D / 2;
    for (int t = 0; t < T; ++t) {
        const int pos = pos0 + t;
        for (int h = 0; h < H; ++h) {
            float* xh = x + t * row_stride + static_cast<long>(h) * D;  // [D]
            for (int i = 0; i < half; ++i) {
                const double a = rope_angle(pos, inv_freq[i]);
                const double c = std::cos(a), s = std::sin(a);
                const double x1 = xh[i], x2 = xh[i + half];
                xh[i] = static_cast<float>(x1 * c - x2 * s);
                xh[i + half] = static_cast<float>(x2 * c + x1 * s);
            }
        }
    }
}

}  // namespace vkattn::cpu
