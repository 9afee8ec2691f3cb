// flash_coopmat: fused attention O = softmax(mask(scale · Q Kᵀ)) V on cooperative matrices (tensor cores) through
// GL_NV_cooperative_matrix, the FlashAttention-2 scheme. f16 storage only (VKATTN_F16=1): fp16 × fp16 products are
// exact in the fp32 accumulators, so S = Q·Kᵀ is what flash_tiled computes, to fp32 accumulation order.
//   Q [B, H, Lq, D], K and V [B, Hkv, Lk, D], O [B, H, Lq, D] (views, D contiguous), masks as flash_common.glsl;
//   z = b·H + h in [z0, z0 + gridZ); query head h reads K/V head h / (H / Hkv).
// One workgroup of NSG subgroups owns BQ = NSG·LM consecutive query rows of one (b, h) (row blocks numbered
// x + y · gridX, see folded_grid in ops/tuning.hpp); subgroup s owns rows [s·LM, s·LM + LM). Q is staged once in
// shared memory as fp16 (zeros past Lq and D). The workgroup walks the keys its rows may see in tiles of BK keys
// (tiles the causal or window rule hides from every row are never loaded):
//   1. K and V tiles staged in shared memory as fp16, zeros past Lk and D; a NaN in V is staged as 0 and its
//      column remembered per key (v_nan_sh), so that a key's weight of 0 never turns it into NaN (0 · NaN).
//      Double buffered where the shared memory allows (NBUF = 2): tile t + 1 is staged into the other buffers
//      while the subgroups compute S of tile t, which saves a barrier per tile and overlaps the global loads with
//      the products; with NBUF = 1 it is staged after tile t's P·V.
//   2. each subgroup: S [LM, BK] = Q_s · K_tileᵀ on LM × LN accumulators fed by LM × LK and LK × LN fragments,
//      stored to s_sh.
//   3. row owners (one invocation per row): the masked base-2 scores (unscaled S · scale·log2 e, as flash_tiled's
//      pre-scaled q), the new running max m, P = fp16(exp2(s − m)) into p_sh, the row sum of those fp16 values
//      (fp32), and alpha = exp2(m_old − m), the factor of the O rows kept so far.
//   4. each subgroup, per LN-wide column block of O: P_s · V_tile on accumulators, stored to its slot of cs (which
//      reuses s_sh), and its lanes do O = alpha · O + that block on their elements of O, kept in registers:
//      lane l of the subgroup holds elements l, l + SG, ... (row-major) of each LM × LN block of its rows.
// At the end O / l (0 for a row that saw no key), with the NaN rule of flash_common.glsl: a visible NaN score makes
// the row NaN, a visible key's NaN V element its column.
// P is rounded to fp16 for the P·V products, as FlashAttention does; l sums the rounded values, so O is a convex
// combination of V rows whose weights are each within 2·2⁻¹¹ (relative) of the exact ones.
// O is kept unnormalized (the sum of exp2-weighted V rows): with fp16 V (|v| <= 65504) and weights <= 1 it cannot
// overflow fp32 below 5·10³³ keys.
//
// VKATTN_COOPMAT_EMULATE replaces the cooperative-matrix types and their load, multiply-add and store by plain code
// with the same meaning, as in matmul_coopmat.comp: a subgroup is then SG consecutive invocations, an accumulator
// is LM·LN/SG elements per lane (element e = lane + i·SG, row-major), and a "loaded" A or B fragment is where it
// starts in shared memory, which the multiply-add reads. Devices without cooperative matrices (lavapipe in CI) so
// test every index of this kernel: tiling, masks, padding of L and D, GQA. There the loops over fragment elements
// are not unrolled (FRAGMENT_LOOP) and O is one array indexed in them, as in matmul_coopmat.comp: unrolled, llvmpipe
// kept O's DP·LM/SG elements per lane live across every barrier in coroutine frames (60-80 s per kernel on Mesa 25).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_memory_scope_semantics : require  // the NaN bits' workgroup-scope atomicOr, in both variants
#if !VKATTN_COOPMAT_EMULATE
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_shader_subgroup_basic : require
#endif
#include "storage.glsl"
#include "attention_params.h"

#if VKATTN_COOPMAT_EMULATE
#define FRAGMENT_LOOP [[dont_unroll]]
#else
#define FRAGMENT_LOOP [[unroll]]  // cooperative matrices and O stay in registers
#endif

