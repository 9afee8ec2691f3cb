// softmax: masked, numerically stable row softmax of attention scores.
//   S [z, Lq, Lk] fp32 (binding 0), P [z, Lq, Lk] fp32 (binding 1, may alias S),
//   additive mask [Lq, Lk] fp32 (binding 2, when has_additive), key padding [B, Lk] fp32 (binding 3).
// One workgroup owns one row (z, i): three strided passes over Lk (max, sum of exponentials, write),
// each pass ending in a shared-memory tree reduction. The max is subtracted before exp, so scores like
// [2505.5, 3574] give [0, 1], not NaN; a row whose keys are all masked is written as zeros, and a row with a
// NaN score at a visible key as NaN (the max below keeps NaN, where GLSL's max may drop it).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "attention_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

layout(std430, binding = 0) readonly buffer SBuf { float s[]; };
layout(std430, binding = 1) writeonly buffer PBuf { float prob[]; };
layout(std430, binding = 2) readonly buffer ABuf { float additive[]; };
layout(std430, binding = 3) readonly buffer KpBuf { float key_padding[]; };
layout(push_constant) uniform Push { SoftmaxParams p; };

shared float red[WG];

#define NEG_INF (-1.0 / 0.0)  // -infinity: the score of a masked key
#define QUIET_NAN uintBitsToFloat(0x7fc00000u)

float max_keep_nan(float a, float b) { return (isnan(a) || a >= b) ? a : b; }

float masked_score(uint row_base, uint b, uint i, uint j) {
    const int diag = int(i) + int(p.Lk) - int(p.Lq);  // the last key query i may see under causal
    if (p.causal != 0 && int(j) > diag) return NEG_INF;
    if (p.window != 0 && int(j) <= diag - int(p.window)) return NEG_INF;
    if (p.has_key_padding != 0 && key_padding[b * p.Lk + j] != 0.0) return NEG_INF;
    float x = s[row_base + j];
    if (p.has_additive != 0) x += additive[i * p.Lk + j];
    return x;
}

// Tree reduction over the workgroup; op 0 = max, 1 = sum. Every invocation gets the result.
float reduce(float v, uint op) {
    const uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();  // partials written → tree reads them
    for (uint stride = WG / 2; stride > 0; stride >>= 1) {
        if (t < stride) red[t] = op == 0 ? max_keep_nan(red[t], red[t + stride]) : red[t] + red[t + stride];
        barrier();  // this level written → next level reads it
    }
    const float r = red[0];
    barrier();  // all have read red[0] → the next reduce may overwrite it
    return r;
}

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_grid_x;
    if (row >= p.nz * p.Lq) return;  // uniform per workgroup: no barrier is skipped by part of it
    const uint zl = row / p.Lq;
    const uint i = row % p.Lq;
    const uint b = (p.z0 + zl) / p.H;
    const uint s_base = p.s_offset + row * p.Lk;
    const uint p_base = p.p_offset + row * p.Lk;
    const uint t = gl_LocalInvocationID.x;

    float m = NEG_INF;
    for (uint j = t; j < p.Lk; j += WG) m = max_keep_nan(m, masked_score(s_base, b, i, j));
    m = reduce(m, 0);

    if (isnan(m)) {  // NaN in, NaN out
        for (uint j = t; j < p.Lk; j += WG) prob[p_base + j] = QUIET_NAN;
        return;
    }
    if (m == NEG_INF) {  // no visible key: zeros, never NaN
        for (uint j = t; j < p.Lk; j += WG) prob[p_base + j] = 0.0;
        return;
    }
    float sum = 0.0;
    for (uint j = t; j < p.Lk; j += WG) sum += exp(masked_score(s_base, b, i, j) - m);
    sum = reduce(sum, 1);

    const float inv = 1.0 / sum;
    for (uint j = t; j < p.Lk; j += WG) prob[p_base + j] = exp(masked_score(s_base, b, i, j) - m) * inv;
}
