// matmul: the kernel choice, the bindings, and the split of a large W or a large grid into dispatches.
#include "ops/matmul.hpp"

#include "matmul_params.h"
#include "ops/matmul_coopmat.hpp"
#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

namespace vkattn::ops {
namespace {

// A binding covering rows [r0, r1) of a matrix, and the element offset of row r0 inside it. The binding starts
// on a 16-byte boundary as well as the device's, so an element offset that is a multiple of 4 stays one
// inside the binding: what the kernels' vec4 loads need.
std::pair<vk::Binding, uint32_t> bind_rows(const vk::Device& device, const MatrixRef& m, uint32_t r0, uint32_t r1) {
    const uint64_t es = dtype_size(m.dtype);
    const uint64_t align = std::max<uint64_t>(16, device.info().min_storage_buffer_offset_alignment);
    const uint64_t first = m.offset + uint64_t(r0) * m.stride;
    const uint64_t last = m.offset + uint64_t(r1 - 1) * m.stride + m.cols;  // one past the last element
    const uint64_t start = first * es / align * align;
    const uint64_t range = std::min((last * es - start + 3) / 4 * 4, m.buffer->size() - start);
    return {{m.buffer->get(), start, range}, uint32_t(first - start / es)};
}

uint64_t rows_bytes(const MatrixRef& m, uint32_t rows) {
    return (uint64_t(rows - 1) * m.stride + m.cols) * dtype_size(m.dtype) + 256;  // + worst alignment slack
}

// How one kernel covers Y: a BM × BN block per workgroup, and its pipeline's specialization.
struct Geometry {
    std::string name;             // shader variant, e.g. "matmul_simd_nt_f16"
    uint32_t bm = 1, bn = 1;
    std::vector<uint32_t> spec;   // the last entry is VEC4 where has_vec4
    bool has_vec4 = false;
};

Geometry geometry(MatmulKernel kernel, const Tuning& t, const DeviceInfo& info, bool transposed, DType wt,
                  uint32_t M, uint32_t N) {
    Geometry g;
    const std::string variant = std::string(transposed ? "_nt" : "") + "_" + std::string(dtype_name(wt));
    switch (kernel) {
    case MatmulKernel::tiled:
        g.name = "matmul" + variant;
        g.bm = t.gemm_wg * t.gemm_tm;
        g.bn = t.gemm_wg * t.gemm_tn;
        g.spec = {t.gemm_wg, t.gemm_tm, t.gemm_tn, t.gemm_bk};
        break;
    case MatmulKernel::simd: {
        // Fewer rows than simd_tm: the next power of two, so that few pipelines serve every short prompt.
        const uint32_t lanes = info.subgroup_size;
        const uint32_t tn = transposed          ? t.simd_tn_t
                            : M <= t.mv_rows ? simd_decode_tn(t, lanes, M, N)
                                             : t.simd_tn;
        g.name = (t.simd_w64 ? "matmul_simd64" : "matmul_simd") + variant;
        g.bm = std::min(t.simd_tm, std::bit_ceil(M));
        g.bn = transposed ? lanes * tn : lanes * 4 * tn;  // [K, N]: each lane owns tn vec4 column groups
        g.spec = {lanes, g.bm, tn, 1};
        g.has_vec4 = true;
        break;
    }
    case MatmulKernel::matvec: {
        const uint32_t wg = transposed ? t.mv_wg_t : t.mv_wg;
        const uint32_t split = transposed ? t.mv_split_t : t.mv_split;
        g.name = "matmul_vec" + variant;
        g.bm = t.mv_rows;
        g.bn = transposed ? split : 4 * (wg / split);  // [K, N]: a vec4 of columns per invocation of a slice
        g.spec = {wg, t.mv_rows, split, 1};  // ROWS becomes each dispatch's M
        g.has_vec4 = true;
        break;
    }
    }
    return g;
}

}  // namespace

MatrixRef matrix(const vk::Buffer& buffer, DType dtype, uint32_t rows, uint32_t cols, uint64_t offset) {
    return {&buffer, dtype, offset, rows, cols, cols};
}

void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& ep) {
    record_matmul(enc, x, w, w_transposed, y, ep, MatmulOverride{});
}