layout(local_size_x_id = 0) in;                   // NSG · SG
layout(constant_id = 1) const uint DP = 64;       // head dim p.D rounded up to a multiple of LK and LN
layout(constant_id = 2) const uint LM = 16;       // the cooperative-matrix shape: A is LM × LK,
layout(constant_id = 3) const uint LN = 16;       // B is LK × LN, the accumulator LM × LN
layout(constant_id = 4) const uint LK = 16;
layout(constant_id = 5) const uint NSG = 4;       // subgroups per workgroup, LM query rows each
layout(constant_id = 6) const uint BK = 32;       // keys per tile, a multiple of LN and LK
layout(constant_id = 7) const uint SG = 32;       // invocations per subgroup (the device's subgroup size)
layout(constant_id = 8) const uint NBUF = 2;      // K/V tile buffers: 2 double-buffers, 1 does not

layout(push_constant) uniform Push { FlashParams p; };

#include "flash_common.glsl"

const uint WG = NSG * SG;
const uint BQ = NSG * LM;
const uint NW = (DP + 31) / 32;  // words of one bit per head-dim column
// Row strides, padded by 16 bytes against bank conflicts; cooperative-matrix loads and stores want 16-byte aligned
// rows: DP, BK, LN and LK are multiples of 8 (checked on the C++ side).
const uint QS = DP + 8;  // q_sh [BQ][DP + 8], k_sh and v_sh [BK][DP + 8] (fp16): row = query or key, column = d
const uint SS = BK + 4;  // s_sh [BQ][BK + 4] (fp32): scores
const uint PS = BK + 8;  // p_sh [BQ][BK + 8] (fp16): probabilities
const uint CSS = LN + 4;          // cs [NSG][LM][LN + 4] (fp32) inside s_sh: one P·V block per subgroup
const uint CS_TILE = LM * CSS;    // NSG · CS_TILE <= BQ · SS since LN <= BK

shared float16_t q_sh[BQ * QS];
shared float16_t k_sh[NBUF * BK * QS];  // buffer u at u · BK · QS
shared float16_t v_sh[NBUF * BK * QS];
shared float s_sh[BQ * SS];
shared float16_t p_sh[BQ * PS];
shared float m_sh[BQ];      // running max of the row's base-2 scores, -inf until a key is visible
shared float l_sh[BQ];      // running sum of its fp16 weights exp2(s - m)
shared float alpha_sh[BQ];  // this tile's factor of the row's O so far
shared uint nan_sh[BQ];     // the row saw a NaN score
shared uint cols_sh[BQ * NW];   // bit d: the row saw a key with a NaN in V column d
shared uint v_nan_sh[NBUF * BK * NW];  // bit d of key jj of buffer u's tile (at u · BK · NW): V [j0 + jj, d] is NaN

const uint CE = LM * LN / SG;  // elements of an LM × LN block per invocation: element e = lane + i·SG, row-major

// Stages the K and V tile of keys [j0, j0 + BK) into buffer u (see step 1 above); u's NaN bits must be clear.
void stage_tile(uint j0, uint u, uint k_base, uint v_base) {
    const uint tile = u * BK * QS;
    for (uint e = gl_LocalInvocationIndex; e < BK * DP; e += WG) {
        const uint jj = e / DP, d = e % DP;
        const uint j = j0 + jj;
        const bool inside = j < n_keys && d < p.D;
        k_sh[tile + jj * QS + d] = inside ? k_s[k_base + j * p.k.stride_l + d] : float16_t(0.0);
        const float16_t vv = inside ? v_s[v_base + j * p.v.stride_l + d] : float16_t(0.0);
        const bool v_nan = isnan(vv);
        v_sh[tile + jj * QS + d] = v_nan ? float16_t(0.0) : vv;
        // Workgroup scope: atomicOr's default (Device) needs vulkanMemoryModelDeviceScope under the memory
        // model that cooperative matrices bring (see matmul_coopmat.comp); a barrier publishes it.
        if (v_nan) {
            atomicOr(v_nan_sh[(u * BK + jj) * NW + d / 32], 1u << (d % 32), gl_ScopeWorkgroup,
                     gl_StorageSemanticsShared, gl_SemanticsRelaxed);
        }
    }
}

