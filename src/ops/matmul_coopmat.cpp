// matmul on cooperative matrices: blocking, bindings and grid for shaders/matmul_coopmat.comp.
#include "ops/matmul_coopmat.hpp"

#include "matmul_params.h"
#include "ops/self_check.hpp"
#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>
#include <vkattn/reference.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace vkattn::ops {
namespace {

// The binding covering a whole matrix and the element offset of its first element inside it.
std::pair<vk::Binding, uint32_t> bind_matrix(const vk::Device& device, const MatrixRef& m) {
    const uint64_t es = dtype_size(m.dtype);
    const uint64_t align = device.info().min_storage_buffer_offset_alignment;
    const uint64_t first = m.offset;
    const uint64_t last = m.offset + uint64_t(m.rows - 1) * m.stride + m.cols;  // one past the last element
    const uint64_t start = first * es / align * align;
    const uint64_t range = std::min((last * es - start + 3) / 4 * 4, m.buffer->size() - start);
    return {{m.buffer->get(), start, range}, uint32_t(first - start / es)};
}

// Elements [0, end) of the matrix's binding that the kernel indexes, which must stay below 2^32.
uint64_t index_end(const MatrixRef& m) {
    return m.offset + uint64_t(m.rows - 1) * m.stride + m.cols;
}

std::string kernel_name(bool emulate, bool w_transposed) {
    return std::string("matmul_coopmat") + (emulate ? "_emu" : "") + (w_transposed ? "_nt" : "") + "_f16";
}

std::vector<uint32_t> specialization(const CoopmatConfig& cfg) {
    return {cfg.invocations(), cfg.shape[0], cfg.shape[1], cfg.shape[2], cfg.tm, cfg.tn, cfg.sgm, cfg.sgn, cfg.bk,
            cfg.subgroup};
}

}  // namespace

uint64_t CoopmatConfig::shared_bytes(bool w_transposed) const {
    const uint64_t x_tiles = 2 * uint64_t(block_m()) * (bk + 8) * 2;  // hi and lo
    const uint64_t w_tile = w_transposed ? uint64_t(block_n()) * (bk + 8) * 2 : uint64_t(bk) * (block_n() + 8) * 2;
    const uint64_t c_tiles = uint64_t(sgm) * sgn * shape[0] * (shape[1] + 4) * 4;
    return x_tiles + w_tile + c_tiles + 4;
}

CoopmatConfig coopmat_config(const DeviceInfo& d, uint32_t M, uint32_t N) {
    CoopmatConfig c;
    if (d.coopmat_shape[0] != 0) c.shape = d.coopmat_shape;
    c.subgroup = d.subgroup_size;
    c.bk = 32;  // a multiple of every LK the device check accepts (8, 16, 32)
    // 4 subgroups, each with 2 × 2 accumulators; 4 × 4 when the 128-wide blocks still number a few per
    // multiprocessor of a large GPU (~128 multiprocessors), so each staged value feeds twice the products.
    const uint64_t big_blocks = uint64_t((M + 127) / 128) * ((N + 127) / 128);
    if (big_blocks >= 256 && c.shape[0] == 16 && c.shape[1] == 16) c.tm = c.tn = 4;
    // Within the device's shared memory (48 KiB on NVIDIA holds any of these): a shorter K step first.
    auto fits = [&] { return std::max(c.shared_bytes(false), c.shared_bytes(true)) <= d.max_shared_memory; };
    if (!fits() && c.shape[2] <= 16) c.bk = 16;
    if (!fits()) c.tm = c.tn = 2;
    return c;
}