void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& ep, const MatmulOverride& ov) {
    const uint32_t M = x.rows, K = x.cols;
    const uint32_t N = w_transposed ? w.rows : w.cols;
    if ((w_transposed ? w.cols : w.rows) != K || y.rows != M || y.cols != N) {
        throw Error("internal: matmul shapes X [" + std::to_string(M) + ", " + std::to_string(K) + "], W " +
                    (w_transposed ? "ᵀ" : "") + "[" + std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                    "], Y [" + std::to_string(y.rows) + ", " + std::to_string(y.cols) + "]");
    }
    if (M == 0 || N == 0) return;
    // Tensor cores where the device has them and the product fits (ops/matmul_coopmat.cpp), unless asked
    // for a particular kernel.
    if (!ov.kernel && !ov.tuning && ov.max_binding_bytes == 0 && ep.step == nullptr) {
        if (const auto cfg = coopmat_choice(enc, x, w, w_transposed, y, ep)) {  // self-checked (ops/self_check.hpp)
            record_matmul_coopmat(enc, x, w, w_transposed, y, ep, *cfg);
            return;
        }
    }
    const DeviceInfo& info = enc.device.info();
    const Tuning tune = ov.tuning ? *ov.tuning : tuning_for(info);
    const MatmulKernel kernel =
        ov.kernel ? *ov.kernel : (M <= tune.mv_rows ? tune.decode_kernel : tune.gemm_kernel);
    const Geometry g = geometry(kernel, tune, info, w_transposed, w.dtype, M, N);
    const std::span<const uint32_t> code = spirv(g.name);

    const uint64_t max_range = info.max_storage_buffer_range;
    const auto [bx, x_off] = bind_rows(enc.device, x, 0, M);
    auto [by, y_off] = bind_rows(enc.device, y, 0, M);
    if (ep.step != nullptr) by.range = y.buffer->size() - by.offset;  // whichever rows the step writes
    if (bx.range > max_range || by.range > max_range) {
        throw Error("matmul activations of " + std::to_string(std::max(bx.range, by.range)) +
                    " bytes exceed the device's maxStorageBufferRange of " + std::to_string(max_range) + " bytes");
    }
    const vk::Binding bias = ep.bias ? bind_whole(enc.device, *ep.bias, "a bias") : by;
    const vk::Binding step = ep.step ? bind_whole(enc.device, *ep.step, "the step's position") : by;

    // Rows of W per binding: all of them when they fit. Rows of W are output columns when transposed (an
    // N-split), a slice of K otherwise (a K-split whose partial products accumulate in Y).
    const uint64_t w_range = ov.max_binding_bytes ? std::min(ov.max_binding_bytes, max_range) : max_range;
    const uint32_t w_rows = w.rows;
    uint32_t chunk = w_rows;
    while (chunk > 1 && rows_bytes(w, chunk) > w_range) chunk = (chunk + 1) / 2;
    if (rows_bytes(w, chunk) > w_range) {
        throw Error("one row of a weight needs more than the device's maxStorageBufferRange of " +
                    std::to_string(w_range) + " bytes");
    }
    // K per dispatch within the device's loop budget (Tuning::loop_budget; the kernels loop about K times for
    // W [K, N], K / 4 for [N, K]): [K, N] in slices of W's rows, [N, K] in slices of every row, each slice's
    // partial products accumulating in Y.
    if (!w_transposed && tune.loop_budget > 0) chunk = std::min(chunk, tune.loop_budget);
    const uint32_t k_step = w_transposed && tune.loop_budget > 0 ? std::min(K, 4 * tune.loop_budget) : K;
    if (ep.gelu && (w_transposed ? k_step < K : chunk != w_rows)) {
        throw Error("a GELU epilogue cannot follow a matmul split along K (K = " + std::to_string(K) +
                    " in slices of " + std::to_string(w_transposed ? k_step : chunk) +
                    ", for the binding limit or the device's loop budget)");
    }
    // The grid's limits: whole blocks of columns and rows per dispatch (matvec: its ROWS rows at most). Whole
    // blocks keep a column offset a multiple of 4, as the vec4 loads need.
    const auto blocks = [](uint32_t block, uint32_t count) {
        return uint32_t(std::min<uint64_t>(uint64_t(block) * count, (uint64_t(1) << 31) / block * block));
    };
    const uint32_t cols_per = blocks(g.bn, info.max_workgroup_count[0]);
    const uint32_t rows_per = kernel == MatmulKernel::matvec ? g.bm : blocks(g.bm, info.max_workgroup_count[1]);
    if (w_transposed) chunk = std::min(chunk, cols_per);

    const uint32_t base_flags = (ep.bias ? VKATTN_MATMUL_BIAS : 0) | (ep.gelu ? VKATTN_MATMUL_GELU : 0) |
                                (ep.accumulate ? VKATTN_MATMUL_ACCUMULATE : 0);
    const uint32_t step_flag = ep.step ? VKATTN_MATMUL_STEP : 0;  // on every dispatch, whatever the K slice
    for (uint32_t r0 = 0; r0 < w_rows; r0 += chunk) {
        const uint32_t r1 = std::min(w_rows, r0 + chunk);
        const auto [bw, w_off] = bind_rows(enc.device, w, r0, r1);
        const vk::Binding bindings[] = {bx, bw, bias, by, step};
        // Columns [c0, c1) of Y in this binding: all of it when transposed (the binding is those columns).
        const uint32_t c_end = w_transposed ? r1 - r0 : N;
        const uint32_t c_step = w_transposed ? c_end : cols_per;
        for (uint32_t c0 = 0; c0 < c_end; c0 += c_step) {
            const uint32_t c1 = std::min(c_end, c0 + c_step);
            const uint32_t n0 = w_transposed ? r0 : c0;  // first column of Y
            for (uint32_t m0 = 0; m0 < M; m0 += rows_per) {
                const uint32_t m1 = std::min(M, m0 + rows_per);
                glsl::MatmulParams p{};
                p.M = m1 - m0;
                p.N = c1 - c0;
                p.x_offset = x_off + m0 * x.stride;
                p.x_stride = x.stride;
                p.w_offset = w_off + (w_transposed ? 0 : c0);
                p.w_stride = w.stride;
                p.b_offset = uint32_t(ep.bias_offset) + n0;
                p.y_offset = y_off + m0 * y.stride + n0;
                p.y_stride = y.stride;
                if (w_transposed) {
                    p.K = K;  // sliced below when longer than k_step
                    p.flags = base_flags;
                } else {
                    // A slice of K: the bias joins with the last slice, every slice after the first accumulates.
                    p.K = r1 - r0;
                    p.x_offset += r0;
                    p.flags = (r1 == w_rows ? base_flags & VKATTN_MATMUL_BIAS : 0) |
                              (base_flags & VKATTN_MATMUL_GELU) |
                              ((ep.accumulate || r0 > 0) ? VKATTN_MATMUL_ACCUMULATE : 0);
                }
                const auto dispatch = [&](glsl::MatmulParams q) {
                    q.flags |= step_flag;
                    std::vector<uint32_t> spec = g.spec;
                    if (kernel == MatmulKernel::matvec) spec[1] = q.M;
                    if (g.has_vec4) {
                        // vec4 loads: W along N and X along K ([K, N]; simd shares X by shuffles instead), or X
                        // and W both along K ([N, K]).
                        const bool w_ok = q.w_offset % 4 == 0 && w.stride % 4 == 0;
                        const bool x_ok = q.x_offset % 4 == 0 && x.stride % 4 == 0;
                        spec.back() = w_transposed ? (w_ok && x_ok && q.K % 4 == 0)
                                                   : (w_ok && q.N % 4 == 0 && (x_ok || kernel == MatmulKernel::simd));
                    }
                    const vk::Pipeline& pipeline =
                        enc.pipelines.get({g.name, code, 5, sizeof(glsl::MatmulParams), std::move(spec)});
                    const uint32_t gx = (q.N + g.bn - 1) / g.bn, gy = (q.M + g.bm - 1) / g.bm;
                    enc.recorder.dispatch(pipeline, bindings, &q, sizeof(q), {gx, gy, 1}, g.name);
                };
                // [N, K]: slices of K (a multiple of 4: the offsets keep their alignment), the bias with the
                // last, every slice after the first accumulating.
                for (uint32_t k0 = 0; k0 == 0 || k0 < p.K; k0 += k_step) {  // once for K = 0 too
                    glsl::MatmulParams q = p;
                    if (k_step < p.K) {
                        q.K = std::min(k_step, p.K - k0);
                        q.x_offset += k0;
                        q.w_offset += k0;
                        q.flags = (k0 + q.K == p.K ? base_flags & VKATTN_MATMUL_BIAS : 0) |
                                  ((ep.accumulate || k0 > 0) ? VKATTN_MATMUL_ACCUMULATE : 0);
                    }
                    dispatch(q);
                    if (!w_transposed) break;  // [K, N] slices K by the bindings above
                }
            }
        }
    }
}

}  // namespace vkattn::ops
