// matmul_vec: Y [M, N] = X [M, K] · W (+ bias [N]) (GELU) (+ Y) for a few rows of X: the decode step, where
// the time goes to reading W, so each weight is read once and N is spread over many workgroups.
//   X fp32 [M, K]; W fp32, fp16 (VKATTN_F16) or bf16 (VKATTN_BF16) storage, [K, N] or, with VKATTN_TRANS_B,
//   [N, K]; Y fp32 [M, N].
//   ROWS is M itself (a pipeline per M up to a few), so no work is wasted on absent rows.
// One workgroup of WG invocations:
//   [K, N] (Conv1D weights): 4 · WG / SPLIT consecutive columns. The invocations form SPLIT slices of WG / SPLIT;
//          invocation t owns columns 4·(t mod WG/SPLIT) .. + 3 of the block (one vec4 of each W row, so a
//          slice reads whole rows coalesced) over the groups of four rows k / 4 ≡ t / (WG/SPLIT) (mod SPLIT),
//          reading X [r, k .. k + 3] as one vec4.
//   [N, K] (the LM head against wte): SPLIT rows of W, i.e. SPLIT columns of Y. Invocation t reads the vec4s
//          4·t, 4·(t + WG), ... of each of those rows (coalesced), dotting them with the same k of X.
// The partial sums then meet in shared memory: a tree over the SPLIT slices ([K, N]) or over all WG
// invocations ([N, K]). With SPLIT = 1 the [K, N] form needs no barrier.
// VEC4 false (an offset, stride or the vectorised dimension not a multiple of 4) reads element by element.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "matmul_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;     // a power of two
layout(constant_id = 1) const uint ROWS = 1;    // rows of X and Y: M
layout(constant_id = 2) const uint SPLIT = 4;   // [K, N]: slices of K (a power of two dividing WG); [N, K]: rows of W
layout(constant_id = 3) const bool VEC4 = true;

#if !VKATTN_TRANS_B
const uint CT = WG / SPLIT;    // column invocations per slice
const uint PARTS = 4 * ROWS;   // partial sums per invocation
#else
const uint PARTS = ROWS * SPLIT;
#endif
shared float part[PARTS][WG];

// Elements k .. k + 3 of a row of X (or, transposed, of W) starting at `row`, zero past K.
vec4 load_x4(uint row, uint k) {
    if (VEC4 && k + 4 <= p.K) return x4[(row + k) / 4];
    return vec4(k < p.K ? x[row + k] : 0.0, k + 1 < p.K ? x[row + k + 1] : 0.0, k + 2 < p.K ? x[row + k + 2] : 0.0,
                k + 3 < p.K ? x[row + k + 3] : 0.0);
}
#if !VKATTN_TRANS_B
// Columns n .. n + 3 of W row k, clamped to the last group of columns (computed, never stored).
vec4 load_w4(uint k, uint n) {
    const uint row = p.w_offset + k * p.w_stride;
    if (VEC4) return w4_at((row + min(n, p.N - 4)) / 4);
    const uint last = p.N - 1;
    return vec4(w_at(row + min(n, last)), w_at(row + min(n + 1, last)), w_at(row + min(n + 2, last)),
                w_at(row + min(n + 3, last)));
}
#else
vec4 load_w4(uint row, uint k) {
    if (VEC4) return w4_at((row + k) / 4);
    return vec4(k < p.K ? w_at(row + k) : 0.0, k + 1 < p.K ? w_at(row + k + 1) : 0.0,
                k + 2 < p.K ? w_at(row + k + 2) : 0.0, k + 3 < p.K ? w_at(row + k + 3) : 0.0);
}
#endif

