// qk: scores = scale · Q Kᵀ (shaders/qk.comp).
#include "ops/attention.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

namespace vkattn::ops {

void record_qk(Encoder& enc, const AttentionDims& d, const TensorRef& q, const TensorRef& k, const vk::Buffer& scores,
               float scale) {
    const Tuning tune = tuning_for(enc.device.info());
    const char* name = q.dtype == DType::f16 ? "qk_f16" : "qk_f32";
    const vk::Pipeline& pipeline = enc.pipelines.get(
        {name, spirv(name), 3, sizeof(glsl::QkParams), {tune.matmul_tile}});

    const TensorRef s = contiguous(scores, DType::f32, {d.B, d.H, d.Lq, d.Lk});
    const TensorRef* views[] = {&q, &k, &s};
    for (auto [z0, z1] : plan_chunks(enc.device, d.B * d.H, d.H, views, "attention scores")) {
        const BoundView bq = bind_view(enc.device, q, d.H, z0, z1);
        const BoundView bk = bind_view(enc.device, k, d.H, z0, z1);
        const BoundView bs = bind_view(enc.device, s, d.H, z0, z1);
        glsl::QkParams p{};
        p.q = view_params(bq, q);
        p.k = view_params(bk, k);
        p.s_offset = bs.offset + z0 * d.Lq * d.Lk;  // the kernel indexes S by the chunk-local z
        p.H = d.H;
        p.Hkv = d.Hkv;
        p.Lq = d.Lq;
        p.Lk = d.Lk;
        p.D = d.D;
        p.z0 = z0;
        p.scale = scale;
        const vk::Binding bindings[] = {bq.binding, bk.binding, bs.binding};
        const uint32_t t = tune.matmul_tile;
        const uint64_t blocks = uint64_t((d.Lk + t - 1) / t) * ((d.Lq + t - 1) / t);
        enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p),
                              folded_grid(enc.device.info(), blocks, z1 - z0, "attention scores"), name);
    }
}

}  // namespace vkattn::ops
