// Fused attention on cooperative matrices: blocking and limits of shaders/flash_coopmat.comp (record_flash in
// ops/flash.cpp binds and dispatches it like the other fused kernels).
#include "ops/flash_coopmat.hpp"

#include <algorithm>
#include <string>

namespace vkattn::ops {

uint32_t FlashCoopmatConfig::head_dim(uint32_t D) const {
    const uint32_t unit = std::max({shape[1], shape[2], 8u});  // LN and LK are powers of two
    return std::max(unit, (D + unit - 1) / unit * unit);
}

uint64_t FlashCoopmatConfig::shared_bytes(uint32_t D) const {
    const uint64_t dp = head_dim(D), bq = block_q(), nw = (dp + 31) / 32;
    const uint64_t q = bq * (dp + 8) * 2, kv = 2 * uint64_t(bk) * (dp + 8) * 2;
    const uint64_t s = bq * (bk + 4) * 4, p = bq * (bk + 8) * 2;
    const uint64_t rows = bq * 4 * 4 + bq * nw * 4, v_nan = uint64_t(bk) * nw * 4;
    return q + kv + s + p + rows + v_nan;
}

std::string FlashCoopmatConfig::kernel() const {
    return emulate ? "flash_coopmat_emu_f16" : "flash_coopmat_f16";
}

std::vector<uint32_t> FlashCoopmatConfig::specialization(uint32_t D) const {
    return {invocations(), head_dim(D), shape[0], shape[1], shape[2], nsg, bk, subgroup};
}

FlashCoopmatConfig flash_coopmat_config(const DeviceInfo& d, uint32_t D, bool emulate) {
    FlashCoopmatConfig c;
    c.emulate = emulate;
    if (d.coopmat_shape[0] != 0) c.shape = d.coopmat_shape;
    c.subgroup = emulate ? 32 : d.subgroup_size;
    // Within the device's shared memory (lavapipe 32 KiB, NVIDIA 48): shorter key tiles first, then fewer rows.
    const uint32_t min_bk = std::max(c.shape[1], c.shape[2]);
    const auto fits = [&] { return c.shared_bytes(D) <= d.max_shared_memory; };
    while (!fits() && c.bk / 2 >= min_bk) c.bk /= 2;
    while (!fits() && c.nsg > 1) c.nsg /= 2;
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
