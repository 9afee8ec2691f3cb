// flash: fused attention with no L×L buffer (shaders/flash_rows.comp, flash_tiled.comp, flash_split.comp,
// flash_merge.comp). Which kernel runs and its tile sizes come from the tuning table (ops/tuning.cpp).
#include "ops/attention.hpp"
#include "ops/flash_coopmat.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace vkattn::ops {
namespace {

constexpr double kLog2e = 1.4426950408889634;
// Scratch of one split-KV dispatch (partial accumulators, maxima and sums), at most; heads are split into
// more dispatches, or slices made fewer, to stay under it.
constexpr uint64_t kScratchCap = uint64_t(64) << 20;
static_assert(sizeof(glsl::FlashParams) <= 128, "Vulkan guarantees 128 bytes of push constants");

// The kernels' head dim: D rounded up to a multiple of 8 (16-byte rows of f16), so D = 1..256 share a few
// pipelines per dtype; columns past D are zeros that the kernels never load or store.
uint32_t padded_dim(uint32_t D) { return std::max(8u, (D + 7) / 8 * 8); }

std::string kernel_name(const char* kernel, DType dtype) {
    return std::string(kernel) + (dtype == DType::f16 ? "_f16" : "_f32");
}

// Whether every row of the view starts on 16 bytes inside its binding, so the kernels may use vector loads.
bool rows_aligned(const BoundView& bound, const TensorRef& v) {
    const uint64_t n = 16 / dtype_size(v.dtype);
    return bound.offset % n == 0 && v.stride[0] % n == 0 && v.stride[1] % n == 0 && v.stride[2] % n == 0;
}

struct Bound {
    BoundView q, k, v, o;
    bool aligned = false;
};

Bound bind_all(Encoder& enc, const AttentionDims& d, const TensorRef& q, const TensorRef& k, const TensorRef& v,
               const TensorRef& o, uint32_t z0, uint32_t z1) {
    Bound b{bind_view(enc.device, q, d.H, z0, z1), bind_view(enc.device, k, d.H, z0, z1),
            bind_view(enc.device, v, d.H, z0, z1), bind_view(enc.device, o, d.H, z0, z1)};
    b.aligned = padded_dim(d.D) == d.D && rows_aligned(b.q, q) && rows_aligned(b.k, k) && rows_aligned(b.v, v) &&
                rows_aligned(b.o, o);
    return b;
}

glsl::FlashParams flash_params(const AttentionDims& d, const MaskArgs& mask, float scale, const Bound& b,
                               const TensorRef& q, const TensorRef& k, const TensorRef& v, const TensorRef& o,
                               uint32_t z0) {
    glsl::FlashParams p{};
    p.q = view_params(b.q, q);
    p.k = view_params(b.k, k);
    p.v = view_params(b.v, v);
    p.o = view_params(b.o, o);
    p.H = d.H;
    p.Hkv = d.Hkv;
    p.Lq = d.Lq;
    p.Lk = d.Lk;
    p.D = d.D;
    p.z0 = z0;
    p.scale_log2 = float(double(scale) * kLog2e);
    p.causal = mask.causal ? 1 : 0;
    p.window = mask.window;
    p.has_additive = mask.additive ? 1 : 0;
    p.has_key_padding = mask.key_padding ? 1 : 0;
    return p;
}

uint32_t ceil_div(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }

// Key slices per query block for split-KV: enough workgroups to fill the device, slices of at least
// flash_split_min_keys, and partials that fit the scratch cap for one (b, h).
uint32_t choose_splits(const Tuning& t, const AttentionDims& d, uint32_t qn) {
    const uint64_t blocks = uint64_t(d.B) * d.H * ceil_div(d.Lq, qn);
    const uint32_t splits = uint32_t(std::max<uint64_t>(1, (t.flash_split_target_wgs + blocks - 1) / blocks));
    return std::min(splits, std::max(1u, d.Lk / t.flash_split_min_keys));
}

// The bindings every flash kernel has beyond Q, K, V and O: 4 additive mask, 5 key padding, 7 the step's
// StepParams (FlashConfig::step), each the `unused` one where absent (every binding must be valid; the kernels
// read none of them then); and FlashParams::step, the VKATTN_STEP_* flags.
struct Extras {
    vk::Binding additive, padding, step;
    uint32_t step_flags = 0;
};

// The kernels' bindings: Q, K, V, O, the masks, binding 6 (the kernel's own, or unused), the step's lengths.
constexpr uint32_t kFlashBindings = 8;

// flash_rows, flash_tiled, or with coop flash_coopmat: one workgroup per block of query rows of one (b, h).
void record_rows_or_tiled(Encoder& enc, const Tuning& tune, const FlashTiles& tiles, bool rows,
                          const AttentionDims& d, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                          const TensorRef& o, const MaskArgs& mask, float scale, const Extras& extras,
                          const vk::Buffer* row_state, const FlashCoopmatConfig* coop = nullptr) {
    const DeviceInfo& info = enc.device.info();
    const char* kernel = row_state != nullptr ? "flash_rows_state" : rows ? "flash_rows" : "flash_tiled";
    const std::string name = coop != nullptr ? coop->kernel() : kernel_name(kernel, q.dtype);
    const TensorRef* views[] = {&q, &k, &v, &o};
    for (auto [z0, z1] : plan_chunks(enc.device, d.B * d.H, d.H, views, "fused attention")) {
        const Bound b = bind_all(enc, d, q, k, v, o, z0, z1);
        std::vector<uint32_t> spec;
        uint32_t rows_per_wg = 0;
        if (coop != nullptr) {
            spec = coop->specialization(d.D);
            rows_per_wg = coop->block_q();
        } else if (rows) {
            spec = {tune.flash_rows_wg, padded_dim(d.D), tiles.rows_r, tune.flash_rows_kb, b.aligned ? 1u : 0u};
            rows_per_wg = tune.flash_rows_wg * tiles.rows_r;
        } else {
            spec = {tiles.bq * tiles.tpr, padded_dim(d.D), tiles.bq, tiles.bk, tiles.tpr};
            rows_per_wg = tiles.bq;
        }
        const vk::Pipeline& pipeline =
            enc.pipelines.get({name, spirv(name), kFlashBindings, sizeof(glsl::FlashParams), std::move(spec)});
        glsl::FlashParams p = flash_params(d, mask, scale, b, q, k, v, o, z0);
        p.step = extras.step_flags;
        const vk::Binding bindings[] = {
            b.q.binding, b.k.binding, b.v.binding, b.o.binding, extras.additive, extras.padding,
            row_state != nullptr ? bind_whole(enc.device, *row_state, "the row states") : extras.step, extras.step};
        enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p),
                              folded_grid(info, ceil_div(d.Lq, rows_per_wg), z1 - z0, "fused attention"), name);
    }
}

