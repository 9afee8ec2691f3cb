// matmul: Y [M, N] = X [M, K] · W, then optionally + bias [N], GELU, + Y (flags in matmul_params.h).
//   X fp32; W fp32, fp16 (VKATTN_F16) or bf16 (VKATTN_BF16) storage, [K, N] row-major (GPT-2's Conv1D layout)
//   or, with VKATTN_TRANS_B, [N, K] (the tied LM head and nn.Linear weights: Y = X · Wᵀ); bias fp32; Y fp32.
// The GPU kernel (matmul_simd.comp serves CPU devices, matmul_vec.comp the few-row decode step).
// One workgroup of WG × WG invocations computes a BM × BN block (BM = WG·TM, BN = WG·TN): it walks K in
// BK-wide steps, staging X [BM, BK] and W [BK, BN] in shared memory, and each invocation keeps a TM × TN
// block of accumulators in registers, so every staged value is used TM or TN times. Invocation (tx, ty) owns
// rows ty + r·WG and columns tx + c·WG: a row of invocations reads consecutive words of a staged row, and
// stores to Y are coalesced.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "matmul_common.glsl"

layout(local_size_x_id = 0, local_size_y_id = 0) in;
layout(constant_id = 0) const uint WG = 16;
layout(constant_id = 1) const uint TM = 4;
layout(constant_id = 2) const uint TN = 4;
layout(constant_id = 3) const uint BK = 16;

const uint BM = WG * TM;
const uint BN = WG * TN;
// X is staged transposed, so the inner loop reads a row of it. Stagings that walk k across invocations
// (all of X, and W when transposed) write a column: the +1 pads the rows apart so those writes fall in
// different banks.
shared float xs[BK][BM + 1];
shared float ws[BK][BN + 1];

void main() {
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG + tx;
    const uint m0 = gl_WorkGroupID.y * BM;
    const uint n0 = gl_WorkGroupID.x * BN;

    float acc[TM][TN];
    for (uint r = 0; r < TM; ++r)
        for (uint c = 0; c < TN; ++c) acc[r][c] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // Stage X [BM, BK]: consecutive invocations read consecutive k of one row.
        for (uint e = tid; e < BM * BK; e += WG * WG) {
            const uint r = e / BK, kk = e % BK;
            const uint m = m0 + r, k = k0 + kk;
            xs[kk][r] = (m < p.M && k < p.K) ? x[p.x_offset + m * p.x_stride + k] : 0.0;
        }
        // Stage W [BK, BN], reading along W's contiguous dimension.
        for (uint e = tid; e < BK * BN; e += WG * WG) {
#if VKATTN_TRANS_B
            const uint c = e / BK, kk = e % BK;
            const uint n = n0 + c, k = k0 + kk;
            ws[kk][c] = (n < p.N && k < p.K) ? w_at(p.w_offset + n * p.w_stride + k) : 0.0;
#else
            const uint kk = e / BN, c = e % BN;
            const uint n = n0 + c, k = k0 + kk;
            ws[kk][c] = (n < p.N && k < p.K) ? w_at(p.w_offset + k * p.w_stride + n) : 0.0;
#endif
        }
        barrier();  // tiles staged → register blocks read them
        for (uint kk = 0; kk < BK; ++kk) {
            float a[TM];
            float b[TN];
            for (uint r = 0; r < TM; ++r) a[r] = xs[kk][ty + r * WG];
            for (uint c = 0; c < TN; ++c) b[c] = ws[kk][tx + c * WG];
            for (uint r = 0; r < TM; ++r)
                for (uint c = 0; c < TN; ++c) acc[r][c] += a[r] * b[c];
        }
        barrier();  // register blocks done → next step overwrites the tiles
    }

    for (uint r = 0; r < TM; ++r) {
        const uint m = m0 + ty + r * WG;
        if (m >= p.M) continue;
        for (uint c = 0; c < TN; ++c) {
            const uint n = n0 + tx + c * WG;
            if (n < p.N) store_output(m, n, acc[r][c]);
        }
    }
}
