#include "ops/tuning.hpp"

#include <algorithm>

namespace vkattn::ops {

Tuning tuning_for(const DeviceInfo& d) {
    Tuning t;
    const uint32_t inv = d.max_workgroup_invocations;
    t.matmul_tile = (inv >= 256 && d.max_workgroup_size[0] >= 16 && d.max_workgroup_size[1] >= 16) ? 16 : 8;
    uint32_t wg = 128;
    while (wg > inv || wg > d.max_workgroup_size[0]) wg /= 2;
    t.softmax_wg = std::max(1u, wg);
    t.gemm_wg = t.matmul_tile;
    // Shared memory: BK × (BM + BN) floats; 16 × 128 × 4 = 8 KiB fits every Vulkan device's 16 KiB minimum.
    return t;
}

}  // namespace vkattn::ops
