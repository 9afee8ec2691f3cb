// flash_rows: fused attention O = softmax(mask(scale · Q Kᵀ)) V for CPU devices (lavapipe, SwiftShader), with no
// shared memory and no barrier, which such devices pay for dearly.
//   Q [B, H, Lq, D], K and V [B, Hkv, Lk, D], O [B, H, Lq, D] (views: offset and strides in push constants, D
//   contiguous), additive mask [Lq, Lk] f32, key padding [B, Lk] f32 (see flash_common.glsl);
//   z = b·H + h in [z0, z0 + gridZ); query head h reads K/V head h / (H / Hkv).
// One workgroup (one subgroup of WG invocations) owns WG·R consecutive query rows of one (b, h) (row blocks are
// numbered x + y · gridX: a long Lq spreads over the grid's y too, see folded_grid in ops/tuning.hpp); invocation t
// keeps rows t, t + WG, ... in registers: q (pre-scaled by scale·log2 e) and a D-long fp32 accumulator. It walks the
// keys its rows may see in blocks of KB: invocation l < KB loads key j0 + l (K row, later V row) with vector loads,
// and subgroupShuffle with a constant lane hands every element to every invocation, so each key is read once per
// workgroup. Softmax is online: per row a running max and sum (fp32, base 2), and the accumulator kept as the
// weighted mean of the V rows seen so far (renormalized every block), so it never exceeds max |V|: V near the fp32
// limit gives a finite O, where an unnormalized sum would overflow. Blocks that the causal or window rule hides
// from every row of the workgroup are never visited.
// NaN (flash_common.glsl's rule): a NaN score's weight makes its row's sum NaN for good, and such rows are written
// NaN. A NaN in V needs care only where some row may not see some key of the block: that row's weight for it is 0,
// and 0 · NaN would reach the row. So the blocks are walked in two loops: those whose every key every row sees
// (clear_range: under the causal rule all but at most the last WG·R / KB + 1; none under key padding or an additive
// mask) take V as it is, as p · NaN is NaN for any weight of a visible key, an underflowed 0 included; the others
// zero V's NaNs and keep, per row, a bit per column for the keys the row sees, set to NaN at the end. That tracking
// in every block made the kernel 1.5x slower in f16 on lavapipe (Mesa 22.3), which runs both sides of an if under a
// lane mask: hence a loop of its own, not a branch (the price: the block's code twice, twice the compile time).
// One edge differs from the reference: in a clear block, a key whose score is -inf only because Q or K holds an
// infinity still passes a NaN of its V on (the reference skips any key scored -inf).
// Needs subgroup shuffles with KB <= the subgroup size (lavapipe and SwiftShader have them; GPUs run flash_tiled).
// Built a second time with VKATTN_ROW_STATE=1 (flash_rows_state_*): it also writes each row's softmax state,
// row_state[z · Lq + i] = (m, l), the base-2 max of the scaled scores and the sum of exp2(s − m) (m NaN for a row
// that saw a NaN score; (−inf, 0) for a row that saw no key), so a caller can merge blocks of keys (ring attention).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 8;      // invocations: the subgroup size
layout(constant_id = 1) const uint DP = 64;     // head dim p.D rounded up to a multiple of 8
layout(constant_id = 2) const uint R = 2;       // query rows per invocation
layout(constant_id = 3) const uint KB = 8;      // keys per block, <= the subgroup size
layout(constant_id = 4) const bool VEC = true;  // rows start on 16 bytes: vector loads

layout(push_constant) uniform Push { FlashParams p; };

#include "flash_common.glsl"

#if VKATTN_ROW_STATE
layout(std430, binding = 6) writeonly buffer StateBuf { vec2 row_state[]; };
#endif

const uint D4 = DP / 4;
const uint NW = (DP + 31) / 32;  // words of one bit per head-dim column

// Per-invocation state, private globals so that visit_block below serves both loops of main.
uint b;       // batch of this workgroup
uint k_base;  // element offset of key 0 of this (b, K/V head) in K
uint v_base;  // and in V
uint lane;    // gl_SubgroupInvocationID
uint rows[R];         // query rows of this invocation, past Lq clamped to Lq - 1
vec4 q[R][D4];        // q · scale · log2 e
vec4 acc[R][D4];      // Σ_j exp2(s_j - m) · V_j / l over the keys seen so far
float m[R];           // running max of the base-2 scores, -inf until a key is visible
float l[R];           // running sum of exp2(score - m); NaN once a score was NaN
uint nan_cols[R][NW];  // bit d: a visible key of a tracked block has a NaN in V column d, so column d comes out NaN

