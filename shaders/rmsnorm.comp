// rmsnorm: y [T, C] = x / sqrt(mean(x²) + eps) · w [C] over each row of x [T, C] (Llama's RMSNorm); f32.
// One workgroup per row. Each invocation sums the squares of a strided slice of the row; subgroupAdd combines
// a subgroup and, when the workgroup holds several subgroups, shared memory combines those. A workgroup of
// one subgroup (the choice on CPU devices, where barriers are costly) needs no barrier at all.
// y may be x itself (the same buffer, offsets and strides): every read of a row precedes its writes.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "llama_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float w[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };
layout(push_constant) uniform Push { RmsNormParams p; };

// One slot per subgroup; sized for the worst case, since drivers may pick the subgroup size (Intel, AMD).
shared float partial[WG];

float workgroup_sum(float v) {
    v = subgroupAdd(v);
    if (gl_NumSubgroups == 1) return v;  // uniform: the whole workgroup takes the same branch
    if (subgroupElect()) partial[gl_SubgroupID] = v;
    barrier();  // subgroup sums written → every invocation reads them
    float total = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; ++s) total += partial[s];
    return total;
}

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.T) return;  // uniform per workgroup
    const uint t = gl_LocalInvocationID.x;
    const uint xb = p.x_offset + row * p.x_stride;
    const uint yb = p.y_offset + row * p.y_stride;

    float s = 0.0;
    for (uint c = t; c < p.C; c += WG) {
        const float v = x[xb + c];
        s += v * v;
    }
    // In place (y is x), an invocation rewrites only the elements it read itself, and all reads of the row
    // are in the sum, which every invocation has finished before any write.
    const float rrms = inversesqrt(workgroup_sum(s) / float(p.C) + p.eps);
    for (uint c = t; c < p.C; c += WG) y[yb + c] = x[xb + c] * rrms * w[c];
}
