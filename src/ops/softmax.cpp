// softmax: masked row softmax of attention scores (shaders/softmax.comp).
#include "ops/attention.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <algorithm>

namespace vkattn::ops {

void record_softmax(Encoder& enc, const AttentionDims& d, const vk::Buffer& scores, const vk::Buffer& probs,
                    const MaskArgs& mask) {
    const Tuning tune = tuning_for(enc.device.info());
    // Each invocation sweeps its row three times (max, sum, write) in steps of WG.
    check_loop_budget(enc.device.info(), 3 * ((uint64_t(d.Lk) + tune.softmax_wg - 1) / tune.softmax_wg),
                      "the three-kernel attention's softmax over " + std::to_string(d.Lk) + " keys",
                      "the fused kernel takes this length");
    const vk::Pipeline& pipeline = enc.pipelines.get(
        {"softmax", spirv("softmax"), 4, sizeof(glsl::SoftmaxParams), {tune.softmax_wg}});

    const TensorRef s = contiguous(scores, DType::f32, {d.B, d.H, d.Lq, d.Lk});
    const TensorRef p_ref = contiguous(probs, DType::f32, {d.B, d.H, d.Lq, d.Lk});
    // Absent masks bind the scores again: every binding must be valid, and the kernel never reads them.
    const vk::Binding additive = mask.additive ? bind_whole(enc.device, *mask.additive, "the additive mask")
                                               : vk::Binding{scores.get(), 0, 4};
    const vk::Binding padding = mask.key_padding ? bind_whole(enc.device, *mask.key_padding, "the key-padding mask")
                                                 : vk::Binding{scores.get(), 0, 4};

    const TensorRef* views[] = {&s, &p_ref};
    for (auto [z0, z1] : plan_chunks(enc.device, d.B * d.H, d.H, views, "attention softmax")) {
        const BoundView bs = bind_view(enc.device, s, d.H, z0, z1);
        const BoundView bp = bind_view(enc.device, p_ref, d.H, z0, z1);
        glsl::SoftmaxParams p{};
        p.s_offset = bs.offset + z0 * d.Lq * d.Lk;
        p.p_offset = bp.offset + z0 * d.Lq * d.Lk;
        p.H = d.H;
        p.Lq = d.Lq;
        p.Lk = d.Lk;
        p.z0 = z0;
        p.nz = z1 - z0;
        p.causal = mask.causal ? 1 : 0;
        p.window = mask.window;
        p.has_additive = mask.additive ? 1 : 0;
        p.has_key_padding = mask.key_padding ? 1 : 0;
        const uint64_t rows = uint64_t(z1 - z0) * d.Lq;
        const auto grid = folded_grid(enc.device.info(), rows, 1, "attention softmax");
        p.rows_per_grid_x = grid[0];
        const vk::Binding bindings[] = {bs.binding, bp.binding, additive, padding};
        enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), grid, "softmax");
    }
}

}  // namespace vkattn::ops
