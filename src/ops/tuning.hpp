// Per-device choices of tile and workgroup sizes, in one table, derived from the device's limits.
#pragma once

#include <vkattn/device_info.hpp>

#include <cstdint>

namespace vkattn::ops {

struct Tuning {
    uint32_t matmul_tile = 16;     // qk/pv: TILE × TILE invocations, TILE × TILE outputs per workgroup
    uint32_t softmax_wg = 128;     // invocations per softmax row (power of two)
    uint32_t gemm_wg = 16;         // matmul: gemm_wg × gemm_wg invocations ...
    uint32_t gemm_tm = 4;          // ... each owning gemm_tm × gemm_tn outputs in registers
    uint32_t gemm_tn = 4;
    uint32_t gemm_bk = 16;         // K step staged in shared memory per iteration
};

// Every device gets 16 × 16 tiles unless it cannot run 256 invocations per workgroup (Vulkan only promises
// 128), and softmax workgroups of 128 or the device's maximum power of two below it.
Tuning tuning_for(const DeviceInfo& device);

}  // namespace vkattn::ops
