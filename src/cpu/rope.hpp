// Rotary position embedding (RoPE) in Hugging Face's rotate-half convention, and its frequency table.
#pragma once

#include <optional>
#include <vector>

namespace vkattn::cpu {

// config.json's rope_scaling with rope_type "llama3" (Llama 3.1, 3.2): low frequencies slowed by `factor`,
// high ones kept, a smooth blend between, by wavelength against original_max_position_embeddings.
struct Llama3RopeScaling {
    double factor = 8.0;
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    int original_max_position_embeddings = 8192;
};

// inv_freq [D/2]: theta^(−2i/D) for i < D/2, then rescaled as transformers' _compute_llama3_parameters when
// `scaling` is given. D must be even and positive. Computed with transformers' float32 operations in their
// order, not in double: a one-ulp difference here moves the angle at position 100k by ~0.008 rad, so the
// table is what makes our logits agree with Hugging Face's at long contexts. The CPU reference and the GPU
// kernel both take this table.
std::vector<float> rope_inv_freq(int D, double theta, const std::optional<Llama3RopeScaling>& scaling = std::nullopt);

// The angle of pair i at position pos: float(pos) · inv_freq[i] rounded to float, as transformers computes
// it (a float32 product), so the same table and position give the same angle on every backend.
inline float rope_angle(int pos, float inv_freq_i) { return static_cast<float>(pos) * inv_freq_i; }

// Rotates x in place: a [T, H, D] view whose per-position rows are row_stride floats apart (heads D apart,
// so Q or K may sit inside a fused QKV row), at absolute positions pos0 .. pos0 + T − 1. With a the angle of
// pair i < D/2 at position pos0 + t, each head's (x[i], x[i + D/2]) becomes
//   (x[i] · cos a − x[i + D/2] · sin a,  x[i + D/2] · cos a + x[i] · sin a),
// i.e. x · cos + rotate_half(x) · sin. cos and sin and the products in double. inv_freq is [D/2].
void rope(int T, int H, int D, long row_stride, int pos0, const float* inv_freq, float* x);

// The same on a packed x [T, H, D] (row_stride H · D).
inline void rope(int T, int H, int D, int pos0, const float* inv_freq, float* x) {
    rope(T, H, D, static_cast<long>(H) * D, pos0, inv_freq, x);
}

}  // namespace vkattn::cpu
