// The CPU reference on host arrays: the oracle of vkattn's tests, for users to check a GPU result against.
#pragma once

#include <vkattn/export.hpp>

#include <span>
#include <vector>

namespace vkattn::reference {

struct AttentionShape {
    int B = 1, H = 1, Hkv = 1, Lq = 1, Lk = 1, D = 64;
};

struct AttentionOptions {
    float scale = 0;                          // 0: 1 / sqrt(D); else positive and finite
    bool causal = false;
    int window = 0;                           // 0: no sliding window; never negative
    std::span<const float> additive_mask{};   // [Lq, Lk] or empty
    std::span<const float> key_padding_mask{};  // [B, Lk] or empty, nonzero marks padding
};

// out [B, H, Lq, D] = softmax(mask(scale · Q Kᵀ)) V for contiguous Q [B, H, Lq, D], K and V [B, Hkv, Lk, D],
// computed in double. Same conventions and the same input checks as vkattn::attention (see attention.hpp).
VKATTN_API std::vector<float> attention(const AttentionShape& shape, std::span<const float> q, std::span<const float> k,
                             std::span<const float> v, const AttentionOptions& options = {});

// probs [B, H, Lq, Lk] = softmax(mask(scale · Q Kᵀ)), the attention weights attention() applies to V; a row with
// no visible key is all zeros. The oracle of attention_scores + attention_softmax.
VKATTN_API std::vector<float> attention_probs(const AttentionShape& shape, std::span<const float> q, std::span<const float> k,
                                   const AttentionOptions& options = {});

// y [M, N] = x [M, K] · w [K, N] (+ bias [N]).
VKATTN_API std::vector<float> matmul(int M, int K, int N, std::span<const float> x, std::span<const float> w,
                          std::span<const float> bias = {});

}  // namespace vkattn::reference
