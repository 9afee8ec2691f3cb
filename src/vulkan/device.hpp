// Device selection, the logical device and its compute queue, memory placement and submission.
#pragma once

#include "vulkan/handle.hpp"
#include "vulkan/instance.hpp"
#include "vulkan/memory.hpp"

#include <vkattn/device_info.hpp>

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
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
// staging: host-visible memory for copies to and from device-local buffers;
// readback: host-visible memory the host reads after the device wrote it (host-cached where there is such).
enum class Placement { device, staging, readback };

// A buffer and its range of device memory (sub-allocated by the device's Allocator). Host-visible buffers
// stay mapped; device-local ones are reached by staging.
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
    Allocation memory_;
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
    // The two halves, for a Batch: command buffers submitted in order behind `fence` (unsignaled), then the wait
    // for it. Each checks for validation messages as submit_and_wait does.
    void submit(std::span<const VkCommandBuffer> cmds, VkFence fence);
    void wait(VkFence fence);
    // Fences for Batches, kept when given back so that repeated submissions create none.
    UniqueFence take_fence();
    void give_back(UniqueFence&& fence);
    VkCommandPool command_pool() const { return pool_.get(); }
    uint32_t timestamp_valid_bits() const { return timestamp_bits_; }

    // Device memory accounting, in bytes: the sum of the live buffers' VkMemoryRequirements::size (what the
    // tensors, weights, activations and transient staging copies take), now and at most since reset_peak().
    // The VkDeviceMemory behind them is held in blocks (memory_allocator().reserved_bytes()), which add up to
    // one partly used 64 MiB block per memory type in use, plus a kept empty one.
    uint64_t allocated_bytes() const;
    uint64_t peak_allocated_bytes() const;
    void reset_peak();
    const Allocator& memory_allocator() const { return *allocator_; }

    // What a Recorder borrows for one submission and gives back when it dies, so that repeating the same work
    // (a decode loop) creates nothing after its first step: scratch buffers (take_scratch hands out the smallest
    // free one that is large enough, else a new one of the next power of two; the kKeptScratch largest free ones
    // are kept) and descriptor pools (reset when given back; take_descriptor_pool returns an empty handle when
    // none is free).
    static constexpr size_t kKeptScratch = 4;
    Buffer take_scratch(uint64_t bytes);
    void give_back(Buffer&& scratch);
    UniqueDescriptorPool take_descriptor_pool();
    void give_back(UniqueDescriptorPool&& pool);

    // The lock that makes one Device safe to share between threads. Held by everything that uses the command
    // pool or the queue (submit_and_wait, upload, download, fill_zero, a Recorder's life), by buffer
    // creation and release (the memory accounting), and by the pipeline registry; ops::Runtime::run holds it
    // from recording to the end of the submission, so work from several threads runs one submission at a
    // time. Recursive because a recording may upload (token ids) while the run holds it.
    std::recursive_mutex& mutex() const { return mutex_; }

    // The verdicts of the kernels' self-checks on this device (ops/self_check.hpp), by pipeline: true = trusted.
    // Used under mutex(), which every recording holds.
    std::map<std::string, bool>& self_checks() { return self_checks_; }
    // One-line warnings the library recorded about this device (a kernel that failed its self-check); the library
    // never prints them: Context::warnings() hands them to the caller.
    void warn(std::string line);
    std::vector<std::string> warnings() const;

private:
    friend class Buffer;
    uint32_t memory_type(uint32_t allowed, Placement placement) const;
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
    std::unique_ptr<Allocator> allocator_;  // outlived by nothing that holds its memory: buffers keep the device
    uint64_t allocated_ = 0;
    uint64_t peak_ = 0;
    mutable std::recursive_mutex mutex_;
    std::vector<Buffer> free_scratch_;                      // ascending size
    std::vector<UniqueDescriptorPool> free_descriptor_pools_;
    std::vector<UniqueFence> free_fences_;
    std::map<std::string, bool> self_checks_;
    std::vector<std::string> warnings_;
};

}  // namespace vkattn::vk
