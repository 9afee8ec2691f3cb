// layernorm: y [T, C] = (x - mean) / sqrt(var + eps) · w [C] + b [C], over each row of x [T, C]; f32 throughout.
// One workgroup per row. Each invocation sums a strided slice of the row; subgroupAdd combines a subgroup
// and, when the workgroup holds several subgroups, shared memory combines those. A workgroup of one
// subgroup (the choice on CPU devices, where barriers are costly) needs no barrier at all.
// Two passes over the row (mean, then the variance of x - mean) keep the variance exact for large means.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "model_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float w[]; };
layout(std430, binding = 2) readonly buffer BBuf { float b[]; };
layout(std430, binding = 3) writeonly buffer YBuf { float y[]; };
layout(push_constant) uniform Push { LayerNormParams p; };

// One slot per subgroup; sized for the worst case, since drivers may pick the subgroup size (Intel, AMD).
shared float partial[WG];

float workgroup_sum(float v) {
    v = subgroupAdd(v);
    if (gl_NumSubgroups == 1) return v;  // uniform: the whole workgroup takes the same branch
    if (subgroupElect()) partial[gl_SubgroupID] = v;
    barrier();  // subgroup sums written → every invocation reads them
    float total = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; ++s) total += partial[s];
    barrier();  // all have read the partials → the next sum may overwrite them
    return total;
}

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.T) return;  // uniform per workgroup
    const uint t = gl_LocalInvocationID.x;
    const uint xb = p.x_offset + row * p.x_stride;
    const uint yb = p.y_offset + row * p.y_stride;

    float s = 0.0;
    for (uint c = t; c < p.C; c += WG) s += x[xb + c];
    const float mean = workgroup_sum(s) / float(p.C);

    float v = 0.0;
    for (uint c = t; c < p.C; c += WG) {
        const float d = x[xb + c] - mean;
        v += d * d;
    }
    const float rstd = inversesqrt(workgroup_sum(v) / float(p.C) + p.eps);

    for (uint c = t; c < p.C; c += WG) y[yb + c] = (x[xb + c] - mean) * rstd * w[c] + b[c];
}
