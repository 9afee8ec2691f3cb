// rmsnorm: row normalisation by the root mean square, with subgroup reductions (shaders/rmsnorm.comp).
#include "llama_params.h"
#include "ops/llama_ops.hpp"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>

namespace vkattn::ops {

void record_rmsnorm(Encoder& enc, uint32_t T, uint32_t C, const RowsRef& x, const vk::Buffer& w, const RowsRef& y,
                    float eps) {
    const DeviceInfo& info = enc.device.info();
    if (!info.subgroup_arithmetic) {
        throw Error("RMSNorm needs subgroup arithmetic in compute shaders, which " + info.name + " lacks");
    }
    if (T == 0) return;
    const Tuning tune = tuning_for(info);
    const vk::Pipeline& pipeline =
        enc.pipelines.get({"rmsnorm", spirv("rmsnorm"), 3, sizeof(glsl::RmsNormParams), {tune.norm_wg}});
    glsl::RmsNormParams p{};
    p.T = T;
    p.C = C;
    p.x_offset = x.offset;
    p.x_stride = x.stride;
    p.y_offset = y.offset;
    p.y_stride = y.stride;
    p.eps = eps;
    const vk::Binding bindings[] = {bind_whole(enc.device, *x.buffer, "RMSNorm input"),
                                    bind_whole(enc.device, w, "RMSNorm gain"),
                                    bind_whole(enc.device, *y.buffer, "RMSNorm output")};
    // One workgroup per row; rows past the grid's x limit continue in y.
    const uint32_t gx = std::min(T, info.max_workgroup_count[0]);
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {gx, (T + gx - 1) / gx, 1}, "rmsnorm");
}

}  // namespace vkattn::ops