bool coopmat_fits(const vk::Device& device, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                  const MatrixRef& y, const MatmulEpilogue& ep, const CoopmatConfig& cfg) {
    const DeviceInfo& d = device.info();
    if (w.dtype != DType::f16 || x.dtype != DType::f32 || y.dtype != DType::f32) return false;
    if (!d.fp16_arithmetic || !d.storage_16bit) return false;  // fp16 shared-memory tiles, fp16 weights
    const auto [lm, ln, lk] = cfg.shape;
    for (uint32_t v : {lm, ln, lk}) {
        if (v != 8 && v != 16 && v != 32) return false;  // keeps the kernel's rows 16-byte aligned
    }
    if (cfg.bk % lk != 0 || cfg.bk % 8 != 0 || cfg.subgroup == 0) return false;
    if (cfg.emulate && (lm * ln) % cfg.subgroup != 0) return false;
    if (cfg.invocations() > d.max_workgroup_invocations || cfg.invocations() > d.max_workgroup_size[0]) return false;
    if (cfg.shared_bytes(w_transposed) > d.max_shared_memory) return false;
    const uint32_t M = x.rows, N = y.cols;
    if ((N + cfg.block_n() - 1) / cfg.block_n() > d.max_workgroup_count[0] ||
        (M + cfg.block_m() - 1) / cfg.block_m() > d.max_workgroup_count[1]) {
        return false;
    }
    // One binding each: the weights larger than maxStorageBufferRange that record_matmul splits stay there.
    const uint64_t max_range = d.max_storage_buffer_range;
    for (const MatrixRef* m : {&x, &w, &y}) {
        if (m->rows == 0 || m->cols == 0) return false;
        if (bind_matrix(device, *m).first.range > max_range || index_end(*m) >= (uint64_t(1) << 32)) return false;
    }
    if (ep.bias != nullptr && ep.bias->size() > max_range) return false;
    return true;
}

void record_matmul_coopmat(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                           const MatrixRef& y, const MatmulEpilogue& ep, const CoopmatConfig& cfg) {
    const uint32_t M = x.rows, K = x.cols, N = y.cols;
    if ((w_transposed ? w.cols : w.rows) != K || (w_transposed ? w.rows : w.cols) != N || y.rows != M) {
        throw Error("internal: coopmat matmul shapes X [" + std::to_string(M) + ", " + std::to_string(K) + "], W [" +
                    std::to_string(w.rows) + ", " + std::to_string(w.cols) + "], Y [" + std::to_string(y.rows) +
                    ", " + std::to_string(y.cols) + "]");
    }
    if (w.dtype != DType::f16) {  // record_matmul sends f32 and bf16 weights to its other kernels
        throw Error("the cooperative-matrix matmul takes f16 weights, not " + std::string(dtype_name(w.dtype)));
    }
    if (!coopmat_fits(enc.device, x, w, w_transposed, y, ep, cfg)) {
        throw Error("internal: the cooperative-matrix matmul was asked for a product it does not take");
    }
    const std::string name = kernel_name(cfg.emulate, w_transposed);
    const vk::Pipeline& pipeline =
        enc.pipelines.get({name, spirv(name), 4, sizeof(glsl::MatmulParams), specialization(cfg)});
    const auto [bx, x_off] = bind_matrix(enc.device, x);
    const auto [bw, w_off] = bind_matrix(enc.device, w);
    const auto [by, y_off] = bind_matrix(enc.device, y);
    const vk::Binding bias = ep.bias ? vk::Binding{ep.bias->get(), 0, ep.bias->size()} : by;

    glsl::MatmulParams p{};
    p.M = M;
    p.N = N;
    p.K = K;
    p.x_offset = x_off;
    p.x_stride = x.stride;
    p.w_offset = w_off;
    p.w_stride = w.stride;
    p.b_offset = uint32_t(ep.bias_offset);
    p.y_offset = y_off;
    p.y_stride = y.stride;
    p.flags = (ep.bias ? VKATTN_MATMUL_BIAS : 0) | (ep.gelu ? VKATTN_MATMUL_GELU : 0) |
              (ep.accumulate ? VKATTN_MATMUL_ACCUMULATE : 0);
    const vk::Binding bindings[] = {bx, bw, bias, by};
    const uint32_t BM = cfg.block_m(), BN = cfg.block_n();
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {(N + BN - 1) / BN, (M + BM - 1) / BM, 1}, name);
}

