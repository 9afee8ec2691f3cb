// flash_merge: the second half of split-KV attention: O from the partial softmax states flash_split.comp wrote.
//   partials [nz, Lq, parts, DP] f32 and, from ml_offset, [nz, Lq, parts, 2] f32 (max, sum) (binding 0);
//   O [B, H, Lq, D] (view, D contiguous; binding 1); z = b·H + h in [z0, z0 + nz).
// Invocation g = (x + y · gridX) · WG + local index of grid z (folded to fit the grid limits) handles 4 elements of O: row i = g / (DP/4), columns 4·(g % (DP/4)) + 0..3 (those below
// p.D). Each acc_p is the mean of the V rows its part saw, weighted by its l_p; with M = max_p m_p and
// c_p = l_p · 2^(m_p − M), O = Σ_p acc_p · c_p / Σ_p c_p, summed as weights c_p / Σ c_p <= 1 so that |O| <= max |V|
// never overflows. A row no part saw a key of gives zeros.
// No shared memory, no barrier.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;  // invocations
layout(constant_id = 1) const uint DP = 64;  // head dim p.D rounded up to a multiple of 8

layout(std430, binding = 0) readonly buffer PartBuf { float part_s[]; };
layout(std430, binding = 0) readonly buffer PartBufV { vec4 part_v[]; };
layout(std430, binding = 1) writeonly buffer OBuf { ELEM o_s[]; };
layout(push_constant) uniform Push { FlashMergeParams p; };

#define NEG_INF (-1.0 / 0.0)
#define QUIET_NAN uintBitsToFloat(0x7fc00000u)

const uint D4 = DP / 4;

void main() {
    const uint g = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * WG + gl_LocalInvocationID.x;
    const uint i = g / D4;
    const uint c = g % D4;
    if (i >= p.Lq) return;
    const uint zl = gl_WorkGroupID.z;
    const uint z = p.z0 + zl;
    const uint first = (zl * p.Lq + i) * p.parts;  // this row's first partial

    float mx = NEG_INF;
    bool nan_seen = false;  // a part flagged NaN (its sum is NaN, see flash_split.comp): the row is NaN
    for (uint part = 0; part < p.parts; ++part) {
        const float m_p = part_s[p.ml_offset + 2 * (first + part)];
        mx = max(mx, m_p);
        nan_seen = nan_seen || isnan(m_p) || isnan(part_s[p.ml_offset + 2 * (first + part) + 1]);
    }
    vec4 acc = vec4(0.0);
    if (nan_seen) {
        acc = vec4(QUIET_NAN);
    } else if (mx != NEG_INF) {
        float sum = 0.0;
        for (uint part = 0; part < p.parts; ++part) {
            const uint slot = first + part;  // c_p is 0 for parts that saw no key
            sum += exp2(part_s[p.ml_offset + 2 * slot] - mx) * part_s[p.ml_offset + 2 * slot + 1];
        }
        const float inv = 1.0 / sum;
        for (uint part = 0; part < p.parts; ++part) {
            const uint slot = first + part;
            const float c_p = exp2(part_s[p.ml_offset + 2 * slot] - mx) * part_s[p.ml_offset + 2 * slot + 1];
            acc = fma(vec4(c_p * inv), part_v[slot * D4 + c], acc);
        }
    }
    const uint o = p.o.offset + (z / p.H) * p.o.stride_b + (z % p.H) * p.o.stride_h + i * p.o.stride_l + 4 * c;
    for (uint e = 0; e < 4; ++e) {
        if (4 * c + e < p.D) o_s[o + e] = TO_ELEM(acc[e]);
    }
}
