// matmul_coopmat: Y [M, N] = X [M, K] · W, then optionally + bias [N], GELU, + Y (flags in matmul_params.h),
// on cooperative matrices (tensor cores) through GL_NV_cooperative_matrix.
//   X fp32; W fp16, [K, N] row-major or, with VKATTN_TRANS_B, [N, K] (the tied LM head); bias fp32; Y fp32.
// The same numbers as matmul.comp's fp32 arithmetic, to fp32 accumulation order: each X value is split into
// two fp16 parts, hi = fp16(x) and lo = fp16(x - hi), which keep 22 of its 24 bits, and Y = X_hi·W + X_lo·W
// with fp16 × fp16 products exact in the fp32 accumulators. A block whose X holds a value beyond fp16's
// range (|x| > 65504) computes its outputs in plain fp32 instead, so no input overflows where matmul.comp
// would not.
// One workgroup of SGM × SGN subgroups computes a BM × BN block of Y (BM = SGM·TM·LM, BN = SGN·TN·LN).
// It walks K in BK-wide steps, staging X [BM, BK] (hi and lo) and W [BK, BN] in shared memory as fp16 with
// zeros past M, N and K, so any shape works. Each subgroup owns a (TM·LM) × (TN·LN) region: TM × TN
// accumulator matrices of LM × LN, fed by LM × LK tiles of X and LK × LN tiles of W per LK of the step. At
// the end every accumulator goes through shared memory, where the whole workgroup applies the epilogue to it
// and writes the elements that lie inside Y.
//
// VKATTN_COOPMAT_EMULATE replaces the cooperative-matrix type and its load, multiply-add and store by
// plain code with the same meaning (a subgroup is then SG consecutive invocations, each holding LM·LN/SG
// accumulator elements), so that devices without cooperative matrices, lavapipe in CI, test every index
// of this kernel: tiling, padding, both W layouts and the epilogue. The emulation's loops over fragments are
// not unrolled (FRAGMENT_LOOP) and its accumulators are one array indexed in them: unrolled, each lane's
// TM·TN·LM·LN/SG accumulators became that many values live across every barrier, which llvmpipe compiles into
// coroutine frames (a 64 × 64 block with 8-lane subgroups: 12 minutes and 10 GB on Mesa 22.3, longer on Mesa 25;
// not unrolled, under 2 seconds on both).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require  // the flag's workgroup-scope atomicOr, in both variants
#if !VKATTN_COOPMAT_EMULATE
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_shader_subgroup_basic : require
#endif
#include "matmul_params.h"

#if VKATTN_COOPMAT_EMULATE
#define FRAGMENT_LOOP [[dont_unroll]]
#else
#define FRAGMENT_LOOP [[unroll]]  // cooperative-matrix arrays are indexed by constants
#endif

layout(local_size_x_id = 0) in;                   // SGM · SGN · SG
layout(constant_id = 1) const uint LM = 16;       // the cooperative-matrix shape: A is LM × LK,
layout(constant_id = 2) const uint LN = 16;       // B is LK × LN, the accumulator LM × LN
layout(constant_id = 3) const uint LK = 16;
layout(constant_id = 4) const uint TM = 2;        // accumulators per subgroup, down and across
layout(constant_id = 5) const uint TN = 2;
layout(constant_id = 6) const uint SGM = 2;       // subgroups per workgroup, down and across
layout(constant_id = 7) const uint SGN = 2;
layout(constant_id = 8) const uint BK = 32;       // K per shared-memory step, a multiple of LK and of 8
layout(constant_id = 9) const uint SG = 32;       // invocations per subgroup (the device's subgroup size)

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float16_t w[]; };
layout(std430, binding = 2) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 3) buffer YBuf { float y[]; };
layout(push_constant) uniform Push { MatmulParams p; };

