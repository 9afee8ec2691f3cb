#include "cpu/attention.hpp"
#include "cpu/matmul.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/reference.hpp>

#include <string>

namespace vkattn::reference {

std::vector<float> attention(const AttentionShape& s, std::span<const float> q, std::span<const float> k,
                             std::span<const float> v, const AttentionOptions& o) {
    // The checks of vkattn::attention, so that both backends refuse the same inputs.
    const int64_t q_shape[] = {s.B, s.H, s.Lq, s.D}, k_shape[] = {s.B, s.Hkv, s.Lk, s.D};
    check_attention_shapes(q_shape, k_shape, k_shape);
    check_attention_options(o.scale, o.window);
    const size_t nq = size_t(s.B) * s.H * s.Lq * s.D, nk = size_t(s.B) * s.Hkv * s.Lk * s.D;
    if (q.size() != nq || k.size() != nk || v.size() != nk) {
        throw Error("reference::attention: Q, K, V hold " + std::to_string(q.size()) + ", " + std::to_string(k.size()) +
                    ", " + std::to_string(v.size()) + " values; the shape needs " + std::to_string(nq) + ", " +
                    std::to_string(nk) + ", " + std::to_string(nk));
    }
    if (!o.additive_mask.empty() && o.additive_mask.size() != size_t(s.Lq) * s.Lk) {
        throw Error("reference::attention: the additive mask must hold Lq × Lk values");
    }
    if (!o.key_padding_mask.empty() && o.key_padding_mask.size() != size_t(s.B) * s.Lk) {
        throw Error("reference::attention: the key-padding mask must hold B × Lk values");
    }
    cpu::AttentionMask mask{o.causal, o.window, o.additive_mask.empty() ? nullptr : o.additive_mask.data(),
                            o.key_padding_mask.empty() ? nullptr : o.key_padding_mask.data()};
    std::vector<float> out(nq);
    cpu::attention({s.B, s.H, s.Hkv, s.Lq, s.Lk, s.D}, mask, q.data(), k.data(), v.data(), o.scale, out.data());
    return out;
}

std::vector<float> matmul(int M, int K, int N, std::span<const float> x, std::span<const float> w,
                          std::span<const float> bias) {
    if (x.size() != size_t(M) * K || w.size() != size_t(K) * N || (!bias.empty() && bias.size() != size_t(N))) {
        throw Error("reference::matmul: sizes do not match [M, K] · [K, N] + [N]");
    }
    std::vector<float> y(size_t(M) * N);
    cpu::matmul(M, K, N, x.data(), w.data(), bias.empty() ? nullptr : bias.data(), y.data());
    return y;
}

}  // namespace vkattn::reference
