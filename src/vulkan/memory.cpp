#include "vulkan/memory.hpp"

#include "vulkan/check.hpp"

#include <vkattn/units.hpp>

#include <algorithm>
#include <string>

namespace vkattn::vk {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Vulkan alignments are powers of two; anything else (a broken driver) is treated as 1 byte's worth of
// nothing rather than dividing by zero.
uint64_t sane_alignment(uint64_t a) { return a == 0 ? 1 : a; }

}  // namespace

Allocator::Allocator(VkDevice device, const VkPhysicalDeviceMemoryProperties& memory, uint64_t non_coherent_atom,
                     uint64_t max_allocation, uint64_t block_bytes)
    : device_(device), memory_(memory), non_coherent_atom_(sane_alignment(non_coherent_atom)),
      block_bytes_(std::min(block_bytes, max_allocation)) {}

Allocator::~Allocator() {
    std::lock_guard lock(mutex_);
    for (auto& b : blocks_) free_memory(b->memory, b->size);
    blocks_.clear();
}

bool Allocator::host_visible(uint32_t type) const {
    return (memory_.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) != 0;
}

VkDeviceMemory Allocator::allocate_memory(uint64_t bytes, uint32_t type, uint64_t request, void** mapped) {
    VkMemoryAllocateInfo ai{};
    ai.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    ai.allocationSize = bytes;
    ai.memoryTypeIndex = type;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    const VkResult r = vkAllocateMemory(device_, &ai, nullptr, &memory);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        throw VulkanError("out of GPU memory allocating " + bytes_str(bytes) + " for a buffer of " +
                              bytes_str(request) + " (" + bytes_str(reserved_) +
                              " of device memory already held by vkattn in " + std::to_string(objects_) +
                              " allocations)",
                          int(r));
    }
    VKATTN_CHECK(r);
    *mapped = nullptr;
    if (host_visible(type)) {
        const VkResult m = vkMapMemory(device_, memory, 0, VK_WHOLE_SIZE, 0, mapped);
        if (m != VK_SUCCESS) {
            vkFreeMemory(device_, memory, nullptr);
            VKATTN_CHECK(m);
        }
    }
    ++allocations_made_;
    ++objects_;
    peak_objects_ = std::max(peak_objects_, objects_);
    reserved_ += bytes;
    return memory;
}

void Allocator::free_memory(VkDeviceMemory memory, uint64_t bytes) noexcept {
    vkFreeMemory(device_, memory, nullptr);  // unmaps implicitly
    --objects_;
    reserved_ -= bytes;
}

bool Allocator::carve(Block& block, uint64_t size, uint64_t alignment, Allocation& out) {
    for (auto it = block.free.begin(); it != block.free.end(); ++it) {
        const uint64_t start = it->first, length = it->second;
        const uint64_t offset = align_up(start, alignment);
        if (offset < start || offset - start > length || length - (offset - start) < size) continue;
        const uint64_t end = offset + size;
        block.free.erase(it);
        if (end < start + length) block.free.emplace(end, start + length - end);
        out.offset = offset;
        out.range_offset = start;
        out.range_bytes = end - start;
        block.used += out.range_bytes;
        return true;
    }
    return false;
}

Allocation Allocator::allocate(const VkMemoryRequirements& requirements, uint32_t type) {
    std::lock_guard lock(mutex_);
    const bool mapped = host_visible(type);
    uint64_t alignment = sane_alignment(requirements.alignment);
    uint64_t size = requirements.size;
    if (mapped) {
        alignment = std::max(alignment, non_coherent_atom_);
        size = align_up(size, non_coherent_atom_);
    }
    Allocation a;
    a.size = requirements.size;

    if (size > block_bytes_ / 2) {
        a.memory = allocate_memory(requirements.size, type, requirements.size, &a.mapped);
        a.range_bytes = requirements.size;
        return a;
    }
    auto place = [&](Block& b) {
        if (b.type != type || b.size - b.used < size || !carve(b, size, alignment, a)) return false;
        a.memory = b.memory;
        a.block = &b;
        a.mapped = b.mapped == nullptr ? nullptr : static_cast<char*>(b.mapped) + a.offset;
        return true;
    };
    for (auto& b : blocks_) {
        if (place(*b)) return a;
    }
    auto block = std::make_unique<Block>();
    block->type = type;
    block->size = block_bytes_;
    try {
        block->memory = allocate_memory(block_bytes_, type, requirements.size, &block->mapped);
    } catch (const VulkanError&) {
        // Near the end of the heap a whole block may not fit where the buffer alone does.
        a.memory = allocate_memory(requirements.size, type, requirements.size, &a.mapped);
        a.range_bytes = requirements.size;
        return a;
    }
    block->free.emplace(0, block_bytes_);
    blocks_.push_back(std::move(block));
    // An empty block holds any request up to half of it, unless the driver asks for an absurd alignment.
    if (!place(*blocks_.back())) {
        throw VulkanError("a buffer of " + bytes_str(requirements.size) + " with alignment " +
                              std::to_string(alignment) + " does not fit an empty memory block of " +
                              bytes_str(block_bytes_),
                          int(VK_ERROR_OUT_OF_DEVICE_MEMORY));
    }
    return a;
}

void Allocator::free(const Allocation& a) noexcept {
    if (a.memory == VK_NULL_HANDLE) return;
    std::lock_guard lock(mutex_);
    if (a.block == nullptr) {
        free_memory(a.memory, a.range_bytes);
        return;
    }
    auto& b = *static_cast<Block*>(a.block);
    uint64_t start = a.range_offset, length = a.range_bytes;
    auto next = b.free.lower_bound(start);
    if (next != b.free.end() && next->first == start + length) {  // merge with the range after
        length += next->second;
        next = b.free.erase(next);
    }
    if (next != b.free.begin()) {  // merge with the range before
        auto prev = std::prev(next);
        if (prev->first + prev->second == start) {
            start = prev->first;
            length += prev->second;
            b.free.erase(prev);
        }
    }
    b.free.emplace(start, length);
    b.used -= a.range_bytes;
    if (b.used != 0) return;
    // Keep one empty block per memory type; free any other.
    const bool another_empty = std::any_of(blocks_.begin(), blocks_.end(), [&](const std::unique_ptr<Block>& o) {
        return o.get() != &b && o->type == b.type && o->used == 0;
    });
    if (!another_empty) return;
    auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const std::unique_ptr<Block>& o) { return o.get() == &b; });
    free_memory(b.memory, b.size);
    blocks_.erase(it);
}

uint64_t Allocator::memory_objects() const {
    std::lock_guard lock(mutex_);
    return objects_;
}

uint64_t Allocator::peak_memory_objects() const {
    std::lock_guard lock(mutex_);
    return peak_objects_;
}

uint64_t Allocator::memory_allocations_made() const {
    std::lock_guard lock(mutex_);
    return allocations_made_;
}

uint64_t Allocator::reserved_bytes() const {
    std::lock_guard lock(mutex_);
    return reserved_;
}

}  // namespace vkattn::vk
