// flash_split: the first half of split-KV attention for short Lq (decode): partial softmax states over slices of
// the keys, which flash_merge.comp combines into O.
//   Q [B, H, Lq, D], K and V [B, Hkv, Lk, D] (views), masks as flash_common.glsl;
//   partials [nz, Lq, parts, DP] f32 (the accumulators) and, from ml_offset, [nz, Lq, parts, 2] f32 (max, sum),
//   parts = splits · WG with splits = ceil(Lk / split_keys); z = b·H + h in [z0, z0 + nz).
// Workgroup n = x + y · gridX (folded to fit the grid limits) takes key slice n % splits of query block n / splits.
// One workgroup owns QN consecutive query rows of one (b, h) and the keys [x·split_keys, (x + 1)·split_keys) they
// may see. Every invocation holds all QN rows of q (the same values in every invocation) and walks its own keys,
// j = first + t, first + t + WG, ...: each key is loaded by one invocation only, with vector loads, and no
// invocation talks to another (no shared memory, no barrier, no subgroup operation). Each keeps its own online
// softmax state per row (max and sum in fp32, base 2, and the accumulator as the weighted mean of the V rows it
// saw, so |acc| <= max |V| never overflows) and writes it as one partial.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 8;      // invocations
layout(constant_id = 1) const uint DP = 64;     // head dim p.D rounded up to a multiple of 8
layout(constant_id = 2) const uint QN = 1;      // query rows per workgroup
layout(constant_id = 3) const bool VEC = true;  // rows start on 16 bytes: vector loads

layout(push_constant) uniform Push { FlashParams p; };

#include "flash_common.glsl"

layout(std430, binding = 6) writeonly buffer PartBuf { float part_s[]; };
layout(std430, binding = 6) writeonly buffer PartBufV { vec4 part_v[]; };

const uint D4 = DP / 4;

void main() {
    load_lengths();
    const uint zl = gl_WorkGroupID.z;
    const uint z = p.z0 + zl;
    const uint b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint t = gl_LocalInvocationIndex;
    const uint splits = (n_keys + keys_per_split - 1) / keys_per_split;
    const uint n = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint slice = n % splits;
    const uint i0 = (n / splits) * QN;
    if (i0 >= p.Lq) return;  // past the last block of a folded grid
    const uint k_base = row_of(p.k, b, hk, 0);
    const uint v_base = row_of(p.v, b, hk, 0);

    vec4 q[QN][D4];
    vec4 acc[QN][D4];
    float m[QN];
    float l[QN];
    bool nan_seen[QN];  // a visible key gave a NaN score: the row comes out NaN
    uint rows[QN];
    [[unroll]] for (uint r = 0; r < QN; ++r) {
        rows[r] = min(i0 + r, p.Lq - 1);  // rows past Lq redo the last row and are not stored
        LOAD_ROW(q, row_of(p.q, b, h, rows[r]) + q_shift, q[r]);
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            q[r][c] *= p.scale_log2;
            acc[r][c] = vec4(0.0);
        }
        m[r] = NEG_INF;
        l[r] = 0.0;
        nan_seen[r] = false;
    }

    const uvec2 keys = key_range(i0, min(p.Lq, i0 + QN) - 1);
    const uint first = max(keys.x, slice * keys_per_split);
    const uint end = min(keys.y, (slice + 1) * keys_per_split);
    for (uint j = first + t; j < end; j += WG) {
        vec4 kv[D4];  // the key's K row, then its V row
        LOAD_ROW(k, k_base + j * p.k.stride_l, kv);
        const float pad = p.has_key_padding != 0 ? key_padding[b * n_keys + j] : 0.0;
        float w[QN];  // this key's weight per row
        float alpha[QN];
        bool visible[QN];
        [[unroll]] for (uint r = 0; r < QN; ++r) {
            float s = 0.0;
            [[unroll]] for (uint c = 0; c < D4; ++c) {
                const vec4 qc = q[r][c];
                s = fma(qc.x, kv[c].x, fma(qc.y, kv[c].y, fma(qc.z, kv[c].z, fma(qc.w, kv[c].w, s))));
            }
            s = masked_score(s, rows[r], j, pad);
            const bool s_nan = isnan(s);
            nan_seen[r] = nan_seen[r] || s_nan;
            visible[r] = s != NEG_INF;
            const float mx = max(m[r], s);
            const float base = mx == NEG_INF ? 0.0 : mx;  // nothing visible yet: weights stay exactly 0
            const float kept = l[r] * exp2(m[r] - base);
            const float e = exp2(s - base);
            const float sum = kept + e;
            const float inv = 1.0 / max(sum, FLT_MIN);  // sum is 0 or >= 1 (it holds exp2(0) of the max)
            alpha[r] = kept * inv;  // the mean so far and this key's V, weighted to the new sum
            w[r] = e * inv;
            l[r] = sum;
            m[r] = mx;
        }
        // A row takes the key's V only if it sees the key, by a select (branch-free: CPU devices run both sides
        // of an if under a lane mask): a NaN of V then reaches exactly the columns of the rows that see it
        // (flash_common.glsl's rule), and a hidden key leaves the accumulator bit for bit as it was.
        LOAD_ROW(v, v_base + j * p.v.stride_l, kv);
        [[unroll]] for (uint r = 0; r < QN; ++r) {
            const bvec4 take = bvec4(visible[r]);
            [[unroll]] for (uint c = 0; c < D4; ++c) {
                acc[r][c] = mix(acc[r][c], fma(vec4(w[r]), kv[c], acc[r][c] * alpha[r]), take);
            }
        }
    }

    const uint parts = splits * WG;
    const uint part = slice * WG + t;
    [[unroll]] for (uint r = 0; r < QN; ++r) {
        const uint i = i0 + r;
        if (i < p.Lq) {
            const uint slot = (zl * p.Lq + i) * parts + part;
            [[unroll]] for (uint c = 0; c < D4; ++c) {
                part_v[slot * D4 + c] = acc[r][c];
            }
            part_s[p.ml_offset + 2 * slot] = m[r];
            part_s[p.ml_offset + 2 * slot + 1] = nan_seen[r] ? QUIET_NAN : l[r];  // flash_merge reads it
        }
    }
}
