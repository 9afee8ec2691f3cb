// pv: out = probs · V (shaders/pv.comp).
#include "ops/attention.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <string>

namespace vkattn::ops {

void record_pv(Encoder& enc, const AttentionDims& d, const vk::Buffer& probs, const TensorRef& v, const TensorRef& out) {
    const Tuning tune = tuning_for(enc.device.info());
    // Each invocation walks Lk in steps of TILE.
    check_loop_budget(enc.device.info(), (uint64_t(d.Lk) + tune.matmul_tile - 1) / tune.matmul_tile,
                      "the three-kernel attention's P·V over " + std::to_string(d.Lk) + " keys",
                      "the fused kernel takes this length");
    const char* name = v.dtype == DType::f16 ? "pv_f16" : "pv_f32";
    const vk::Pipeline& pipeline = enc.pipelines.get(
        {name, spirv(name), 3, sizeof(glsl::PvParams), {tune.matmul_tile}});

    const TensorRef pr = contiguous(probs, DType::f32, {d.B, d.H, d.Lq, d.Lk});
    const TensorRef* views[] = {&pr, &v, &out};
    for (auto [z0, z1] : plan_chunks(enc.device, d.B * d.H, d.H, views, "attention output")) {
        const BoundView bp = bind_view(enc.device, pr, d.H, z0, z1);
        const BoundView bv = bind_view(enc.device, v, d.H, z0, z1);
        const BoundView bo = bind_view(enc.device, out, d.H, z0, z1);
        glsl::PvParams p{};
        p.v = view_params(bv, v);
        p.o = view_params(bo, out);
        p.p_offset = bp.offset + z0 * d.Lq * d.Lk;  // the kernel indexes P by the chunk-local z
        p.H = d.H;
        p.Hkv = d.Hkv;
        p.Lq = d.Lq;
        p.Lk = d.Lk;
        p.D = d.D;
        p.z0 = z0;
        const vk::Binding bindings[] = {bp.binding, bv.binding, bo.binding};
        const uint32_t t = tune.matmul_tile;
        const uint64_t blocks = uint64_t((d.D + t - 1) / t) * ((d.Lq + t - 1) / t);
        enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p),
                              folded_grid(enc.device.info(), blocks, z1 - z0, "attention output"), name);
    }
}

}  // namespace vkattn::ops
