// flash_tiled: fused attention O = softmax(mask(scale · Q Kᵀ)) V for GPUs, tiles staged in shared memory.
//   Q [B, H, Lq, D], K and V [B, Hkv, Lk, D], O [B, H, Lq, D] (views, D contiguous), masks as flash_common.glsl;
//   z = b·H + h in [z0, z0 + gridZ); query head h reads K/V head h / (H / Hkv).
// One workgroup owns BQ consecutive query rows of one (b, h) (row blocks numbered x + y · gridX, see folded_grid in
// ops/tuning.hpp), kept in shared memory (pre-scaled by scale·log2 e),
// and walks the keys they may see in tiles of BK: it stages the K and V tiles in shared memory, computes the
// BQ × BK masked scores into shared memory (each invocation a few dot products), and then TPR invocations per
// row each update D/TPR columns of that row's accumulator in registers: they all read the row's BK scores, take
// the new running max (fp32, base 2), and fold the tile's exp2-weighted V rows into the accumulator, kept as the
// weighted mean of the V rows seen so far (|acc| <= max |V|: V near the fp32 limit never overflows). Tiles that the causal or
// window rule hides from every row of the workgroup are never loaded. No subgroup operation is used.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;      // invocations = BQ · TPR
layout(constant_id = 1) const uint DP = 64;       // head dim p.D rounded up to a multiple of 8
layout(constant_id = 2) const uint BQ = 64;       // query rows per workgroup
layout(constant_id = 3) const uint BK = 32;       // keys per tile
layout(constant_id = 4) const uint TPR = 4;       // invocations per query row in the PV step; divides DP

layout(push_constant) uniform Push { FlashParams p; };

#include "flash_common.glsl"

const uint DS = DP + 1;  // padded row stride of the Q and K tiles: no bank conflict when rows are read by column
shared float q_sh[BQ * DS];
shared float k_sh[BK * DS];
shared float v_sh[BK * DP];
shared float s_sh[BQ * (BK + 1)];
shared bool v_nan_sh[BK];  // V row jj of the tile holds a NaN

void main() {
    load_lengths();
    const uint z = p.z0 + gl_WorkGroupID.z;
    const uint b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint t = gl_LocalInvocationIndex;
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * BQ;
    if (row0 >= p.Lq) return;  // past the last row block of a folded grid: uniform, before any barrier
    const uint k_base = row_of(p.k, b, hk, 0);
    const uint v_base = row_of(p.v, b, hk, 0);

    for (uint e = t; e < BQ * DP; e += WG) {
        const uint r = e / DP;
        const uint d = e % DP;
        const uint i = min(row0 + r, p.Lq - 1);  // rows past Lq redo the last row and are not stored
        q_sh[r * DS + d] = d < p.D ? float(q_s[row_of(p.q, b, h, i) + q_shift + d]) * p.scale_log2 : 0.0;
    }

    // This invocation's row and columns in the PV step: columns part, part + TPR, ...
    const uint my_r = t / TPR;
    const uint part = t % TPR;
    const uint my_i = min(row0 + my_r, p.Lq - 1);
    float acc[DP / TPR];
    [[unroll]] for (uint u = 0; u < DP / TPR; ++u) acc[u] = 0.0;
    float m = NEG_INF;
    float l = 0.0;
    bool nan_seen = false;  // a visible key gave a NaN score: the row comes out NaN

    const uvec2 keys = key_range(row0, min(p.Lq, row0 + BQ) - 1);
    for (uint j0 = keys.x; j0 < keys.y; j0 += BK) {
        for (uint e = t; e < BK * DP; e += WG) {
            const uint jj = e / DP;
            const uint d = e % DP;
            const uint j = min(j0 + jj, n_keys - 1);  // keys past Lk are loaded but masked
            const bool in_row = d < p.D;            // the padding columns hold zeros
            k_sh[jj * DS + d] = in_row ? float(k_s[k_base + j * p.k.stride_l + d]) : 0.0;
            v_sh[jj * DP + d] = in_row ? float(v_s[v_base + j * p.v.stride_l + d]) : 0.0;
        }
        for (uint jj = t; jj < BK; jj += WG) v_nan_sh[jj] = false;
        barrier();  // Q (first tile), K and V tiles and the cleared flags written → score, NaN and PV reads

        // V rows holding a NaN, flagged for the PV step (see flash_common.glsl).
        for (uint e = t; e < BK * DP; e += WG) {
            if (isnan(v_sh[e])) v_nan_sh[e / DP] = true;
        }

        for (uint e = t; e < BQ * BK; e += WG) {
            const uint r = e / BK;
            const uint jj = e % BK;
            float s = 0.0;
            for (uint d = 0; d < DP; ++d) s = fma(q_sh[r * DS + d], k_sh[jj * DS + d], s);
            const uint j = j0 + jj;
            const float pad = (p.has_key_padding != 0 && j < n_keys) ? key_padding[b * n_keys + j] : 0.0;
            s = masked_score(s, min(row0 + r, p.Lq - 1), j, pad);
            s_sh[r * (BK + 1) + jj] = s;
        }
        barrier();  // scores and V NaN flags written → every invocation of a row reads all of them

        float w[BK];
        uint visible = 0;  // bit jj: key j0 + jj is visible to this row
        float mx = m;
        [[unroll]] for (uint jj = 0; jj < BK; ++jj) {
            w[jj] = s_sh[my_r * (BK + 1) + jj];
            mx = max(mx, w[jj]);
            nan_seen = nan_seen || isnan(w[jj]);
            if (w[jj] != NEG_INF) visible |= 1u << jj;
        }
        const float base = mx == NEG_INF ? 0.0 : mx;  // nothing visible yet: weights stay exactly 0
        const float kept = l * exp2(m - base);
        float sum = kept;
        [[unroll]] for (uint jj = 0; jj < BK; ++jj) {
            w[jj] = exp2(w[jj] - base);
            sum += w[jj];
        }
        const float inv = sum > 0.0 ? 1.0 / sum : 0.0;
        [[unroll]] for (uint jj = 0; jj < BK; ++jj) w[jj] *= inv;
        l = sum;
        m = mx;
        // A flagged V row adds to the rows that see it only, NaN columns included (0 · NaN would reach the
        // others). Selected, not branched: a branch in this doubly unrolled loop is DP/TPR · BK basic blocks, on
        // which lavapipe's coroutine lowering (LLVM's CoroSplit, every barrier a suspend point) spent over 10
        // minutes per variant in Mesa 25.
        bool add[BK];
        [[unroll]] for (uint jj = 0; jj < BK; ++jj) add[jj] = !v_nan_sh[jj] || (visible & (1u << jj)) != 0;
        [[unroll]] for (uint u = 0; u < DP / TPR; ++u) {
            float a = acc[u] * (kept * inv);
            [[unroll]] for (uint jj = 0; jj < BK; ++jj) {
                const float vj = v_sh[jj * DP + part + u * TPR];
                a = mix(a, fma(w[jj], vj, a), add[jj]);
            }
            acc[u] = a;
        }
        barrier();  // score, K and V reads done → the next tile overwrites them
    }

    if (row0 + my_r < p.Lq) {  // no visible key: acc stayed zeros
        const uint o = row_of(p.o, b, h, my_i);
        [[unroll]] for (uint u = 0; u < DP / TPR; ++u) {
            if (part + u * TPR < p.D) o_s[o + part + u * TPR] = TO_ELEM(nan_seen ? QUIET_NAN : acc[u]);
        }
    }
}
