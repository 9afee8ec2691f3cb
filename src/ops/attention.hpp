// The three kernels of inspectable attention: scores = scale · Q Kᵀ, probs = softmax(mask(scores)), O = probs · V.
// Shapes are checked by the public API before these are called; these record dispatches only.
#pragma once

#include "ops/encoder.hpp"

namespace vkattn::ops {

// Every attention path takes any head dim D from 1 to this (the fused kernels keep D-long rows in registers).
constexpr int64_t kMaxHeadDim = 256;

struct AttentionDims {
    uint32_t B = 1, H = 1, Hkv = 1, Lq = 1, Lk = 1, D = 64;
};

struct MaskArgs {
    bool causal = false;
    uint32_t window = 0;
    const vk::Buffer* additive = nullptr;     // [Lq, Lk] f32
    const vk::Buffer* key_padding = nullptr;  // [B, Lk] f32
};

// scores [B, H, Lq, Lk] f32 contiguous = scale · q [B, H, Lq, D] · k [B, Hkv, Lk, D]ᵀ
void record_qk(Encoder& enc, const AttentionDims& dims, const TensorRef& q, const TensorRef& k,
               const vk::Buffer& scores, float scale);

// probs [B, H, Lq, Lk] f32 = row softmax of masked scores [B, H, Lq, Lk] f32 (probs may be scores)
void record_softmax(Encoder& enc, const AttentionDims& dims, const vk::Buffer& scores, const vk::Buffer& probs,
                    const MaskArgs& mask);

// out [B, H, Lq, D] = probs [B, H, Lq, Lk] f32 · v [B, Hkv, Lk, D]
void record_pv(Encoder& enc, const AttentionDims& dims, const vk::Buffer& probs, const TensorRef& v,
               const TensorRef& out);

// out [B, H, Lq, D] = softmax(mask(scale · Q Kᵀ)) V in one pass per query block (online softmax), with no
// L×L buffer; split over Lk for short Lq (decode). Same views and masks as the three kernels above.
void record_flash(Encoder& enc, const AttentionDims& dims, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                  const TensorRef& out, const MaskArgs& mask, float scale);

// The fused kernels: rows (CPU devices: one query row per invocation, no barrier), tiled (GPUs: shared-memory
// tiles), split (short Lq, long Lk: key slices over many workgroups, then a merge), coopmat (f16 on cooperative
// matrices, ops/flash_coopmat.hpp: automatic only where the device's matmul_f16_path is "coopmat_nv").
enum class FlashVariant { automatic, rows, tiled, split, coopmat };
struct FlashCoopmatConfig;

// What automatic picks on this device for these sizes (the tuning table's rule).
FlashVariant flash_variant(const DeviceInfo& device, const AttentionDims& dims);

// For tests and benchmarks: record_flash with the variant, and for split the number of key slices, forced.
struct FlashConfig {
    FlashVariant variant = FlashVariant::automatic;
    uint32_t splits = 0;  // split: key slices; 0 lets the tuning table choose
    // rows only: also write each row's softmax state [B·H, Lq] × (base-2 max, sum) f32 here, for callers that
    // merge key blocks themselves (flash_partial); see shaders/flash_rows.comp.
    const vk::Buffer* row_state = nullptr;
    // coopmat only: the blocking (e.g. emulate = true); null takes flash_coopmat_config's for the device.
    const FlashCoopmatConfig* coopmat = nullptr;
    // A decode step recorded once and replayed (model/step_ahead.hpp): the kernels read the key count (and split's
    // keys per slice) from this glsl::StepParams buffer when they run. dims.Lk is the count the recording is
    // planned for and k and v are bound for their whole shapes (the cache's rows); a replay is valid at any key
    // count up to those whose flash_plan has this one's variant and splits. Scalar variants, no additive or
    // padding mask, no row states.
    const vk::Buffer* step = nullptr;
    // With step: Q's rows start StepParams.pos rows further than q says (a query inside the KV-cache row the step
    // wrote); q is bound for its whole shape.
    bool q_at_step = false;
};
void record_flash(Encoder& enc, const AttentionDims& dims, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                  const TensorRef& out, const MaskArgs& mask, float scale, const FlashConfig& config);

// What record_flash's automatic choice records for these sizes apart from the bindings (cooperative matrices left
// out): the variant and, for split-KV, the number of key slices, plus the keys per slice, the one figure that
// changes from step to step among recordings that are otherwise the same (same variant and splits).
struct FlashPlan {
    FlashVariant variant = FlashVariant::rows;
    uint32_t splits = 0;      // split: key slices per query block
    uint32_t split_keys = 0;  // split: keys per slice
};
FlashPlan flash_plan(const DeviceInfo& device, const AttentionDims& dims);

}  // namespace vkattn::ops