void main() {
    load_lengths();
    const uint tid = gl_LocalInvocationIndex;
#if VKATTN_COOPMAT_EMULATE
    const uint sg = tid / SG;
    const uint lane = tid % SG;
#else
    const uint sg = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
#endif
    const uint z = p.z0 + gl_WorkGroupID.z;
    const uint b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * BQ;
    if (row0 >= p.Lq) return;  // past the last row block of a folded grid: uniform, before any barrier
    const uint k_base = row_of(p.k, b, hk, 0);
    const uint v_base = row_of(p.v, b, hk, 0);
    const uint my_rows = sg * LM;  // the subgroup's first row in the block

    for (uint e = tid; e < BQ * DP; e += WG) {
        const uint r = e / DP, d = e % DP;
        const uint i = row0 + r;
        q_sh[r * QS + d] = (i < p.Lq && d < p.D) ? q_s[row_of(p.q, b, h, i) + q_shift + d] : float16_t(0.0);
    }
    for (uint r = tid; r < BQ; r += WG) {
        m_sh[r] = NEG_INF;
        l_sh[r] = 0.0;
        nan_sh[r] = 0;
        [[unroll]] for (uint w = 0; w < NW; ++w) cols_sh[r * NW + w] = 0;
    }
    for (uint e = tid; e < NBUF * BK * NW; e += WG) v_nan_sh[e] = 0;

    // This lane's elements of O: o[c · CE + e] is row my_rows + (lane + e·SG) / LN, column c·LN + (lane + e·SG) % LN.
    float o[DP / LN * CE];
    FRAGMENT_LOOP for (uint e = 0; e < DP / LN * CE; ++e) o[e] = 0.0;
    barrier();  // Q, row states and cleared NaN bits written → the first tile's NaN bits may be set

    const uvec2 keys = key_range(row0, min(p.Lq, row0 + BQ) - 1);
    if (keys.x < keys.y) stage_tile(keys.x, 0, k_base, v_base);  // uniform
    barrier();  // the first tile staged → S reads it
    uint u = 0;  // the buffer of the tile being computed
    for (uint j0 = keys.x; j0 < keys.y; j0 += BK) {
        const uint tile = u * BK * QS;
        // 1. With two buffers, the next tile now, into the other one (its last readers were before the barrier
        //    that ended the previous tile; its NaN bits were cleared there).
        if (NBUF == 2 && j0 + BK < keys.y) stage_tile(j0 + BK, 1 - u, k_base, v_base);  // uniform

        // 2. S [my rows, BK] = Q · K_tileᵀ; K_tile as B is column-major: B (d, key) = k_sh [key · QS + d].
        FRAGMENT_LOOP for (uint c = 0; c < BK / LN; ++c) {
#if VKATTN_COOPMAT_EMULATE
            float acc[CE];
            FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) acc[e] = 0.0;
            for (uint kk = 0; kk < DP; kk += LK) {
                const uint a = my_rows * QS + kk;        // the "loaded" A fragment: Q rows, columns kk..
                const uint bb = tile + (c * LN) * QS + kk;  // the B fragment: keys c·LN.., columns kk..
                FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                    const uint r = (lane + e * SG) / LN, cc = (lane + e * SG) % LN;
                    float sum = 0.0;
                    for (uint t = 0; t < LK; ++t) sum += float(q_sh[a + r * QS + t]) * float(k_sh[bb + cc * QS + t]);
                    acc[e] += sum;
                }
            }
            FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                const uint r = (lane + e * SG) / LN, cc = (lane + e * SG) % LN;
                s_sh[(my_rows + r) * SS + c * LN + cc] = acc[e];
            }
#else
            fcoopmatNV<32, gl_ScopeSubgroup, LM, LN> acc = fcoopmatNV<32, gl_ScopeSubgroup, LM, LN>(0.0);
            for (uint kk = 0; kk < DP; kk += LK) {
                fcoopmatNV<16, gl_ScopeSubgroup, LM, LK> a;
                fcoopmatNV<16, gl_ScopeSubgroup, LK, LN> bm;
                coopMatLoadNV(a, q_sh, my_rows * QS + kk, QS, false);
                coopMatLoadNV(bm, k_sh, tile + (c * LN) * QS + kk, QS, true);
                acc = coopMatMulAddNV(a, bm, acc);
            }
            coopMatStoreNV(acc, s_sh, my_rows * SS + c * LN, SS, false);
