// flash_partial: one key block's partial softmax state from the split-KV kernels (see flash_partial.hpp).
// The helpers below mirror ops/flash.cpp's private ones (padded head dim, kernel names, push constants); they
// are kept here so that the fused attention op stays untouched by the ring's needs.
#include "ops/flash_partial.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::ops {
namespace {

constexpr double kLog2e = 1.4426950408889634;

uint32_t padded_dim(uint32_t D) { return std::max(8u, (D + 7) / 8 * 8); }

std::string kernel_name(const char* kernel, DType dtype) {
    return std::string(kernel) + (dtype == DType::f16 ? "_f16" : "_f32");
}

bool rows_aligned(const BoundView& bound, const TensorRef& v) {
    const uint64_t n = 16 / dtype_size(v.dtype);
    return bound.offset % n == 0 && v.stride[0] % n == 0 && v.stride[1] % n == 0 && v.stride[2] % n == 0;
}

uint32_t ceil_div(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }

}  // namespace

FlashPartialLayout flash_partial_layout(const DeviceInfo& device, const AttentionDims& d, DType dtype) {
    const Tuning tune = tuning_for(device);
    FlashPartialLayout l;
    // flash_rows loops once per block of flash_rows_kb keys, the split kernel once per parts keys: each
    // within the device's loop budget (Tuning::loop_budget).
    const auto over_budget = [&](uint32_t keys_per_iteration) {
        return tune.loop_budget > 0 && ceil_div(d.Lk, keys_per_iteration) > tune.loop_budget;
    };
    l.rows = tune.flash_rows && !over_budget(tune.flash_rows_kb);
    // split: one slice, each invocation of the workgroup keeping its own state.
    l.parts = l.rows ? 1 : tune.flash_split_wg;
    if (!l.rows && over_budget(l.parts)) {
        throw Error("a ring attention block of " + std::to_string(d.Lk) + " keys is more than one kernel may loop over on " +
                    device.name + " (" + std::to_string(uint64_t(l.parts) * tune.loop_budget) +
                    " keys); use more ranks");
    }
    const uint64_t rows = uint64_t(d.B) * d.H * d.Lq * l.parts;
    l.ml_floats = rows * 2;
    l.scratch_bytes = l.rows ? 0 : rows * (padded_dim(d.D) + 2) * 4;
    l.out_dtype = l.rows ? dtype : DType::f32;
    return l;
}

