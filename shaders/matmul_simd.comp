// matmul_simd: Y [M, N] = X [M, K] · W (+ bias [N]) (GELU) (+ Y), for CPU-type devices (llvmpipe, SwiftShader).
//   X fp32 [M, K]; W fp32, fp16 (VKATTN_F16) or bf16 (VKATTN_BF16) storage, [K, N] or, with VKATTN_TRANS_B,
//   [N, K]; Y fp32 [M, N].
// There a workgroup runs on one CPU thread and its invocations are the lanes of a SIMD register; shared memory
// and barrier() are expensive (a barrier switches between per-subgroup coroutines) while global loads are
// cached CPU loads, cheapest as vec4 (a scalar SSBO load costs about as much as a vec4 one on llvmpipe). So this
// kernel has neither: a workgroup of LANES invocations (the subgroup size) computes a TM × BN block of Y
// with lane l owning the columns n ≡ l of the block (BN = LANES · 4 · TN, or LANES · TN transposed) and
// keeping TM rows × its columns in registers. X is read once per subgroup: lane s loads X[m, k + s] and
// subgroupShuffle hands it to every lane in turn, so each X value costs one load per LANES columns.
//   [K, N]: lane l owns the vec4 column groups n0 + 4·(l + LANES·c) .. + 3, c < TN; a step of k loads one
//           vec4 of W row k per group and adds X[m, k] · that vec4 to each row m's accumulators.
//   [N, K]: lane l owns the columns (rows of W) n0 + l + LANES·c; a step loads 4 consecutive k of its W rows
//           as one vec4 and dots it with the shuffled X[m, k .. k + 3].
// VEC4 false (an offset, stride or the vectorised dimension not a multiple of 4) reads the same vec4s element
// by element, with the edges guarded: slower, the same results.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "storage.glsl"
#include "matmul_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint LANES = 8;  // the subgroup size
layout(constant_id = 1) const uint TM = 16;    // rows of Y per workgroup
layout(constant_id = 2) const uint TN = 2;     // column groups per lane
layout(constant_id = 3) const bool VEC4 = true;

#if !VKATTN_TRANS_B
// Columns n .. n + 3 of W row k, as col_index(n) and row_index(k) locate them; groups past N are clamped to the
// last one (computed, never stored).
uint col_index(uint n) { return VEC4 ? (p.w_offset + min(n, p.N - 4)) / 4 : p.w_offset + n; }
uint row_index(uint k) { return VEC4 ? k * (p.w_stride / 4) : k * p.w_stride; }
vec4 load_w4(uint row, uint col) {
    if (VEC4) return w4_at(row + col);
    const uint last = p.w_offset + p.N - 1;
    return vec4(w_at(row + min(col, last)), w_at(row + min(col + 1, last)), w_at(row + min(col + 2, last)),
                w_at(row + min(col + 3, last)));
}
#else
// Elements k .. k + 3 of a row of X or W starting at `row`, zero past K.
vec4 load_x4(uint row, uint k) {
    if (VEC4) return x4[(row + k) / 4];
    return vec4(k < p.K ? x[row + k] : 0.0, k + 1 < p.K ? x[row + k + 1] : 0.0, k + 2 < p.K ? x[row + k + 2] : 0.0,
                k + 3 < p.K ? x[row + k + 3] : 0.0);
}
vec4 load_w4(uint row, uint k) {
    if (VEC4) return w4_at((row + k) / 4);
    return vec4(k < p.K ? w_at(row + k) : 0.0, k + 1 < p.K ? w_at(row + k + 1) : 0.0,
                k + 2 < p.K ? w_at(row + k + 2) : 0.0, k + 3 < p.K ? w_at(row + k + 3) : 0.0);
}
#endif

