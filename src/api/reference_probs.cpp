// reference::attention_probs: the CPU reference's scores and softmax stages, for attention maps.
#include "cpu/attention.hpp"

#include <vkattn/error.hpp>
#include <vkattn/reference.hpp>

#include <cmath>
#include <string>

namespace vkattn::reference {

std::vector<float> attention_probs(const AttentionShape& s, std::span<const float> q, std::span<const float> k,
                                   const AttentionOptions& o) {
    if (s.B < 1 || s.H < 1 || s.Hkv < 1 || s.Lq < 1 || s.Lk < 1 || s.D < 1 || s.H % s.Hkv != 0) {
        throw Error("reference::attention_probs: invalid shape");
    }
    const size_t nq = size_t(s.B) * s.H * s.Lq * s.D, nk = size_t(s.B) * s.Hkv * s.Lk * s.D;
    if (q.size() != nq || k.size() != nk) {
        throw Error("reference::attention_probs: Q and K hold " + std::to_string(q.size()) + " and " +
                    std::to_string(k.size()) + " values; the shape needs " + std::to_string(nq) + " and " +
                    std::to_string(nk));
    }
    if (!o.additive_mask.empty() && o.additive_mask.size() != size_t(s.Lq) * s.Lk) {
        throw Error("reference::attention_probs: the additive mask must hold Lq × Lk values");
    }
    if (!o.key_padding_mask.empty() && o.key_padding_mask.size() != size_t(s.B) * s.Lk) {
        throw Error("reference::attention_probs: the key-padding mask must hold B × Lk values");
    }
    const cpu::AttentionShape shape{s.B, s.H, s.Hkv, s.Lq, s.Lk, s.D};
    const cpu::AttentionMask mask{o.causal, o.window, o.additive_mask.empty() ? nullptr : o.additive_mask.data(),
                                  o.key_padding_mask.empty() ? nullptr : o.key_padding_mask.data()};
    const float scale = o.scale > 0 ? o.scale : float(1.0 / std::sqrt(double(s.D)));
    std::vector<float> scores(size_t(s.B) * s.H * s.Lq * s.Lk);
    cpu::attention_scores(shape, q.data(), k.data(), scale, scores.data());
    cpu::attention_softmax(shape, mask, scores.data(), scores.data());
    return scores;
}

}  // namespace vkattn::reference