void record_flash_partial(Encoder& enc, const AttentionDims& d, const TensorRef& q, const TensorRef& k,
                          const TensorRef& v, const MaskArgs& mask, float scale, const vk::Buffer& out,
                          const vk::Buffer& ml) {
    const DeviceInfo& info = enc.device.info();
    const Tuning tune = tuning_for(info);
    const uint32_t dp = padded_dim(d.D);
    const FlashTiles tiles = flash_tiles(tune, info, dp);
    const FlashPartialLayout layout = flash_partial_layout(info, d, q.dtype);
    const uint32_t Z = d.B * d.H;
    if (layout.rows) {  // CPU devices: the fused row kernel, which also writes each row's state
        if (ml.size() < layout.ml_floats * 4 || out.size() < uint64_t(Z) * d.Lq * d.D * dtype_size(q.dtype)) {
            throw Error("flash_partial: output buffers are smaller than the block's state");
        }
        const TensorRef o = contiguous(out, q.dtype, {d.B, d.H, d.Lq, d.D});
        record_flash(enc, d, q, k, v, o, mask, scale, FlashConfig{.variant = FlashVariant::rows, .splits = 0, .row_state = &ml});
        return;
    }
    if (layout.scratch_bytes > info.max_storage_buffer_range) {
        throw Error("a ring attention block needs " + std::to_string(layout.scratch_bytes) +
                    " bytes of partial states, over the device's " + std::to_string(info.max_storage_buffer_range) +
                    "-byte binding limit; use more ranks or fewer heads per call");
    }
    if (ml.size() < layout.ml_floats * 4 || out.size() < uint64_t(Z) * d.Lq * d.D * 4) {
        throw Error("flash_partial: output buffers are smaller than the block's state");
    }
    const vk::Binding unused{q.buffer->get(), 0, std::min<uint64_t>(16, q.buffer->size())};
    const vk::Binding additive = mask.additive ? bind_whole(enc.device, *mask.additive, "the additive mask") : unused;
    const vk::Binding padding =
        mask.key_padding ? bind_whole(enc.device, *mask.key_padding, "the key-padding mask") : unused;

    const BoundView bq = bind_view(enc.device, q, d.H, 0, Z);
    const BoundView bk = bind_view(enc.device, k, d.H, 0, Z);
    const BoundView bv = bind_view(enc.device, v, d.H, 0, Z);
    const TensorRef o = contiguous(out, DType::f32, {d.B, d.H, d.Lq, d.D});
    const BoundView bo = bind_view(enc.device, o, d.H, 0, Z);
    const bool aligned = dp == d.D && rows_aligned(bq, q) && rows_aligned(bk, k) && rows_aligned(bv, v);

    const uint32_t qn = std::min(d.Lq, tiles.split_qn);
    const uint32_t parts = layout.parts;
    const vk::Buffer& scratch = enc.recorder.scratch(layout.scratch_bytes);
    const vk::Binding part_binding{scratch.get(), 0, layout.scratch_bytes};

    const std::string split_name = kernel_name("flash_split", q.dtype);
    const vk::Pipeline& split = enc.pipelines.get(
        {split_name, spirv(split_name), 8, sizeof(glsl::FlashParams), {parts, dp, qn, aligned ? 1u : 0u}});
    glsl::FlashParams p{};
    p.q = view_params(bq, q);
    p.k = view_params(bk, k);
    p.v = view_params(bv, v);
    p.o = view_params(bo, o);
    p.H = d.H;
    p.Hkv = d.Hkv;
    p.Lq = d.Lq;
    p.Lk = d.Lk;
    p.D = d.D;
    p.z0 = 0;
    p.scale_log2 = float(double(scale) * kLog2e);
    p.causal = mask.causal ? 1 : 0;
    p.window = mask.window;
    p.has_additive = mask.additive ? 1 : 0;
    p.has_key_padding = mask.key_padding ? 1 : 0;
    p.split_keys = d.Lk;  // one slice: the whole block
    p.nz = Z;
    p.ml_offset = uint32_t(uint64_t(Z) * d.Lq * parts * dp);
    // Binding 7 (a replayed decode step's lengths) is not read here: bound to Q like the absent masks.
    const vk::Binding bindings[] = {bq.binding, bk.binding, bv.binding, bo.binding, additive, padding, part_binding,
                                    unused};
    enc.recorder.dispatch(split, bindings, &p, sizeof(p),
                          folded_grid(info, ceil_div(d.Lq, qn), Z, "ring attention block"), split_name);

    const std::string merge_name = "flash_merge_f32";  // partials are f32 whatever Q's dtype: keep O_block exact
    const vk::Pipeline& merge = enc.pipelines.get(
        {merge_name, spirv(merge_name), 2, sizeof(glsl::FlashMergeParams), {tune.flash_merge_wg, dp}});
    glsl::FlashMergeParams mp{};
    mp.o = view_params(bo, o);
    mp.H = d.H;
    mp.Lq = d.Lq;
    mp.D = d.D;
    mp.z0 = 0;
    mp.nz = Z;
    mp.parts = parts;
    mp.ml_offset = p.ml_offset;
    const vk::Binding merge_bindings[] = {part_binding, bo.binding};
    enc.recorder.dispatch(merge, merge_bindings, &mp, sizeof(mp),
                          folded_grid(info, ceil_div(uint64_t(d.Lq) * (dp / 4), tune.flash_merge_wg), Z,
                                      "ring attention block merge"),
                          merge_name);
    const VkBufferCopy region{uint64_t(p.ml_offset) * 4, 0, layout.ml_floats * 4};
    enc.recorder.copy(scratch.get(), ml.get(), std::span(&region, 1));
}

}  // namespace vkattn::ops