#endif
        }
        barrier();  // scores stored → row owners read whole rows

        // 3. Online softmax, one invocation per row: masked scores, new max, fp16 weights, their sum.
        for (uint r = tid; r < BQ; r += WG) {
            const uint i = row0 + r;
            const bool real = i < p.Lq;  // rows past Lq see no key: weights 0, never stored
            const uint ic = min(i, p.Lq - 1);
            const float m_old = m_sh[r];
            float mx = m_old;
            bool saw_nan = nan_sh[r] != 0;
            uint cols[NW];
            [[unroll]] for (uint w = 0; w < NW; ++w) cols[w] = cols_sh[r * NW + w];
            for (uint jj = 0; jj < BK; ++jj) {
                const uint j = j0 + jj;
                const float pad = (p.has_key_padding != 0 && j < n_keys) ? key_padding[b * n_keys + j] : 0.0;
                const float s = real ? masked_score(s_sh[r * SS + jj] * p.scale_log2, ic, j, pad) : NEG_INF;
                s_sh[r * SS + jj] = s;
                mx = max(mx, s);
                saw_nan = saw_nan || isnan(s);
                const uint seen = s != NEG_INF ? ~0u : 0u;  // all bits when the key is visible
                [[unroll]] for (uint w = 0; w < NW; ++w) cols[w] |= seen & v_nan_sh[(u * BK + jj) * NW + w];
            }
            const float base = mx == NEG_INF ? 0.0 : mx;  // nothing visible yet: weights stay exactly 0
            float sum = 0.0;
            for (uint jj = 0; jj < BK; ++jj) {
                const float16_t w16 = float16_t(exp2(s_sh[r * SS + jj] - base));
                p_sh[r * PS + jj] = w16;
                sum += float(w16);
            }
            const float alpha = exp2(m_old - base);
            alpha_sh[r] = alpha;
            l_sh[r] = l_sh[r] * alpha + sum;
            m_sh[r] = mx;
            nan_sh[r] = saw_nan ? 1u : 0u;
            [[unroll]] for (uint w = 0; w < NW; ++w) cols_sh[r * NW + w] = cols[w];
        }
        barrier();  // weights and alphas written → P·V reads them; s_sh is free for cs

        // This buffer's NaN bits were read in step 3: cleared for the tile staged into it next (the barrier at the
        // end of this tile orders that).
        for (uint e = tid; e < BK * NW; e += WG) v_nan_sh[u * BK * NW + e] = 0;

        // 4. O [my rows, :] = alpha · O + P_tile · V_tile, one LN-wide column block at a time through cs.
        const uint cs = sg * CS_TILE;
        FRAGMENT_LOOP for (uint c = 0; c < DP / LN; ++c) {
#if VKATTN_COOPMAT_EMULATE
            float acc[CE];
            FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) acc[e] = 0.0;
            for (uint kk = 0; kk < BK; kk += LK) {
                const uint a = my_rows * PS + kk;        // A: P rows, keys kk..
                const uint bb = tile + kk * QS + c * LN;  // B: V rows kk.., columns c·LN.. (row-major)
                FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                    const uint r = (lane + e * SG) / LN, cc = (lane + e * SG) % LN;
                    float sum = 0.0;
                    for (uint t = 0; t < LK; ++t) sum += float(p_sh[a + r * PS + t]) * float(v_sh[bb + t * QS + cc]);
                    acc[e] += sum;
                }
            }
            FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                const uint r = (lane + e * SG) / LN, cc = (lane + e * SG) % LN;
                s_sh[cs + r * CSS + cc] = acc[e];
            }
#else
            fcoopmatNV<32, gl_ScopeSubgroup, LM, LN> acc = fcoopmatNV<32, gl_ScopeSubgroup, LM, LN>(0.0);
            for (uint kk = 0; kk < BK; kk += LK) {
                fcoopmatNV<16, gl_ScopeSubgroup, LM, LK> a;
                fcoopmatNV<16, gl_ScopeSubgroup, LK, LN> bm;
                coopMatLoadNV(a, p_sh, my_rows * PS + kk, PS, false);
                coopMatLoadNV(bm, v_sh, tile + kk * QS + c * LN, QS, false);
                acc = coopMatMulAddNV(a, bm, acc);
            }
            coopMatStoreNV(acc, s_sh, cs, CSS, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();  // the block stored → every lane reads its elements
#endif
            FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                const uint r = (lane + e * SG) / LN, cc = (lane + e * SG) % LN;
                o[c * CE + e] = o[c * CE + e] * alpha_sh[my_rows + r] + s_sh[cs + r * CSS + cc];
            }
#if !VKATTN_COOPMAT_EMULATE
            subgroupBarrier();  // reads done → the next block overwrites cs
#endif
        }
        if (NBUF == 1 && j0 + BK < keys.y) {  // uniform
            barrier();  // tile reads done → the next tile overwrites it
            stage_tile(j0 + BK, 0, k_base, v_base);
        }
        barrier();  // the next tile staged; weight and cs reads done → the next tile's S overwrites them
        u = NBUF - 1 - u;  // 0 ↔ 1 with two buffers, 0 with one
    }

    // O / l, NaN where the rule says; rows past Lq and columns past D are not stored.
    FRAGMENT_LOOP for (uint c = 0; c < DP / LN; ++c) {
        FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
            const uint r = my_rows + (lane + e * SG) / LN, d = c * LN + (lane + e * SG) % LN;
            const uint i = row0 + r;
            if (i < p.Lq && d < p.D) {
                const float l = l_sh[r];
                const float inv = l == 0.0 ? 0.0 : 1.0 / l;  // no visible key: O stayed zeros
                const bool nan_col = ((cols_sh[r * NW + d / 32] >> (d % 32)) & 1u) != 0;
                const float val = (nan_sh[r] != 0 || nan_col) ? QUIET_NAN : o[c * CE + e] * inv;
                o_s[row_of(p.o, b, h, i) + d] = TO_ELEM(val);
            }
        }
    }
}