const uint NSG = SGM * SGN;
const uint WG = NSG * SG;
const uint BM = SGM * TM * LM;
const uint BN = SGN * TN * LN;
// Row strides of the shared tiles, padded by 16 bytes against bank conflicts. Cooperative-matrix loads
// and stores want 16-byte aligned rows: every stride and tile offset below is a multiple of 8 halves or
// 4 floats (LM, LN, LK and BK are multiples of 8, checked on the C++ side).
const uint XS_STRIDE = BK + 8;                    // xs_hi, xs_lo [BM][BK + 8]: row m, column k
#if VKATTN_TRANS_B
const uint WS_STRIDE = BK + 8;                    // ws [BN][BK + 8]: W's rows n, i.e. B column-major
const uint WS_SIZE = BN * WS_STRIDE;
const bool B_COL_MAJOR = true;
#else
const uint WS_STRIDE = BN + 8;                    // ws [BK][BN + 8]: row k, column n
const uint WS_SIZE = BK * WS_STRIDE;
const bool B_COL_MAJOR = false;
#endif
const uint CS_STRIDE = LN + 4;                    // cs [NSG][LM][LN + 4]: one accumulator per subgroup
const uint CS_TILE = LM * CS_STRIDE;

shared float16_t xs_hi[BM * XS_STRIDE];
shared float16_t xs_lo[BM * XS_STRIDE];
shared float16_t ws[WS_SIZE];
shared float cs[NSG * CS_TILE];
shared uint x_beyond_fp16;  // nonzero once the block's X holds a value fp16 cannot hold

float gelu_tanh(float v) {
    const float k = 0.7978845608028654;  // sqrt(2 / pi)
    return 0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v)));
}

// Y [m, n] before the epilogue in plain fp32, for blocks whose X fp16 cannot hold.
float dot_fp32(uint m, uint n) {
    float sum = 0.0;
    for (uint k = 0; k < p.K; ++k) {
#if VKATTN_TRANS_B
        const float wv = float(w[p.w_offset + n * p.w_stride + k]);
#else
        const float wv = float(w[p.w_offset + k * p.w_stride + n]);
#endif
        sum += x[p.x_offset + m * p.x_stride + k] * wv;
    }
    return sum;
}

#if VKATTN_COOPMAT_EMULATE
const uint CE = LM * LN / SG;  // accumulator elements per invocation: element e = lane + i·SG, row-major

// Element (r, c) of the B tile that starts at offset b of ws.
float b_at(uint b, uint r, uint c) {
    return B_COL_MAJOR ? float(ws[b + c * WS_STRIDE + r]) : float(ws[b + r * WS_STRIDE + c]);
}
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x;
#if VKATTN_COOPMAT_EMULATE
    const uint sg = tid / SG;
    const uint lane = tid % SG;
#else
    const uint sg = gl_SubgroupID;
#endif
    const uint sg_m = sg / SGN, sg_n = sg % SGN;
    const bool computes = sg < NSG;  // always, with WG / SG subgroups; uniform within a subgroup
    const uint m0 = gl_WorkGroupID.y * BM;
    const uint n0 = gl_WorkGroupID.x * BN;
    const uint row0 = sg_m * TM * LM;  // the subgroup's region inside the block
    const uint col0 = sg_n * TN * LN;

#if VKATTN_COOPMAT_EMULATE
    float acc[TM * TN * CE];  // accumulator (i, j) at (i · TN + j) · CE
    FRAGMENT_LOOP for (uint e = 0; e < TM * TN * CE; ++e) acc[e] = 0.0;
#else
    fcoopmatNV<32, gl_ScopeSubgroup, LM, LN> acc[TM][TN];
    [[unroll]] for (uint i = 0; i < TM; ++i)
        [[unroll]] for (uint j = 0; j < TN; ++j) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, LM, LN>(0.0);
