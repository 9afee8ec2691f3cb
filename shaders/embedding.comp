// embedding: the transformer's input, x [T, C] f32 = token rows [T, C] + position rows wpe [pos0 .. pos0+T, C],
// pos0 given by wpe_offset, plus C · StepParams.pos (binding 3) where p.step is 1: a decode step recorded once.
// The token rows were gathered from wte by buffer copies (the host knows the ids), so no binding has to
// span the whole 50257 × C table. One invocation per element, in workgroups of 128 (Vulkan guarantees 128
// invocations per workgroup, not 256); rows and wpe are ELEM (f32 or f16).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "model_params.h"
#include "step_params.h"

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer RowsBuf { ELEM rows[]; };
layout(std430, binding = 1) readonly buffer WpeBuf { ELEM wpe[]; };
layout(std430, binding = 2) writeonly buffer XBuf { float x[]; };
layout(std430, binding = 3) readonly buffer StepBuf { StepParams step[]; };
layout(push_constant) uniform Push { EmbeddingParams p; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 128;
    if (i >= p.T * p.C) return;
    const uint wpe_offset = p.wpe_offset + (p.step != 0u ? step[0].pos * p.C : 0u);
    x[p.x_offset + i] = float(rows[p.rows_offset + i]) + float(wpe[wpe_offset + i]);
}
