// CPU reference for scaled dot-product attention: plain loops in double, written to read as the math.
// All arrays are contiguous, row-major, float32. It is the oracle of the GPU tests and the `--backend cpu` path.
#pragma once

#include <cstdint>
#include <vector>

namespace vkattn::cpu {

struct AttentionShape {
    int B = 1;    // batch
    int H = 1;    // query heads
    int Hkv = 1;  // key/value heads; H % Hkv == 0, query head h reads kv head h / (H / Hkv)
    int Lq = 1;   // query length
    int Lk = 1;   // key length
    int D = 64;   // head dim
};

// Which keys a query may see. Query i sees key j iff every enabled rule allows it:
//   causal:      j <= i + (Lk - Lq)          (aligned bottom-right, the KV-cache convention)
//   window W>0:  j >  i + (Lk - Lq) - W      (at most W most recent keys, counted from the diagonal)
//   key padding: key_padding[b, j] == 0      (nonzero marks padding, as PyTorch's key_padding_mask)
// and additive[i, j] is added to the scaled score (use -inf to mask). A row with no visible key gives zeros.
// NaN: a NaN score (NaN in q, or in the K of a key the rules show) makes the row NaN, and so does a NaN in the V of
// a key the rules show with a score above -inf; hidden keys never contribute, NaN or not.
struct AttentionMask {
    bool causal = false;
    int window = 0;                        // 0: no window
    const float* additive = nullptr;       // [Lq, Lk] or null, broadcast over B and H
    const float* key_padding = nullptr;    // [B, Lk] or null
};

// True when the positional rules (causal, window, padding) let query i of batch b see key j.
bool key_visible(const AttentionShape& s, const AttentionMask& m, int b, int i, int j);

// scores [B, H, Lq, Lk] = scale · Q [B, H, Lq, D] · Kᵀ (K [B, Hkv, Lk, D]). No masking here.
void attention_scores(const AttentionShape& s, const float* q, const float* k, float scale, float* scores);

// probs [B, H, Lq, Lk] = softmax over j of masked scores, max-subtracted; a fully masked row is all zeros.
void attention_softmax(const AttentionShape& s, const AttentionMask& m, const float* scores, float* probs);

// out [B, H, Lq, D] = probs [B, H, Lq, Lk] · V [B, Hkv, Lk, D]; a zero probability adds nothing, even for NaN in V.
void attention_values(const AttentionShape& s, const float* probs, const float* v, float* out);

// The whole thing: out = softmax(mask(scale · Q Kᵀ)) V, computed in double. scale <= 0 means 1/sqrt(D).
void attention(const AttentionShape& s, const AttentionMask& m, const float* q, const float* k, const float* v,
               float scale, float* out);

}  // namespace vkattn::cpu