#endif

    if (tid == 0) x_beyond_fp16 = 0;
    barrier();  // flag cleared → staging may set it

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // Stage X [BM, BK] as fp16 hi and lo parts: consecutive invocations read consecutive k of one row.
        bool beyond = false;
        for (uint e = tid; e < BM * BK; e += WG) {
            const uint r = e / BK, kk = e % BK;
            const uint m = m0 + r, k = k0 + kk;
            const float v = (m < p.M && k < p.K) ? x[p.x_offset + m * p.x_stride + k] : 0.0;
            // hi is v rounded to fp16's 11 significant bits on the integer bits, not as float16_t(v): a driver
            // may fold v - float(float16_t(v)) to 0 (NVIDIA's does: lo vanished there, X entered as plain
            // fp16), and no compiler folds the mask. Adding half of the dropped part's range, then masking,
            // rounds to nearest (a carry into the exponent is still right); hi32 is then exactly an fp16 value
            // (bar fp16 subnormals, |v| < 2^-14, which round by < 2^-25) and v - hi32 is exact in fp32
            // (Sterbenz: hi32 and v are within a factor of 2), |lo| <= 2^-11 |v|.
            const float hi32 = uintBitsToFloat((floatBitsToUint(v) + 0x1000u) & 0xFFFFE000u);
            xs_hi[r * XS_STRIDE + kk] = float16_t(hi32);
            xs_lo[r * XS_STRIDE + kk] = float16_t(v - hi32);
            beyond = beyond || abs(v) > 65504.0;
        }
        // Workgroup scope, in both variants: atomicOr's default is Device scope, which a device with the Vulkan
        // memory model but not vulkanMemoryModelDeviceScope refuses (VUID-RuntimeSpirv-vulkanMemoryModel-06265),
        // and a shared variable only needs its workgroup. The barrier below makes it visible.
        if (beyond) atomicOr(x_beyond_fp16, 1u, gl_ScopeWorkgroup, gl_StorageSemanticsShared, gl_SemanticsRelaxed);
        // Stage W [BK, BN], reading along W's contiguous dimension.
        for (uint e = tid; e < BK * BN; e += WG) {
#if VKATTN_TRANS_B
            const uint c = e / BK, kk = e % BK;
            const uint n = n0 + c, k = k0 + kk;
            ws[c * WS_STRIDE + kk] = (n < p.N && k < p.K) ? w[p.w_offset + n * p.w_stride + k] : float16_t(0.0);
#else
            const uint kk = e / BN, c = e % BN;
            const uint n = n0 + c, k = k0 + kk;
            ws[kk * WS_STRIDE + c] = (n < p.N && k < p.K) ? w[p.w_offset + k * p.w_stride + n] : float16_t(0.0);
#endif
        }
        barrier();  // tiles and flag staged → cooperative-matrix loads read them

        if (computes) {
            FRAGMENT_LOOP for (uint kk = 0; kk < BK; kk += LK) {
#if VKATTN_COOPMAT_EMULATE
                // A "loaded" tile is where it starts in shared memory; the multiply-add reads it there.
                // hi and lo are two multiply-adds, as on the hardware: each rounds to fp32 once.
                FRAGMENT_LOOP for (uint i = 0; i < TM; ++i) {
                    const uint a = (row0 + i * LM) * XS_STRIDE + kk;
                    FRAGMENT_LOOP for (uint j = 0; j < TN; ++j) {
                        const uint b = B_COL_MAJOR ? (col0 + j * LN) * WS_STRIDE + kk : kk * WS_STRIDE + col0 + j * LN;
                        FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                            const uint r = (lane + e * SG) / LN, c = (lane + e * SG) % LN;
                            float sum_hi = 0.0, sum_lo = 0.0;
                            for (uint t = 0; t < LK; ++t) {
                                sum_hi += float(xs_hi[a + r * XS_STRIDE + t]) * b_at(b, t, c);
                                sum_lo += float(xs_lo[a + r * XS_STRIDE + t]) * b_at(b, t, c);
                            }
                            acc[(i * TN + j) * CE + e] = (acc[(i * TN + j) * CE + e] + sum_hi) + sum_lo;
                        }
                    }
                }
#else
                fcoopmatNV<16, gl_ScopeSubgroup, LM, LK> a_hi[TM];
                fcoopmatNV<16, gl_ScopeSubgroup, LM, LK> a_lo[TM];
                fcoopmatNV<16, gl_ScopeSubgroup, LK, LN> b[TN];
                [[unroll]] for (uint i = 0; i < TM; ++i) {
                    coopMatLoadNV(a_hi[i], xs_hi, (row0 + i * LM) * XS_STRIDE + kk, XS_STRIDE, false);
                    coopMatLoadNV(a_lo[i], xs_lo, (row0 + i * LM) * XS_STRIDE + kk, XS_STRIDE, false);
                }
                [[unroll]] for (uint j = 0; j < TN; ++j) {
#if VKATTN_TRANS_B
                    coopMatLoadNV(b[j], ws, (col0 + j * LN) * WS_STRIDE + kk, WS_STRIDE, true);
#else
                    coopMatLoadNV(b[j], ws, kk * WS_STRIDE + col0 + j * LN, WS_STRIDE, false);
#endif
                }
                [[unroll]] for (uint i = 0; i < TM; ++i) {
                    [[unroll]] for (uint j = 0; j < TN; ++j) {
                        acc[i][j] = coopMatMulAddNV(a_hi[i], b[j], acc[i][j]);
                        acc[i][j] = coopMatMulAddNV(a_lo[i], b[j], acc[i][j]);
                    }
                }
#endif
            }
        }
        barrier();  // cooperative-matrix loads done → the next step overwrites the tiles
    }

    // Epilogue, one accumulator per subgroup at a time: each subgroup stores its (i, j) accumulator to its
    // slot of cs, then the whole workgroup finishes all NSG slots and writes what lies inside Y. The flag is
    // read after the loop's last barrier (or the first, when K = 0), so it is the same for every invocation.
    const bool fp32_block = x_beyond_fp16 != 0;
    FRAGMENT_LOOP for (uint i = 0; i < TM; ++i) {
        FRAGMENT_LOOP for (uint j = 0; j < TN; ++j) {
            if (computes && !fp32_block) {
#if VKATTN_COOPMAT_EMULATE
                FRAGMENT_LOOP for (uint e = 0; e < CE; ++e) {
                    const uint r = (lane + e * SG) / LN, c = (lane + e * SG) % LN;
                    cs[sg * CS_TILE + r * CS_STRIDE + c] = acc[(i * TN + j) * CE + e];
                }
#else
                coopMatStoreNV(acc[i][j], cs, sg * CS_TILE, CS_STRIDE, false);
#endif
            }
            barrier();  // accumulators stored to cs → epilogue reads them
            for (uint e = tid; e < NSG * LM * LN; e += WG) {
                const uint s = e / (LM * LN), r = (e / LN) % LM, c = e % LN;
                const uint m = m0 + (s / SGN) * TM * LM + i * LM + r;
                const uint n = n0 + (s % SGN) * TN * LN + j * LN + c;
                if (m >= p.M || n >= p.N) continue;
                float v = fp32_block ? dot_fp32(m, n) : cs[s * CS_TILE + r * CS_STRIDE + c];
                if ((p.flags & VKATTN_MATMUL_BIAS) != 0) v += bias[p.b_offset + n];
                if ((p.flags & VKATTN_MATMUL_GELU) != 0) v = gelu_tanh(v);
                const uint yi = p.y_offset + m * p.y_stride + n;
                if ((p.flags & VKATTN_MATMUL_ACCUMULATE) != 0) v += y[yi];
                y[yi] = v;
            }
            barrier();  // epilogue reads of cs done → the next accumulator overwrites it
        }
    }
}
