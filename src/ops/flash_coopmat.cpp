// Fused attention on cooperative matrices: blocking and limits of shaders/flash_coopmat.comp (record_flash in
// ops/flash.cpp binds and dispatches it like the other fused kernels).
#include "ops/flash_coopmat.hpp"

#include "ops/self_check.hpp"

#include <vkattn/reference.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace vkattn::ops {
FlashCoopmatBound flash_coopmat_bound(uint32_t Lk, double vmax) {
    const double u = std::ldexp(1.0, -11), tiny = std::ldexp(1.0, -25);
    const double fp32_budget = 1e-4;  // the scalar kernels' fp32 tolerance (tests/ops/attention_cases.hpp)
    const double weights = (2 * u / (1 - u) + Lk * tiny) * vmax;
    return {(weights + fp32_budget) * (1 + u) + tiny, u + fp32_budget};
}

std::string flash_coopmat_self_check(Encoder& enc, const FlashCoopmatConfig& cfg, uint32_t D) {
    vk::Device& dev = enc.device;
    const uint32_t Lq = cfg.block_q() + 3, Lk = 2 * cfg.bk + 5;
    const AttentionDims dims{1, 2, 1, Lq, Lk, D};
    const size_t nq = size_t(2) * Lq * D, nk = size_t(Lk) * D;
    const CheckValues q = check_values(nq, 0x2545f491u), k = check_values(nk, 0x9e3779b9u),
                      v = check_values(nk, 0x7f4a7c15u);
    const auto bytes = [](const CheckValues& c) { return c.f16.size() * 2; };
    vk::Buffer qb(dev, bytes(q)), kb(dev, bytes(k)), vb(dev, bytes(v)), ob(dev, bytes(q));
    dev.upload(qb, 0, q.f16.data(), bytes(q));
    dev.upload(kb, 0, k.f16.data(), bytes(k));
    dev.upload(vb, 0, v.f16.data(), bytes(v));

    const float scale = float(1.0 / std::sqrt(double(D)));
    MaskArgs mask;
    mask.causal = true;
    FlashConfig config;
    config.variant = FlashVariant::coopmat;
    config.coopmat = &cfg;
    {
        vk::Recorder recorder(dev, false);  // its own submission, inside the caller's recording
        Encoder check{dev, enc.pipelines, recorder};
        const int64_t iq = Lq, ik = Lk, id = D;
        record_flash(check, dims, contiguous(qb, DType::f16, {1, 2, iq, id}), contiguous(kb, DType::f16, {1, 1, ik, id}),
                     contiguous(vb, DType::f16, {1, 1, ik, id}), contiguous(ob, DType::f16, {1, 2, iq, id}), mask, scale,
                     config);
        recorder.submit_and_wait();
    }
    std::vector<uint16_t> o16(q.f16.size());
    dev.download(ob, 0, o16.data(), bytes(q));
    std::vector<float> got = halves_to_floats(o16, nq);
    if (self_checks_corrupted_for_testing()) got[0] += 1.0f;

    reference::AttentionOptions options;
    options.scale = scale;
    options.causal = true;
    const std::vector<float> ref =
        check_reference().attention({1, 2, 1, int(Lq), int(Lk), int(D)}, q.f32, k.f32, v.f32, options);
    const FlashCoopmatBound bound = flash_coopmat_bound(Lk, 1.0);
    return compare_for_self_check(got, ref, bound.atol, bound.rtol);
}

std::optional<FlashCoopmatConfig> flash_coopmat_choice(Encoder& enc, const AttentionDims& dims, DType dtype) {
    const DeviceInfo& info = enc.device.info();
    const bool emulate = coopmat_emulated_for_testing();
    if (dtype != DType::f16 || (info.matmul_f16_path != "coopmat_nv" && !emulate)) return std::nullopt;
    if (flash_variant(info, dims) == FlashVariant::split) return std::nullopt;  // decode keeps split-KV
    const FlashCoopmatConfig cfg = flash_coopmat_config(info, dims.D, emulate);
    if (!flash_coopmat_refusal(info, dims, dtype, cfg).empty()) return std::nullopt;
    const bool trusted = self_checked(enc.device, pipeline_key(cfg.kernel(), cfg.specialization(dims.D)),
                                      [&] { return flash_coopmat_self_check(enc, cfg, dims.D); });
    if (!trusted) return std::nullopt;
    return cfg;
}