std::string coopmat_self_check(Encoder& enc, const CoopmatConfig& cfg, bool w_transposed) {
    vk::Device& dev = enc.device;
    const uint32_t M = cfg.block_m() + 3, K = 2 * cfg.bk + 5, N = cfg.block_n() + 3;
    // X = a + b · 2^-10 (exact in fp32, 17 significant bits): its fp16 lo parts are not zero.
    const CheckValues a = check_values(size_t(M) * K, 0x51ed270bu), b = check_values(size_t(M) * K, 0x0bad5eedu);
    const CheckValues w = check_values(size_t(K) * N, 0x3c6ef372u), bias = check_values(N, 0xa54ff53au);
    std::vector<float> x(size_t(M) * K), w_ref(size_t(K) * N);
    for (size_t i = 0; i < x.size(); ++i) x[i] = a.f32[i] + std::ldexp(b.f32[i], -10);
    // The device's W is [K, N], or [N, K] when transposed: w.f16 in that layout, w_ref [K, N] for the reference.
    for (uint32_t r = 0; r < (w_transposed ? N : K); ++r)
        for (uint32_t c = 0; c < (w_transposed ? K : N); ++c) {
            const float v = w.f32[size_t(r) * (w_transposed ? K : N) + c];
            w_ref[w_transposed ? size_t(c) * N + r : size_t(r) * N + c] = v;
        }
    vk::Buffer xb(dev, x.size() * 4), wb(dev, w.f16.size() * 2), bb(dev, size_t(N) * 4), yb(dev, size_t(M) * N * 4);
    dev.upload(xb, 0, x.data(), x.size() * 4);
    dev.upload(wb, 0, w.f16.data(), w.f16.size() * 2);
    dev.upload(bb, 0, bias.f32.data(), size_t(N) * 4);
    MatmulEpilogue ep;
    ep.bias = &bb;
    {
        vk::Recorder recorder(dev, false);  // its own submission, inside the caller's recording
        Encoder check{dev, enc.pipelines, recorder};
        record_matmul_coopmat(check, matrix(xb, DType::f32, M, K),
                              matrix(wb, DType::f16, w_transposed ? N : K, w_transposed ? K : N), w_transposed,
                              matrix(yb, DType::f32, M, N), ep, cfg);
        recorder.submit_and_wait();
    }
    std::vector<float> got(size_t(M) * N);
    dev.download(yb, 0, got.data(), got.size() * 4);
    if (self_checks_corrupted_for_testing()) got[0] += 1.0f;
    const std::vector<float> ref = check_reference().matmul(int(M), int(K), int(N), x, w_ref, bias.f32);
    // The bound of tests/ops/test_matmul_coopmat.cpp (derived there): X as fp16 hi + lo, exact products, fp32 sums.
    return compare_for_self_check(got, ref, 2e-5 * std::sqrt(double(K)) + 1e-5, 1e-5);
}

std::optional<CoopmatConfig> coopmat_choice(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                                            const MatrixRef& y, const MatmulEpilogue& ep) {
    const DeviceInfo& d = enc.device.info();
    const bool emulate = coopmat_emulated_for_testing();
    if ((d.matmul_f16_path != "coopmat_nv" && !emulate) || w.dtype != DType::f16 || x.rows < kCoopmatMinRows) {
        return std::nullopt;
    }
    CoopmatConfig cfg = coopmat_config(d, x.rows, y.cols);
    cfg.emulate = emulate;
    if (!coopmat_fits(enc.device, x, w, w_transposed, y, ep, cfg)) return std::nullopt;
    const std::string key = pipeline_key(kernel_name(cfg.emulate, w_transposed), specialization(cfg));
    if (!self_checked(enc.device, key, [&] { return coopmat_self_check(enc, cfg, w_transposed); })) return std::nullopt;
    return cfg;
}

}  // namespace vkattn::ops