void main() {
    const uint t = gl_LocalInvocationID.x;
    uint xrow[ROWS];
    for (uint r = 0; r < ROWS; ++r) xrow[r] = p.x_offset + r * p.x_stride;

#if !VKATTN_TRANS_B
    const uint slice = t / CT;
    const uint n = gl_WorkGroupID.x * (4 * CT) + 4 * (t % CT);
    vec4 acc[ROWS];
    for (uint r = 0; r < ROWS; ++r) acc[r] = vec4(0.0);
    uint k = SPLIT == 1 ? 0 : 4 * slice;  // (a start the compiler sees is uniform when there is one slice)
    for (; k + 4 <= p.K; k += 4 * SPLIT) {  // four rows of W per step, X read as one vec4
        vec4 a[ROWS];
        for (uint r = 0; r < ROWS; ++r) a[r] = load_x4(xrow[r], k);
        for (uint j = 0; j < 4; ++j) {
            const vec4 b = load_w4(k + j, n);
            for (uint r = 0; r < ROWS; ++r) acc[r] += a[r][j] * b;
        }
    }
    if (k < p.K) {  // the last K mod 4 rows, in the one slice whose turn it is
        vec4 a[ROWS];
        for (uint r = 0; r < ROWS; ++r) a[r] = load_x4(xrow[r], k);
        for (uint j = 0; k + j < p.K; ++j) {
            const vec4 b = load_w4(k + j, n);
            for (uint r = 0; r < ROWS; ++r) acc[r] += a[r][j] * b;
        }
    }
    if (SPLIT > 1) {
        for (uint r = 0; r < ROWS; ++r)
            for (uint j = 0; j < 4; ++j) part[4 * r + j][t] = acc[r][j];
        for (uint half_ = SPLIT / 2; half_ > 0; half_ /= 2) {
            barrier();  // partial sums of slices [0, 2·half_) written → slices [0, half_) add the upper half
            if (slice < half_)
                for (uint v = 0; v < PARTS; ++v) part[v][t] += part[v][t + half_ * CT];
        }
        barrier();  // slice 0 holds the totals → its invocations read them back
        if (slice == 0)
            for (uint r = 0; r < ROWS; ++r)
                for (uint j = 0; j < 4; ++j) acc[r][j] = part[4 * r + j][t];
    }
    if (slice == 0)
        for (uint r = 0; r < ROWS; ++r)
            for (uint j = 0; j < 4; ++j)
                if (n + j < p.N) store_output(r, n + j, acc[r][j]);
#else
    const uint n0 = gl_WorkGroupID.x * SPLIT;
    uint wrow[SPLIT];  // rows of W past N repeat the last one
    for (uint c = 0; c < SPLIT; ++c) wrow[c] = p.w_offset + min(n0 + c, p.N - 1) * p.w_stride;
    float acc[ROWS][SPLIT];
    for (uint r = 0; r < ROWS; ++r)
        for (uint c = 0; c < SPLIT; ++c) acc[r][c] = 0.0;
    for (uint k = 4 * t; k < p.K; k += 4 * WG) {
        vec4 a[ROWS];
        for (uint r = 0; r < ROWS; ++r) a[r] = load_x4(xrow[r], k);
        for (uint c = 0; c < SPLIT; ++c) {
            const vec4 b = load_w4(wrow[c], k);
            for (uint r = 0; r < ROWS; ++r) acc[r][c] += dot(a[r], b);
        }
    }
    for (uint r = 0; r < ROWS; ++r)
        for (uint c = 0; c < SPLIT; ++c) part[r * SPLIT + c][t] = acc[r][c];
    for (uint half_ = WG / 2; half_ > 0; half_ /= 2) {
        barrier();  // partial sums of invocations [0, 2·half_) written → [0, half_) add the upper half
        if (t < half_)
            for (uint v = 0; v < PARTS; ++v) part[v][t] += part[v][t + half_];
    }
    barrier();  // part[v][0] holds every total → invocation v stores output v
    for (uint v = t; v < PARTS; v += WG) {
        const uint r = v / SPLIT, n = n0 + v % SPLIT;
        if (n < p.N) store_output(r, n, part[v][0]);
    }
#endif
}