// Keys j0 .. j0 + KB - 1 into every row's online softmax. `track` is a constant at each call: false only for a
// block in clear_range, where V goes in as it is; true: V's NaNs become zeros, and their columns bits that every lane
// gets (one shuffle per key) and the rows that see the key keep in nan_cols.
void visit_block(uint j0, const bool track) {
    const uint j_mine = min(j0 + min(lane, KB - 1), n_keys - 1);  // the key this invocation loads
    vec4 kv[D4];
    LOAD_ROW(k, k_base + j_mine * p.k.stride_l, kv);
    const float pad_mine = p.has_key_padding != 0 ? key_padding[b * n_keys + j_mine] : 0.0;

    // s[r][jj]: base-2 score of row r against key j0 + jj.
    float s[R][KB];
    [[unroll]] for (uint jj = 0; jj < KB; ++jj) {
        [[unroll]] for (uint r = 0; r < R; ++r) s[r][jj] = 0.0;
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            const vec4 kc = subgroupShuffle(kv[c], jj);
            [[unroll]] for (uint r = 0; r < R; ++r) {
                const vec4 qc = q[r][c];
                s[r][jj] = fma(qc.x, kc.x, fma(qc.y, kc.y, fma(qc.z, kc.z, fma(qc.w, kc.w, s[r][jj]))));
            }
        }
        const float pad = subgroupShuffle(pad_mine, jj);
        [[unroll]] for (uint r = 0; r < R; ++r) s[r][jj] = masked_score(s[r][jj], rows[r], j0 + jj, pad);
    }

    LOAD_ROW(v, v_base + j_mine * p.v.stride_l, kv);
    if (track) {
        uint nan_mine[NW];
        [[unroll]] for (uint w = 0; w < NW; ++w) nan_mine[w] = 0;
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            const bvec4 n = isnan(kv[c]);
            kv[c] = mix(kv[c], vec4(0.0), n);
            const uvec4 u = uvec4(n) << uvec4(0, 1, 2, 3);
            nan_mine[c / 8] |= (u.x | u.y | u.z | u.w) << (4 * (c % 8));
        }
        [[unroll]] for (uint jj = 0; jj < KB; ++jj) {
            [[unroll]] for (uint w = 0; w < NW; ++w) {
                const uint v_nan = subgroupShuffle(nan_mine[w], jj);
                [[unroll]] for (uint r = 0; r < R; ++r) {
                    const uint seen = s[r][jj] != NEG_INF ? ~0u : 0u;  // all bits when the key is visible
                    nan_cols[r][w] |= seen & v_nan;
                }
            }
        }
    }

    // Online softmax: new max, weights of this block, and the mean so far reweighted to the new sum.
    [[unroll]] for (uint r = 0; r < R; ++r) {
        float mx = m[r];
        [[unroll]] for (uint jj = 0; jj < KB; ++jj) mx = max(mx, s[r][jj]);
        const float base = mx == NEG_INF ? 0.0 : mx;  // nothing visible yet: weights stay exactly 0
        const float kept = l[r] * exp2(m[r] - base);
        float sum = kept;
        [[unroll]] for (uint jj = 0; jj < KB; ++jj) {
            s[r][jj] = exp2(s[r][jj] - base);
            sum += s[r][jj];
        }
        const float inv = 1.0 / max(sum, FLT_MIN);  // sum is 0 or >= 1 (it holds exp2(0) of the max)
        [[unroll]] for (uint jj = 0; jj < KB; ++jj) s[r][jj] *= inv;
        l[r] = sum;
        m[r] = mx;
        [[unroll]] for (uint c = 0; c < D4; ++c) acc[r][c] *= kept * inv;
    }

    [[unroll]] for (uint jj = 0; jj < KB; ++jj) {
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            const vec4 vc = subgroupShuffle(kv[c], jj);
            [[unroll]] for (uint r = 0; r < R; ++r) acc[r][c] = fma(vec4(s[r][jj]), vc, acc[r][c]);
        }
    }
}

void main() {
    load_lengths();
    const uint z = p.z0 + gl_WorkGroupID.z;
    b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint t = gl_LocalInvocationIndex;
    lane = gl_SubgroupInvocationID;
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * WG * R;
    if (row0 >= p.Lq) return;  // past the last row block of a folded grid: the whole workgroup leaves
    k_base = row_of(p.k, b, hk, 0);
    v_base = row_of(p.v, b, hk, 0);
    [[unroll]] for (uint r = 0; r < R; ++r) {
        rows[r] = min(row0 + r * WG + t, p.Lq - 1);  // rows past Lq redo the last row and are not stored
        LOAD_ROW(q, row_of(p.q, b, h, rows[r]) + q_shift, q[r]);
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            q[r][c] *= p.scale_log2;
            acc[r][c] = vec4(0.0);
        }
        m[r] = NEG_INF;
        l[r] = 0.0;
        [[unroll]] for (uint w = 0; w < NW; ++w) nan_cols[r][w] = 0;
    }

    // Blocks n = 0, 1, ... of the keys the rows may see start at key keys.x + n·KB; blocks [n_a, n_b) lie wholly in
    // the keys every row sees, and skip the NaN tracking.
    const uint i_last = min(p.Lq, row0 + WG * R) - 1;
    const uvec2 keys = key_range(row0, i_last);
    const uvec2 clear = clear_range(row0, i_last);
    const uint n_all = (keys.y - keys.x + KB - 1) / KB;
    const uint n_a = min(n_all, (clear.x - keys.x + KB - 1) / KB);
    const uint n_b = clamp((clear.y - keys.x) / KB, n_a, n_all);
    for (uint n = n_a; n < n_b; ++n) visit_block(keys.x + n * KB, false);
    for (uint n = 0; n < n_all - (n_b - n_a); ++n) visit_block(keys.x + (n < n_a ? n : n + n_b - n_a) * KB, true);

    [[unroll]] for (uint r = 0; r < R; ++r) {
        const uint i = row0 + r * WG + t;
        // No visible key: acc stayed zeros. A NaN score: l is NaN, and so is the row.
        [[unroll]] for (uint c = 0; c < D4; ++c) {
            const uvec4 bit = (uvec4(nan_cols[r][c / 8]) >> (4 * (c % 8) + uvec4(0, 1, 2, 3))) & 1u;
            acc[r][c] = mix(acc[r][c], vec4(QUIET_NAN), notEqual(bit, uvec4(0)));
        }
        const bool nan_seen = isnan(l[r]);
        if (i < p.Lq) STORE_ROW(row_of(p.o, b, h, i), acc[r], nan_seen ? QUIET_NAN : 1.0);
#if VKATTN_ROW_STATE
        if (i < p.Lq) row_state[z * p.Lq + i] = vec2(nan_seen ? QUIET_NAN : m[r], l[r]);
#endif
    }
}
