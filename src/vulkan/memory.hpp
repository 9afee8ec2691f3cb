// Device memory sub-allocation: buffers take ranges of a few large VkDeviceMemory blocks instead of one
// VkDeviceMemory each (drivers limit the count, maxMemoryAllocationCount is 4096 on many, and each
// allocation costs a kernel call; the validation layer's best-practices checks warn about both).
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace vkattn::vk {

// One buffer's piece of device memory: bind the buffer at (memory, offset); `mapped` is the host address of
// offset when the memory type is host-visible (blocks stay mapped for their whole life), else null.
struct Allocation {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    uint64_t offset = 0;
    uint64_t size = 0;      // bytes reserved for the buffer: its VkMemoryRequirements::size
    void* mapped = nullptr;
    void* block = nullptr;  // the block it came from; null for a dedicated allocation
    uint64_t range_offset = 0;  // the block range behind it: alignment padding before offset, rounding after
    uint64_t range_bytes = 0;
};

// Per memory type, blocks of `block_bytes` (64 MiB by default) handed out first-fit from a free list of
// ranges that merges neighbours on release; a request larger than half a block gets a VkDeviceMemory of its
// own (a dedicated allocation), so a big tensor never strands most of a block. Offsets are aligned to the
// buffer's VkMemoryRequirements::alignment and, in host-visible types, to nonCoherentAtomSize (mapped ranges
// of a non-coherent type are flushed in atoms; vkattn picks coherent types, so this only keeps that true if
// that ever changes). bufferImageGranularity does not apply: every resource vkattn binds is a buffer.
// A block left empty is freed unless it is the only empty one of its type (kept, so that a loop of short-lived
// staging buffers does not allocate and free a block each time). Thread-safe (its own lock).
class Allocator {
public:
    static constexpr uint64_t kDefaultBlockBytes = uint64_t(64) << 20;

    Allocator(VkDevice device, const VkPhysicalDeviceMemoryProperties& memory, uint64_t non_coherent_atom,
              uint64_t max_allocation, uint64_t block_bytes = kDefaultBlockBytes);
    Allocator(const Allocator&) = delete;
    Allocator& operator=(const Allocator&) = delete;
    ~Allocator();  // frees every block; all allocations must have been freed (their buffers destroyed) first

    // A range for a resource with these requirements in memory type `type`. Throws VulkanError on
    // VK_ERROR_OUT_OF_*_MEMORY, naming the size asked for and what the blocks already hold.
    Allocation allocate(const VkMemoryRequirements& requirements, uint32_t type);
    void free(const Allocation& allocation) noexcept;

    // VkDeviceMemory objects alive now, the most alive at once, and vkAllocateMemory calls made so far.
    uint64_t memory_objects() const;
    uint64_t peak_memory_objects() const;
    uint64_t memory_allocations_made() const;
    // Bytes of VkDeviceMemory held now (blocks, used or not, plus dedicated allocations).
    uint64_t reserved_bytes() const;

private:
    struct Block {
        VkDeviceMemory memory = VK_NULL_HANDLE;
        uint32_t type = 0;
        uint64_t size = 0;
        void* mapped = nullptr;
        uint64_t used = 0;                  // bytes handed out, padding included
        std::map<uint64_t, uint64_t> free;  // offset -> length of each free range, disjoint and not adjacent
    };

    // request: the buffer's size, for the message when the driver is out of memory. Caller holds mutex_.
    VkDeviceMemory allocate_memory(uint64_t bytes, uint32_t type, uint64_t request, void** mapped);
    void free_memory(VkDeviceMemory memory, uint64_t bytes) noexcept;              // caller holds mutex_
    bool host_visible(uint32_t type) const;
    static bool carve(Block& block, uint64_t size, uint64_t alignment, Allocation& out);

    VkDevice device_;
    VkPhysicalDeviceMemoryProperties memory_;
    uint64_t non_coherent_atom_;
    uint64_t block_bytes_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Block>> blocks_;
    uint64_t objects_ = 0;
    uint64_t peak_objects_ = 0;
    uint64_t allocations_made_ = 0;
    uint64_t reserved_ = 0;
};

}  // namespace vkattn::vk
