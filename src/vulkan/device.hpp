// Device selection, the logical device and its compute queue, memory placement and submission.
#pragma once

#include "vulkan/handle.hpp"
#include "vulkan/instance.hpp"

#include <vkattn/device_info.hpp>

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vkattn::vk {

// Every device the loader lists, with its capabilities and, for unusable ones, the reason.
std::vector<DeviceInfo> describe_devices(const Instance& instance);

// What the kernels need of a device's compute subgroups (VkPhysicalDeviceSubgroupProperties), checked when
// devices are described so that a chosen device never fails at a first dispatch. Every device runs LayerNorm
// (subgroup arithmetic); a CPU device (type "cpu") also runs flash_rows and matmul_simd, which hand values round
// by subgroup shuffles in workgroups of exactly one subgroup of `size` invocations (SPIR-V 1.3 modules, so the
// subgroup size is the device's subgroupSize; a workgroup of that size must be allowed). Returns the reason the
// device cannot run them, or "" when it can.
std::string missing_kernel_requirement(const std::string& type, VkShaderStageFlags stages,
                                       VkSubgroupFeatureFlags operations, uint32_t size,
                                       uint32_t max_workgroup_size_x, uint32_t max_workgroup_invocations);

// Index of the device to use: `selector` (an index or a case-insensitive name substring; empty means the
// VKATTN_DEVICE variable, and if that is unset the best by score: discrete > integrated > virtual > cpu).
// Throws vkattn::Error listing the candidates when nothing matches.
uint32_t choose_device(const std::vector<DeviceInfo>& devices, const std::string& selector);

class Device;

// device: the placement policy (mapped memory on unified-memory devices, device-local elsewhere);
// staging: host-visible memory for copies to and from device-local buffers.
enum class Placement { device, staging };

// A buffer and its memory. Host-visible buffers stay mapped; device-local ones are reached by staging.
class Buffer {
public:
    Buffer() = default;
    Buffer(Device& device, uint64_t bytes, Placement placement = Placement::device);
    Buffer(Buffer&&) noexcept;
    Buffer& operator=(Buffer&&) noexcept;
    ~Buffer();

    VkBuffer get() const { return buffer_.get(); }
    uint64_t size() const { return size_; }
    void* mapped() const { return mapped_; }  // null for device-local memory

private:
    void release() noexcept;

    Device* device_ = nullptr;
    UniqueBuffer buffer_;
    UniqueMemory memory_;
    uint64_t size_ = 0;
    void* mapped_ = nullptr;
    uint64_t accounted_ = 0;  // bytes counted in the device's allocation total
};

class Device {
public:
    Device(Instance& instance, const std::string& selector);
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    ~Device();

    VkDevice get() const { return device_; }
    VkPhysicalDevice physical() const { return physical_; }
    const DeviceInfo& info() const { return info_; }
    Instance& instance() const { return instance_; }

    // Copies between host memory and a buffer; staging is internal and only used without unified memory.
    void upload(Buffer& dst, uint64_t offset, const void* src, uint64_t bytes);
    void download(const Buffer& src, uint64_t offset, void* dst, uint64_t bytes);
    void fill_zero(Buffer& dst);

    // Submits one recorded command buffer and waits for it. Throws on a validation message or device loss.
    void submit_and_wait(VkCommandBuffer cmd);
    VkCommandPool command_pool() const { return pool_.get(); }
    uint32_t timestamp_valid_bits() const { return timestamp_bits_; }

    // Device memory accounting, in bytes, of the buffers this device has allocated.
    uint64_t allocated_bytes() const { return allocated_; }
    uint64_t peak_allocated_bytes() const { return peak_; }
    void reset_peak() { peak_ = allocated_; }

private:
    friend class Buffer;
    uint32_t memory_type(uint32_t allowed, bool host_visible) const;
    void check_messages();
    void copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes);

    Instance& instance_;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    DeviceInfo info_;
    VkPhysicalDeviceMemoryProperties memory_{};
    VkDevice device_ = VK_NULL_HANDLE;  // destroyed last, after the handles below
    uint32_t queue_family_ = 0;
    uint32_t timestamp_bits_ = 0;
    VkQueue queue_ = VK_NULL_HANDLE;
    UniqueCommandPool pool_;
    UniqueFence fence_;
    uint64_t allocated_ = 0;
    uint64_t peak_ = 0;
};

}  // namespace vkattn::vk
