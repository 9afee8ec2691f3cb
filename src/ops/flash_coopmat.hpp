// Fused attention on cooperative matrices (tensor cores), shaders/flash_coopmat.comp: record_flash runs it as
// FlashVariant::coopmat, chosen automatically for f16 tensors where the device's matmul_f16_path is "coopmat_nv"
// (VK_NV_cooperative_matrix usable and the VKATTN_COOPMAT=1 opt-in set), and forced, emulated, in tests.
// f16 only: fp16 × fp16 products are exact in the fp32 accumulators, so scores are as exact as the scalar
// kernels'; f32 tensors would need Q and K split into fp16 hi and lo parts (three products for S, two for P·V,
// as matmul_coopmat does for X), which costs the speed the kernel is for, and f32 users asked for fp32 numbers:
// they keep flash_rows / flash_tiled.
#pragma once

#include "ops/attention.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vkattn::ops {

// The kernel's blocking; see shaders/flash_coopmat.comp for what each number means.
struct FlashCoopmatConfig {
    bool emulate = false;                       // flash_coopmat_emu_f16: the same kernel without cooperative matrices
    std::array<uint32_t, 3> shape{16, 16, 16};  // LM, LN, LK: the cooperative-matrix shape
    uint32_t nsg = 4;                           // subgroups per workgroup, LM query rows each
    uint32_t bk = 32;                           // keys per tile
    uint32_t subgroup = 32;                     // invocations per subgroup
    uint32_t nbuf = 2;                          // K/V tile buffers: 2 stages the next tile during this one's S

    uint32_t block_q() const { return nsg * shape[0]; }
    uint32_t invocations() const { return nsg * subgroup; }
    // The kernel's head dim for D: a multiple of LN and LK (padded columns are zeros never stored).
    uint32_t head_dim(uint32_t D) const;
    uint64_t shared_bytes(uint32_t D) const;
    std::string kernel() const;                           // "flash_coopmat_f16" or "flash_coopmat_emu_f16"
    std::vector<uint32_t> specialization(uint32_t D) const;  // the shader's constants 0..8
};

// The blocking for head dim D on this device: the device's cooperative-matrix shape and subgroup size (32 lanes
// when emulated: any size works there), 4 subgroups and 32-key tiles, double-buffered; until the shared memory
// fits, a single buffer, then 16-key tiles (double-buffered again first), then fewer subgroups.
FlashCoopmatConfig flash_coopmat_config(const DeviceInfo& device, uint32_t D, bool emulate);

// Whether the kernel takes these tensors with cfg: f16 storage, fp16 arithmetic, a shape of sides 8, 16 or 32,
// the workgroup and shared memory within the device's limits. "" when it does, else why not (one line).
std::string flash_coopmat_refusal(const DeviceInfo& device, const AttentionDims& dims, DType dtype,
                                  const FlashCoopmatConfig& cfg);

// The kernel's error bound against the double-precision reference, |got - ref| <= atol + rtol · |ref|, for f16
// inputs with V in [-vmax, vmax] and Lk keys:
//   P is rounded to fp16 (unit roundoff u = 2^-11) for the P·V products and l sums the rounded weights, so each
//   normalized weight is within 2u / (1 - u) of the exact one (relative), and the weights' errors move O by at
//   most 2u / (1 - u) · vmax. Weights below fp16's normal range (2^-14) are off by at most 2^-25 each, over
//   l >= 1: Lk · 2^-25 · vmax. Scores are fp32 sums of exact fp16 products, exp2 and sums fp32, as in the scalar
//   kernels, whose tests hold them to 1e-4 absolute and relative. O is rounded to fp16 once: u relative, on a
//   value already within the above (the 1 + u factor), and 2^-25 absolute below fp16's normal range.
struct FlashCoopmatBound {
    double atol = 0, rtol = 0;
};
FlashCoopmatBound flash_coopmat_bound(uint32_t Lk, double vmax);

// What record_flash's automatic choice runs for f16 tensors: the kernel's config where the device's
// matmul_f16_path is "coopmat_nv" (or emulate_coopmat_for_testing is on, ops/self_check.hpp), the shape is not split-KV's (short Lq, long Lk),
// the kernel takes it, and the pipeline passed its self-check on this device (ops/self_check.hpp: a causal GQA case
// of two query blocks and three key tiles at this head dim against vkattn::reference::attention); else nullopt.
std::optional<FlashCoopmatConfig> flash_coopmat_choice(Encoder& enc, const AttentionDims& dims, DType dtype);

// The self-check of cfg's pipeline for head dim D: "" when the kernel agrees with the reference, else the error.
std::string flash_coopmat_self_check(Encoder& enc, const FlashCoopmatConfig& cfg, uint32_t D);

}  // namespace vkattn::ops