uint32_t FlashCoopmatConfig::head_dim(uint32_t D) const {
    const uint32_t unit = std::max({shape[1], shape[2], 8u});  // LN and LK are powers of two
    return std::max(unit, (D + unit - 1) / unit * unit);
}

uint64_t FlashCoopmatConfig::shared_bytes(uint32_t D) const {
    const uint64_t dp = head_dim(D), bq = block_q(), nw = (dp + 31) / 32;
    const uint64_t q = bq * (dp + 8) * 2, kv = uint64_t(nbuf) * 2 * bk * (dp + 8) * 2;
    const uint64_t s = bq * (bk + 4) * 4, p = bq * (bk + 8) * 2;
    const uint64_t rows = bq * 4 * 4 + bq * nw * 4, v_nan = uint64_t(nbuf) * bk * nw * 4;
    return q + kv + s + p + rows + v_nan;
}

std::string FlashCoopmatConfig::kernel() const {
    return emulate ? "flash_coopmat_emu_f16" : "flash_coopmat_f16";
}

std::vector<uint32_t> FlashCoopmatConfig::specialization(uint32_t D) const {
    return {invocations(), head_dim(D), shape[0], shape[1], shape[2], nsg, bk, subgroup, nbuf};
}

FlashCoopmatConfig flash_coopmat_config(const DeviceInfo& d, uint32_t D, bool emulate) {
    FlashCoopmatConfig c;
    c.emulate = emulate;
    if (d.coopmat_shape[0] != 0) c.shape = d.coopmat_shape;
    c.subgroup = emulate ? 32 : d.subgroup_size;
    // Within the device's shared memory (lavapipe 32 KiB, NVIDIA 48): shorter key tiles first, then fewer rows.
    const uint32_t min_bk = std::max(c.shape[1], c.shape[2]);
    const auto fits = [&] { return c.shared_bytes(D) <= d.max_shared_memory; };
    while (!fits()) {
        if (c.nbuf == 2) {
            c.nbuf = 1;
        } else if (c.bk / 2 >= min_bk) {
            c.bk /= 2;
            c.nbuf = 2;
        } else if (c.nsg > 1) {
            c.nsg /= 2;
            c.nbuf = 2;
        } else {
            break;  // flash_coopmat_refusal says why
        }
    }
    while (c.nsg > 1 && c.invocations() > std::min(d.max_workgroup_invocations, d.max_workgroup_size[0])) c.nsg /= 2;
    return c;
}

std::string flash_coopmat_refusal(const DeviceInfo& d, const AttentionDims& dims, DType dtype,
                                  const FlashCoopmatConfig& cfg) {
    if (dtype != DType::f16) {
        return "the cooperative-matrix kernel takes f16 tensors, not " + std::string(dtype_name(dtype));
    }
    if (!cfg.emulate && d.matmul_f16_path != "coopmat_nv") {
        return "no usable cooperative matrices on this device" + (d.coopmat_note.empty() ? "" : " (" + d.coopmat_note + ")");
    }
    if (!d.fp16_arithmetic || !d.storage_16bit) return "the cooperative-matrix kernel needs shaderFloat16 and 16-bit storage";
    if (dims.D == 0 || dims.D > kMaxHeadDim) return "head dim " + std::to_string(dims.D) + " outside 1.." + std::to_string(kMaxHeadDim);
    const auto [lm, ln, lk] = cfg.shape;
    for (uint32_t v : {lm, ln, lk}) {
        if (v != 8 && v != 16 && v != 32) return "cooperative-matrix sides must be 8, 16 or 32";
    }
    if (cfg.subgroup == 0 || (lm * ln) % cfg.subgroup != 0) {
        return "a subgroup of " + std::to_string(cfg.subgroup) + " does not divide an accumulator of " +
               std::to_string(lm * ln);
    }
    if (cfg.bk % ln != 0 || cfg.bk % lk != 0 || cfg.nsg == 0) return "key tiles must be a multiple of LN and LK";
    if (cfg.nbuf != 1 && cfg.nbuf != 2) return "K/V tiles are single or double buffered";
    if (cfg.invocations() > d.max_workgroup_invocations || cfg.invocations() > d.max_workgroup_size[0]) {
        return "a workgroup of " + std::to_string(cfg.invocations()) + " invocations is over the device's limit";
    }
    if (cfg.shared_bytes(dims.D) > d.max_shared_memory) {
        return std::to_string(cfg.shared_bytes(dims.D)) + " bytes of shared memory, over the device's " +
               std::to_string(d.max_shared_memory);
    }
    return {};
}

}  // namespace vkattn::ops
