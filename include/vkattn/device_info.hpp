// What vkattn knows about a Vulkan device: identity, the limits its kernels respect, optional features.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vkattn {

struct DeviceInfo {
    uint32_t index = 0;                 // position in the loader's enumeration (what VKATTN_DEVICE=N names)
    std::string name;
    std::string type;                   // "discrete", "integrated", "virtual", "cpu" or "other"
    std::string vendor;                 // "NVIDIA", "AMD", "Intel", "Apple", "Mesa", ... or the hex id
    uint32_t vendor_id = 0;
    uint32_t device_id = 0;
    std::string driver;                 // driver name and info, e.g. "llvmpipe Mesa 22.3.6 (LLVM 15.0.6)"
    std::string api_version;            // "1.3.239"
    uint32_t subgroup_size = 1;
    uint32_t max_shared_memory = 0;     // bytes per workgroup
    std::array<uint32_t, 3> max_workgroup_size{};
    uint32_t max_workgroup_invocations = 0;
    std::array<uint32_t, 3> max_workgroup_count{};
    uint64_t max_storage_buffer_range = 0;   // bytes one storage-buffer binding may cover
    uint64_t min_storage_buffer_offset_alignment = 1;
    uint64_t max_memory_allocation = 0;      // bytes of one allocation
    uint64_t device_heap_bytes = 0;          // size of the largest device-local heap
    bool unified_memory = false;        // host-visible device memory used directly, no staging copies
    bool fp16_arithmetic = false;       // shaderFloat16
    bool storage_16bit = false;         // storageBuffer16BitAccess: fp16 tensors need it
    bool shader_int64 = false;          // shaderInt64: CPU devices' matmul then loads weights 64 bits a component
    bool cooperative_matrix = false;    // VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix listed
    // The kernel for matmuls with f16 weights: "coopmat_nv" (tensor cores through VK_NV_cooperative_matrix,
    // fp16 products summed in fp32, on coopmat_shape) or "shader" (plain GLSL, see coopmat_note for why).
    // Opt-in (slower than the shader kernel where measured): only VKATTN_COOPMAT=1 lets a device use "coopmat_nv".
    std::string matmul_f16_path = "shader";
    std::array<uint32_t, 3> coopmat_shape{};  // M, N, K of the cooperative matrices "coopmat_nv" uses
    std::string coopmat_note;           // why cooperative matrices are not used, when the device lists them
    bool subgroup_arithmetic = false;   // subgroupAdd/Max in compute shaders
    bool timestamps = false;            // compute queue can write timestamps
    double timestamp_period_ns = 1.0;
    bool portability_subset = false;    // MoltenVK and other layered implementations
    bool usable = true;                 // false: see unusable_reason
    std::string unusable_reason;
};

}  // namespace vkattn