void main() {
    const uint lane = gl_LocalInvocationID.x;
    // Shuffles stay inside one subgroup: if the device runs this workgroup as several smaller subgroups, each
    // shares X among its own S lanes; if as part of a larger one, only the LANES lanes that exist take part.
    const uint S = min(gl_SubgroupSize, LANES);
    const uint s = gl_SubgroupInvocationID;
    const uint m0 = gl_WorkGroupID.y * TM;

    uint xrow[TM];  // rows past M repeat the last row; they are computed and never stored
    for (uint r = 0; r < TM; ++r) xrow[r] = p.x_offset + min(m0 + r, p.M - 1) * p.x_stride;

#if !VKATTN_TRANS_B
    const uint n0 = gl_WorkGroupID.x * (LANES * 4 * TN);
    uint col[TN];
    for (uint c = 0; c < TN; ++c) col[c] = col_index(n0 + 4 * (lane + LANES * c));
    vec4 acc[TM][TN];
    for (uint r = 0; r < TM; ++r)
        for (uint c = 0; c < TN; ++c) acc[r][c] = vec4(0.0);

    uint k = 0;
    for (; k + S <= p.K; k += S) {
        float xs[TM];  // lane s holds X[m0 + r, k + s]
        for (uint r = 0; r < TM; ++r) xs[r] = x[xrow[r] + k + s];
        for (uint i = 0; i < S; ++i) {
            const uint row = row_index(k + i);
            vec4 b[TN];
            for (uint c = 0; c < TN; ++c) b[c] = load_w4(row, col[c]);
            for (uint r = 0; r < TM; ++r) {
                const float a = subgroupShuffle(xs[r], i);  // X[m0 + r, k + i] in every lane
                for (uint c = 0; c < TN; ++c) acc[r][c] += a * b[c];
            }
        }
    }
    for (; k < p.K; ++k) {  // the last K mod S steps read X directly
        const uint row = row_index(k);
        vec4 b[TN];
        for (uint c = 0; c < TN; ++c) b[c] = load_w4(row, col[c]);
        for (uint r = 0; r < TM; ++r) {
            const float a = x[xrow[r] + k];
            for (uint c = 0; c < TN; ++c) acc[r][c] += a * b[c];
        }
    }

    for (uint r = 0; r < TM; ++r) {
        const uint m = m0 + r;
        if (m >= p.M) break;
        for (uint c = 0; c < TN; ++c)
            for (uint j = 0; j < 4; ++j) {
                const uint n = n0 + 4 * (lane + LANES * c) + j;
                if (n < p.N) store_output(m, n, acc[r][c][j]);
            }
    }
#else
    const uint n0 = gl_WorkGroupID.x * (LANES * TN);
    uint wrow[TN];  // columns past N repeat the last one
    for (uint c = 0; c < TN; ++c) wrow[c] = p.w_offset + min(n0 + lane + LANES * c, p.N - 1) * p.w_stride;
    float acc[TM][TN];
    for (uint r = 0; r < TM; ++r)
        for (uint c = 0; c < TN; ++c) acc[r][c] = 0.0;

    uint k = 0;
    for (; k + 4 * S <= p.K; k += 4 * S) {
        vec4 xs[TM];  // lane s holds X[m0 + r, k + 4s .. k + 4s + 3]
        for (uint r = 0; r < TM; ++r) xs[r] = load_x4(xrow[r], k + 4 * s);
        for (uint i = 0; i < S; ++i) {
            vec4 b[TN];
            for (uint c = 0; c < TN; ++c) b[c] = load_w4(wrow[c], k + 4 * i);
            for (uint r = 0; r < TM; ++r) {
                const vec4 a = subgroupShuffle(xs[r], i);
                for (uint c = 0; c < TN; ++c) acc[r][c] += dot(a, b[c]);
            }
        }
    }
    for (; k < p.K; k += 4) {  // the last K mod 4S, four at a time (guarded past K when not VEC4)
        vec4 b[TN];
        for (uint c = 0; c < TN; ++c) b[c] = load_w4(wrow[c], k);
        for (uint r = 0; r < TM; ++r) {
            const vec4 a = load_x4(xrow[r], k);
            for (uint c = 0; c < TN; ++c) acc[r][c] += dot(a, b[c]);
        }
    }

    for (uint r = 0; r < TM; ++r) {
        const uint m = m0 + r;
        if (m >= p.M) break;
        for (uint c = 0; c < TN; ++c) {
            const uint n = n0 + lane + LANES * c;
            if (n < p.N) store_output(m, n, acc[r][c]);
        }
    }
#endif
}
