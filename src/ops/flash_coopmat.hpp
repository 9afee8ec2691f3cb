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

    uint32_t block_q() const { return nsg * shape[0]; }
    uint32_t invocations() const { return nsg * subgroup; }
    // The kernel's head dim for D: a multiple of LN and LK (padded columns are zeros never stored).
    uint32_t head_dim(uint32_t D) const;
    uint64_t shared_bytes(uint32_t D) const;
    std::string kernel() const;                           // "flash_coopmat_f16" or "flash_coopmat_emu_f16"
    std::vector<uint32_t> specialization(uint32_t D) const;  // the shader's constants 0..7
};

// The blocking for head dim D on this device: the device's cooperative-matrix shape and subgroup size (32 lanes
// when emulated: any size works there), 4 subgroups and 32-key tiles, fewer of each until the shared memory fits.
FlashCoopmatConfig flash_coopmat_config(const DeviceInfo& device, uint32_t D, bool emulate);

// Whether the kernel takes these tensors with cfg: f16 storage, fp16 arithmetic, a shape of sides 8, 16 or 32,
// the workgroup and shared memory within the device's limits. "" when it does, else why not (one line).
std::string flash_coopmat_refusal(const DeviceInfo& device, const AttentionDims& dims, DType dtype,
                                  const FlashCoopmatConfig& cfg);

}  // namespace vkattn::ops