// How split-KV cuts the keys for these sizes: splits (0: the tuning table's choice) made to fit the loop budget
// and the scratch cap, never with an empty trailing slice.
struct SplitPlan {
    uint32_t splits = 1;
    uint32_t split_keys = 1;
    uint32_t heads_per_dispatch = 1;
    uint64_t head_bytes = 0;  // partials of one (b, h)
};

SplitPlan plan_split(const DeviceInfo& info, const Tuning& tune, const FlashTiles& tiles, uint32_t splits,
                     const AttentionDims& d) {
    const uint32_t qn = std::min(d.Lq, tiles.split_qn);
    const uint32_t wg = tune.flash_split_wg;
    if (splits == 0) splits = choose_splits(tune, d, qn);
    // Each invocation loops once per wg keys of its slice: slices within the loop budget (Tuning::loop_budget).
    const uint32_t budget_splits = tune.loop_budget > 0 ? ceil_div(d.Lk, uint64_t(wg) * tune.loop_budget) : 1;
    splits = std::clamp(std::max(splits, budget_splits), 1u, d.Lk);
    // Partials of one (b, h): Lq rows × parts × (D accumulators + max + sum) floats. Fewer slices when even
    // one (b, h) would not fit the cap; fewer heads per dispatch when a chunk would not.
    const uint64_t max_bytes = std::min<uint64_t>(kScratchCap, info.max_storage_buffer_range);
    const uint32_t dp = padded_dim(d.D);
    const auto head_bytes = [&](uint32_t s) { return uint64_t(d.Lq) * s * wg * (dp + 2) * 4; };
    while (splits > 1 && head_bytes(splits) > max_bytes) splits = (splits + 1) / 2;
    if (head_bytes(splits) > max_bytes) {
        throw Error("split-KV attention needs " + std::to_string(head_bytes(splits)) +
                    " bytes of partials for one head, over the " + std::to_string(max_bytes) + "-byte limit");
    }
    if (splits < budget_splits) {
        throw Error("attention over " + std::to_string(d.Lk) + " keys with " + std::to_string(d.Lq) +
                    " query rows needs more key slices than " + std::to_string(max_bytes) +
                    " bytes of partials per head hold on " + info.name + " (its loop budget)");
    }
    SplitPlan plan;
    plan.split_keys = ceil_div(d.Lk, splits);
    plan.splits = ceil_div(d.Lk, plan.split_keys);  // no empty trailing slice
    plan.head_bytes = head_bytes(plan.splits);
    plan.heads_per_dispatch = uint32_t(std::max<uint64_t>(1, max_bytes / plan.head_bytes));
    return plan;
}

