// flash_partial: the partial softmax state of one block of keys, for callers that merge blocks themselves
// (ring attention over MPI ranks). On CPU devices it runs flash_rows with row states (one state per row, the
// output in Q's dtype: shaders/flash_rows.comp built with VKATTN_ROW_STATE); on GPUs the split-KV kernel
// (shaders/flash_split.comp) over the whole key block as one slice and the merge kernel (flash_merge.comp) into an
// f32 output, leaving the per-part (max, sum) the split kernel wrote. Either way the caller reads back the
// normalised output and the (max, sum) buffer.
#pragma once

#include "ops/attention.hpp"

namespace vkattn::ops {

// The layout of one flash_partial call's (max, sum) buffer: [B·H, Lq, parts, 2] f32 with base-2 maxima of the
// scaled scores (m = max_j log2(e)·scale·q·k_j) and sums Σ_j 2^(s_j − m) relative to them, NaN sums marking
// rows that saw a NaN score; a part that saw no key has m = −inf and sum 0.
struct FlashPartialLayout {
    bool rows = false;         // flash_rows with row states (CPU devices), else split-KV and merge
    uint32_t parts = 1;        // partial states per row (1, or the split kernel's invocations per workgroup)
    uint64_t ml_floats = 0;    // floats of the (max, sum) buffer
    uint64_t scratch_bytes = 0;  // device scratch the call needs (split: accumulators and (max, sum))
    DType out_dtype = DType::f32;  // of `out`: Q's dtype on the rows path, f32 on the split path
};
FlashPartialLayout flash_partial_layout(const DeviceInfo& device, const AttentionDims& dims, DType dtype);

// out [B, H, Lq, D] contiguous (layout.out_dtype) = softmax(mask(scale · Q Kᵀ)) V over this block's keys, and
// ml [B·H, Lq, parts, 2] f32 contiguous (layout above) their maxima and sums, so that the block's log-sum-exp per
// row is M + log2(Σ_p sum_p · 2^(m_p − M)), M = max_p m_p. q, k, v and masks as record_flash.
// Throws Error when one call's scratch exceeds a binding; callers split heads or rows then.
void record_flash_partial(Encoder& enc, const AttentionDims& dims, const TensorRef& q, const TensorRef& k,
                          const TensorRef& v, const MaskArgs& mask, float scale, const vk::Buffer& out,
                          const vk::Buffer& ml);

}  // namespace vkattn::ops
