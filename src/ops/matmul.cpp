// matmul: tiled, register-blocked GEMM with a fused epilogue (shaders/matmul.comp).
#include "ops/matmul.hpp"

#include "matmul_params.h"
#include "ops/shader_table.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::ops {
namespace {

// A binding covering rows [r0, r1) of a matrix, and the element offset of row r0 inside it.
std::pair<vk::Binding, uint32_t> bind_rows(const vk::Device& device, const MatrixRef& m, uint32_t r0, uint32_t r1) {
    const uint64_t es = dtype_size(m.dtype);
    const uint64_t align = device.info().min_storage_buffer_offset_alignment;
    const uint64_t first = m.offset + uint64_t(r0) * m.stride;
    const uint64_t last = m.offset + uint64_t(r1 - 1) * m.stride + m.cols;  // one past the last element
    const uint64_t start = first * es / align * align;
    const uint64_t range = std::min((last * es - start + 3) / 4 * 4, m.buffer->size() - start);
    return {{m.buffer->get(), start, range}, uint32_t(first - start / es)};
}

uint64_t rows_bytes(const MatrixRef& m, uint32_t rows) {
    return (uint64_t(rows - 1) * m.stride + m.cols) * dtype_size(m.dtype) + 256;  // + worst alignment slack
}

}  // namespace

MatrixRef matrix(const vk::Buffer& buffer, DType dtype, uint32_t rows, uint32_t cols, uint64_t offset) {
    return {&buffer, dtype, offset, rows, cols, cols};
}

void record_matmul(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed, const MatrixRef& y,
                   const MatmulEpilogue& ep) {
    const uint32_t M = x.rows, K = x.cols;
    const uint32_t N = w_transposed ? w.rows : w.cols;
    if ((w_transposed ? w.cols : w.rows) != K || y.rows != M || y.cols != N) {
        throw Error("internal: matmul shapes X [" + std::to_string(M) + ", " + std::to_string(K) + "], W " +
                    (w_transposed ? "ᵀ" : "") + "[" + std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                    "], Y [" + std::to_string(y.rows) + ", " + std::to_string(y.cols) + "]");
    }
    if (M == 0 || N == 0) return;
    const Tuning tune = tuning_for(enc.device.info());
    std::string name = std::string("matmul") + (w_transposed ? "_nt" : "") + (w.dtype == DType::f16 ? "_f16" : "_f32");
    const vk::Pipeline& pipeline = enc.pipelines.get({name, spirv(name), 4, sizeof(glsl::MatmulParams),
                                                      {tune.gemm_wg, tune.gemm_tm, tune.gemm_tn, tune.gemm_bk}});
    const uint64_t max_range = enc.device.info().max_storage_buffer_range;
    const auto [bx, x_off] = bind_rows(enc.device, x, 0, M);
    const auto [by, y_off] = bind_rows(enc.device, y, 0, M);
    if (bx.range > max_range || by.range > max_range) {
        throw Error("matmul activations of " + std::to_string(std::max(bx.range, by.range)) +
                    " bytes exceed the device's maxStorageBufferRange of " + std::to_string(max_range) + " bytes");
    }
    const vk::Binding bias = ep.bias ? bind_whole(enc.device, *ep.bias, "a bias") : by;

    // Rows of W per dispatch: all of them when they fit one binding.
    const uint32_t w_rows = w.rows;
    uint32_t chunk = w_rows;
    while (chunk > 1 && rows_bytes(w, chunk) > max_range) chunk = (chunk + 1) / 2;
    if (rows_bytes(w, chunk) > max_range) {
        throw Error("one row of a weight needs more than the device's maxStorageBufferRange of " +
                    std::to_string(max_range) + " bytes");
    }
    const uint32_t BM = tune.gemm_wg * tune.gemm_tm, BN = tune.gemm_wg * tune.gemm_tn;
    for (uint32_t r0 = 0; r0 < w_rows; r0 += chunk) {
        const uint32_t r1 = std::min(w_rows, r0 + chunk);
        const auto [bw, w_off] = bind_rows(enc.device, w, r0, r1);
        glsl::MatmulParams p{};
        p.M = M;
        p.x_stride = x.stride;
        p.w_offset = w_off;
        p.w_stride = w.stride;
        p.b_offset = uint32_t(ep.bias_offset);
        p.y_stride = y.stride;
        if (w_transposed) {
            // Rows of Wᵀ are output columns: this dispatch computes columns [r0, r1) of Y.
            p.N = r1 - r0;
            p.K = K;
            p.x_offset = x_off;
            p.y_offset = y_off + r0;
            p.b_offset += r0;
            p.flags = (ep.bias ? VKATTN_MATMUL_BIAS : 0) | (ep.gelu ? VKATTN_MATMUL_GELU : 0) |
                      (ep.accumulate ? VKATTN_MATMUL_ACCUMULATE : 0);
        } else {
            // Rows of W are a slice of K: partial products accumulate; the epilogue runs with the last.
            if (r1 - r0 != w_rows && ep.gelu) {
                throw Error("internal: a GELU epilogue cannot follow a K-split matmul");
            }
            p.N = N;
            p.K = r1 - r0;
            p.x_offset = x_off + r0;
            p.y_offset = y_off;
            const bool last = r1 == w_rows;
            p.flags = (last && ep.bias ? VKATTN_MATMUL_BIAS : 0) | (ep.gelu ? VKATTN_MATMUL_GELU : 0) |
                      ((ep.accumulate || r0 > 0) ? VKATTN_MATMUL_ACCUMULATE : 0);
        }
        const vk::Binding bindings[] = {bx, bw, bias, by};
        enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {(p.N + BN - 1) / BN, (M + BM - 1) / BM, 1}, name);
    }
}

}  // namespace vkattn::ops