void record_split(Encoder& enc, const Tuning& tune, const FlashTiles& tiles, uint32_t splits, const AttentionDims& d,
                  const TensorRef& q, const TensorRef& k, const TensorRef& v, const TensorRef& o,
                  const MaskArgs& mask, float scale, const Extras& extras) {
    const DeviceInfo& info = enc.device.info();
    const uint32_t qn = std::min(d.Lq, tiles.split_qn);
    const uint32_t wg = tune.flash_split_wg;
    const uint32_t dp = padded_dim(d.D);
    const SplitPlan plan = plan_split(info, tune, tiles, splits, d);
    const uint32_t parts = plan.splits * wg;
    const uint32_t heads_per_dispatch = plan.heads_per_dispatch;

    const TensorRef* views[] = {&q, &k, &v, &o};
    std::vector<std::pair<uint32_t, uint32_t>> chunks;
    for (auto [z0, z1] : plan_chunks(enc.device, d.B * d.H, d.H, views, "fused attention")) {
        for (uint32_t a = z0; a < z1; a += heads_per_dispatch) {
            chunks.emplace_back(a, std::min(z1, a + heads_per_dispatch));
        }
    }
    uint32_t max_nz = 0;
    for (auto [z0, z1] : chunks) max_nz = std::max(max_nz, z1 - z0);
    const vk::Buffer& scratch = enc.recorder.scratch(plan.head_bytes * max_nz);

    const std::string split_name = kernel_name("flash_split", q.dtype);
    const std::string merge_name = kernel_name("flash_merge", q.dtype);
    const vk::Pipeline& merge = enc.pipelines.get(
        {merge_name, spirv(merge_name), 2, sizeof(glsl::FlashMergeParams), {tune.flash_merge_wg, dp}});
    for (auto [z0, z1] : chunks) {
        const uint32_t nz = z1 - z0;
        const Bound b = bind_all(enc, d, q, k, v, o, z0, z1);
        const vk::Pipeline& split = enc.pipelines.get({split_name, spirv(split_name), kFlashBindings,
                                                       sizeof(glsl::FlashParams), {wg, dp, qn, b.aligned ? 1u : 0u}});
        glsl::FlashParams p = flash_params(d, mask, scale, b, q, k, v, o, z0);
        p.step = extras.step_flags;
        p.split_keys = plan.split_keys;
        p.nz = nz;
        p.ml_offset = nz * d.Lq * parts * dp;
        const vk::Binding part_binding{scratch.get(), 0, plan.head_bytes * nz};
        const vk::Binding bindings[] = {b.q.binding, b.k.binding, b.v.binding, b.o.binding,
                                        extras.additive, extras.padding, part_binding, extras.step};
        enc.recorder.dispatch(split, bindings, &p, sizeof(p),
                              folded_grid(info, uint64_t(plan.splits) * ceil_div(d.Lq, qn), nz, "split-KV attention"),
                              split_name);

        glsl::FlashMergeParams mp{};
        mp.o = view_params(b.o, o);
        mp.H = d.H;
        mp.Lq = d.Lq;
        mp.D = d.D;
        mp.z0 = z0;
        mp.nz = nz;
        mp.parts = parts;
        mp.ml_offset = p.ml_offset;
        const vk::Binding merge_bindings[] = {part_binding, b.o.binding};
        enc.recorder.dispatch(
            merge, merge_bindings, &mp, sizeof(mp),
            folded_grid(info, ceil_div(uint64_t(d.Lq) * (dp / 4), tune.flash_merge_wg), nz, "split-KV merge"),
            merge_name);
    }
}

}  // namespace

