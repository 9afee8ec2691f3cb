// swiglu: silu(gate) · up, elementwise over [T, F] views (shaders/swiglu.comp).
#include "llama_params.h"
#include "ops/llama_ops.hpp"
#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::ops {

void record_swiglu(Encoder& enc, uint32_t T, uint32_t F, const RowsRef& gate, const RowsRef& up, const RowsRef& y) {
    constexpr uint32_t kWg = 64;
    const uint64_t total = uint64_t(T) * F;
    if (total == 0) return;
    if (total >= (uint64_t(1) << 32)) throw Error("internal: swiglu over more than 2^32 elements");
    glsl::SwigluParams p{};
    p.T = T;
    p.F = F;
    p.gate_offset = gate.offset;
    p.gate_stride = gate.stride;
    p.up_offset = up.offset;
    p.up_stride = up.stride;
    p.y_offset = y.offset;
    p.y_stride = y.stride;
    const vk::Pipeline& pipeline =
        enc.pipelines.get({"swiglu", spirv("swiglu"), 3, sizeof(glsl::SwigluParams), {kWg}});
    const vk::Binding bindings[] = {bind_whole(enc.device, *gate.buffer, "SwiGLU gate"),
                                    bind_whole(enc.device, *up.buffer, "SwiGLU up"),
                                    bind_whole(enc.device, *y.buffer, "SwiGLU output")};
    const uint64_t groups = (total + kWg - 1) / kWg;
    const uint32_t gx = uint32_t(std::min<uint64_t>(groups, enc.device.info().max_workgroup_count[0]));
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {gx, uint32_t((groups + gx - 1) / gx), 1}, "swiglu");
}

}  // namespace vkattn::ops
