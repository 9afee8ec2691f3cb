// layernorm: row normalisation with subgroup reductions (shaders/layernorm.comp).
#include "model_params.h"
#include "ops/shader_table.hpp"
#include "ops/transformer.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>

namespace vkattn::ops {

void record_layernorm(Encoder& enc, uint32_t T, uint32_t C, const RowsRef& x, const vk::Buffer& w,
                      const vk::Buffer& b, const RowsRef& y, float eps) {
    const DeviceInfo& info = enc.device.info();
    if (!info.subgroup_arithmetic) {
        throw Error("LayerNorm needs subgroup arithmetic in compute shaders, which " + info.name + " lacks");
    }
    const Tuning tune = tuning_for(info);
    const vk::Pipeline& pipeline =
        enc.pipelines.get({"layernorm", spirv("layernorm"), 4, sizeof(glsl::LayerNormParams), {tune.norm_wg}});
    glsl::LayerNormParams p{};
    p.T = T;
    p.C = C;
    p.x_offset = x.offset;
    p.x_stride = x.stride;
    p.y_offset = y.offset;
    p.y_stride = y.stride;
    p.eps = eps;
    const vk::Binding bindings[] = {bind_whole(enc.device, *x.buffer, "LayerNorm input"), bind_whole(enc.device, w, "LayerNorm gain"),
                                    bind_whole(enc.device, b, "LayerNorm bias"),
                                    bind_whole(enc.device, *y.buffer, "LayerNorm output")};
    const uint32_t gx = std::min(T, info.max_workgroup_count[0]);
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {gx, (T + gx - 1) / gx, 1}, "layernorm");
}

}  // namespace vkattn::ops