FlashVariant flash_variant(const DeviceInfo& device, const AttentionDims& d) {
    const Tuning t = tuning_for(device);
    if (d.Lq <= t.flash_split_max_lq && d.Lk >= t.flash_split_min_lk) return FlashVariant::split;
    // flash_rows' invocations loop once per block of flash_rows_kb keys: past the loop budget, split-KV.
    if (t.flash_rows && t.loop_budget > 0 && ceil_div(d.Lk, t.flash_rows_kb) > t.loop_budget) return FlashVariant::split;
    return t.flash_rows ? FlashVariant::rows : FlashVariant::tiled;
}

void record_flash(Encoder& enc, const AttentionDims& d, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                  const TensorRef& out, const MaskArgs& mask, float scale) {
    record_flash(enc, d, q, k, v, out, mask, scale, FlashConfig{});
}

void record_flash(Encoder& enc, const AttentionDims& d, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                  const TensorRef& out, const MaskArgs& mask, float scale, const FlashConfig& config) {
    const DeviceInfo& info = enc.device.info();
    const Tuning tune = tuning_for(info);
    const FlashTiles tiles = flash_tiles(tune, info, padded_dim(d.D));
    // Absent masks bind Q again: every binding must be valid, and the kernels never read them.
    const vk::Binding unused{q.buffer->get(), 0, std::min<uint64_t>(16, q.buffer->size())};
    Extras extras;
    extras.additive = mask.additive ? bind_whole(enc.device, *mask.additive, "the additive mask") : unused;
    extras.padding = mask.key_padding ? bind_whole(enc.device, *mask.key_padding, "the key-padding mask") : unused;
    extras.step = config.step ? bind_whole(enc.device, *config.step, "the step's lengths") : unused;
    extras.step_flags = config.step ? VKATTN_STEP_LENGTHS | (config.q_at_step ? VKATTN_STEP_Q_ROW : 0u) : 0u;
    const bool stepped = extras.step_flags != 0;
    if (stepped && (mask.additive || mask.key_padding || config.row_state || config.variant == FlashVariant::coopmat)) {
        throw Error("internal: a replayed step's attention takes the scalar kernels, no additive or padding mask, "
                    "no row states");
    }
    if (config.q_at_step && !stepped) throw Error("internal: q_at_step without a step buffer");
    FlashVariant variant = config.variant;
    std::optional<FlashCoopmatConfig> coop;
    if (variant == FlashVariant::automatic && config.row_state == nullptr && !stepped) {
        // Tensor cores for f16 where the device has them, VKATTN_COOPMAT=1 lets the library use them, and the
        // kernel passed its self-check on this device (ops/flash_coopmat.hpp).
        coop = flash_coopmat_choice(enc, d, q.dtype);
        if (coop) variant = FlashVariant::coopmat;
    }
    if (variant == FlashVariant::automatic) variant = flash_variant(info, d);
    if (config.row_state != nullptr && variant != FlashVariant::rows) {
        throw Error("flash: row states come only from the rows variant");
    }
    if (variant == FlashVariant::coopmat) {
        if (!coop) coop = config.coopmat != nullptr ? *config.coopmat : flash_coopmat_config(info, d.D, false);
        const std::string refusal = flash_coopmat_refusal(info, d, q.dtype, *coop);
        if (!refusal.empty()) throw Error("flash: " + refusal);
        record_rows_or_tiled(enc, tune, tiles, false, d, q, k, v, out, mask, scale, extras, nullptr, &*coop);
    } else if (variant == FlashVariant::split) {
        record_split(enc, tune, tiles, config.splits, d, q, k, v, out, mask, scale, extras);
    } else {
        record_rows_or_tiled(enc, tune, tiles, variant == FlashVariant::rows, d, q, k, v, out, mask, scale, extras,
                             config.row_state);
    }
}

FlashPlan flash_plan(const DeviceInfo& device, const AttentionDims& d) {
    FlashPlan plan;
    plan.variant = flash_variant(device, d);
    if (plan.variant == FlashVariant::split) {
        const Tuning tune = tuning_for(device);
        const SplitPlan split = plan_split(device, tune, flash_tiles(tune, device, padded_dim(d.D)), 0, d);
        plan.splits = split.splits;
        plan.split_keys = split.split_keys;
    }
    return plan;
}

}  // namespace vkattn::ops
