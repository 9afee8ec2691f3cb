// Scaled dot-product attention on device tensors, whole or one stage at a time.
//
// Shapes: Q [B, H, Lq, D]; K, V [B, Hkv, Lk, D]; O [B, H, Lq, D] (3-D [H, L, D] views mean B = 1).
// H must be a multiple of Hkv (MHA, GQA, MQA): query head h reads key/value head h / (H / Hkv).
// D is one of 32, 64, 80, 96, 128, 256 and must be the contiguous (stride 1) dimension.
// Storage is f32, or f16 with fp32 arithmetic where the device has 16-bit storage; Q, K, V, O share one dtype.
//
// Masks. Query i sees key j iff every enabled rule allows it (the KV-cache convention, bottom-right aligned):
//   causal:      j <= i + (Lk - Lq)
//   window W>0:  j >  i + (Lk - Lq) - W    (at most W most recent keys)
//   key padding: key_padding_mask[b, j] == 0
// and additive_mask[i, j] is added to the scaled score. A row with no visible key comes out as zeros.
#pragma once

#include <vkattn/context.hpp>
#include <vkattn/export.hpp>
#include <vkattn/tensor.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace vkattn {

// How attention() computes. fused: one kernel streams K and V past each block of queries with an online softmax
// (running max and sum in fp32), so no [B, H, Lq, Lk] buffer exists and any L that fits the device's bindings runs;
// for short Lq and long Lk it splits the keys over many workgroups and merges (split-KV, for decode).
// naive: the three kernels below with the L×L scores on the device (refused when they do not fit).
enum class AttentionImpl { automatic, naive, fused };

struct AttentionParams {
    float scale = 0;                          // 0: 1 / sqrt(D); else positive and finite
    bool causal = false;
    int window = 0;                           // 0: no sliding window; never negative
    const Tensor* additive_mask = nullptr;    // [Lq, Lk] f32, broadcast over B and H
    const Tensor* key_padding_mask = nullptr; // [B, Lk] f32, nonzero marks a padded key
    AttentionImpl impl = AttentionImpl::automatic;  // automatic: fused
};

// What the inputs are called in check_attention_shapes' messages (a CLI passes file names here).
struct AttentionInputNames {
    std::string q = "Q", k = "K", v = "V";
};

// The one validation of an attention's shapes that every backend (vulkan, reference) runs first, callable
// without a device: Q [B, H, Lq, D] or [H, Lq, D]; K [B, Hkv, Lk, D] with Q's B and D and Hkv dividing H; V with
// K's shape; every dimension in 1 .. 2^31 - 1. Throws Error naming the input and the dimension.
VKATTN_API void check_attention_shapes(std::span<const int64_t> q, std::span<const int64_t> k, std::span<const int64_t> v,
                            const AttentionInputNames& names = {});

// The same for the scalars: scale 0 (meaning 1 / sqrt(D)) or positive and finite; window >= 0.
VKATTN_API void check_attention_options(float scale, int window);

// Throws Error, before anything is allocated, when ctx's device cannot hold an attention of Q's shape q and K's
// (and V's) shape k in dtype: each tensor in one allocation, all four in the largest device heap, one head's
// slice in one storage-buffer binding and, for the naive path, the [B, H, Lq, Lk] f32 scores too. The message
// gives the bytes needed and available.
VKATTN_API void check_attention_fits(const Context& ctx, std::span<const int64_t> q, std::span<const int64_t> k, DType dtype,
                          AttentionImpl impl = AttentionImpl::automatic);

// out = softmax(mask(scale · Q Kᵀ)) V: fused by default, or by the three kernels below (params.impl = naive).
VKATTN_API void attention(Context& ctx, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const AttentionParams& params = {});

// scores [B, H, Lq, Lk] f32 = scale · Q Kᵀ (params.scale; masks are applied by attention_softmax).
VKATTN_API void attention_scores(Context& ctx, const TensorView& q, const TensorView& k, Tensor& scores,
                      const AttentionParams& params = {});

// probs [B, H, Lq, Lk] f32 = softmax over keys of masked scores [B, H, Lq, Lk] f32; probs may be scores.
VKATTN_API void attention_softmax(Context& ctx, const Tensor& scores, Tensor& probs, const AttentionParams& params = {});

// out [B, H, Lq, D] = probs [B, H, Lq, Lk] f32 · V [B, Hkv, Lk, D].
VKATTN_API void attention_values(Context& ctx, const Tensor& probs, const TensorView& v, const TensorView& out);

}  // namespace vkattn
