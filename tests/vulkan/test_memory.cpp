// Device memory sub-allocation (src/vulkan/memory.*): buffers share large VkDeviceMemory blocks, ranges never
// overlap, freed ranges are reused and merged, big buffers get memory of their own, and the byte accounting
// that `vkattn bench` reports still counts what the buffers take.
#include "catch.hpp"
#include "support.hpp"
#include "vulkan/device.hpp"
#include "vulkan/instance.hpp"
#include "vulkan/memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

using namespace vkattn;

namespace {

struct Fixture {
    vk::Instance instance{vk::validation_requested_by_env()};
    vk::Device device{instance, ""};
};

uint32_t host_visible_type(const vk::Device& device) {
    VkPhysicalDeviceMemoryProperties mem{};
    vkGetPhysicalDeviceMemoryProperties(device.physical(), &mem);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
        if ((mem.memoryTypes[i].propertyFlags & want) == want) return i;
    }
    FAIL("the device has no host-visible coherent memory type");
    return 0;
}

}  // namespace

TEST_CASE("small buffers share one block and never overlap", "[gpu][device][memory]") {
    Fixture f;
    const auto& alloc = f.device.memory_allocator();
    const uint64_t made_before = alloc.memory_allocations_made();
    constexpr int kBuffers = 300;
    std::vector<vk::Buffer> buffers;
    std::vector<std::vector<uint32_t>> contents;
    for (int i = 0; i < kBuffers; ++i) {
        const uint64_t words = 1 + uint64_t(i * 37 % 1000);  // 4 B .. 4 KB, odd sizes included
        buffers.emplace_back(f.device, words * 4);
        std::vector<uint32_t> v(words);
        for (uint64_t w = 0; w < words; ++w) v[w] = uint32_t(i) * 100003u + uint32_t(w);
        f.device.upload(buffers.back(), 0, v.data(), words * 4);
        contents.push_back(std::move(v));
    }
    // 300 buffers of at most 4 KB fit one 64 MiB block: one vkAllocateMemory where there were 300.
    CHECK(alloc.memory_allocations_made() - made_before == 1);
    CHECK(alloc.memory_objects() == 1);
    // A write to any buffer would show in a neighbour's contents if two ranges overlapped.
    for (int i = 0; i < kBuffers; ++i) {
        std::vector<uint32_t> back(contents[size_t(i)].size());
        f.device.download(buffers[size_t(i)], 0, back.data(), back.size() * 4);
        INFO("buffer " << i);
        REQUIRE(back == contents[size_t(i)]);
    }
    buffers.clear();
    CHECK(f.device.allocated_bytes() == 0);
    CHECK(alloc.memory_objects() == 1);  // the emptied block is kept for the next buffers
    vk::Buffer again(f.device, 4096);
    CHECK(alloc.memory_allocations_made() - made_before == 1);
}

TEST_CASE("a buffer over half a block gets memory of its own, given back on release", "[gpu][device][memory]") {
    Fixture f;
    const auto& alloc = f.device.memory_allocator();
    vk::Buffer small(f.device, 1024);
    const uint64_t objects = alloc.memory_objects(), reserved = alloc.reserved_bytes();
    {
        vk::Buffer big(f.device, vk::Allocator::kDefaultBlockBytes / 2 + 4);
        CHECK(alloc.memory_objects() == objects + 1);
        CHECK(alloc.reserved_bytes() >= reserved + vk::Allocator::kDefaultBlockBytes / 2 + 4);
        CHECK(f.device.allocated_bytes() >= vk::Allocator::kDefaultBlockBytes / 2 + 4 + 1024);
        const uint32_t last = 0xabcdef01u;
        f.device.upload(big, big.size() - 4, &last, 4);
        uint32_t back = 0;
        f.device.download(big, big.size() - 4, &back, 4);
        CHECK(back == last);
    }
    CHECK(alloc.memory_objects() == objects);
    CHECK(alloc.reserved_bytes() == reserved);
}

TEST_CASE("the accounting counts buffer bytes, not block bytes", "[gpu][device][memory]") {
    Fixture f;
    f.device.reset_peak();
    {
        vk::Buffer a(f.device, 1000), b(f.device, 3000);
        // Each buffer counts its VkMemoryRequirements::size: at least its bytes, far below the 64 MiB block.
        CHECK(f.device.allocated_bytes() >= 4000);
        CHECK(f.device.allocated_bytes() < 1u << 20);
        CHECK(f.device.memory_allocator().reserved_bytes() >= vk::Allocator::kDefaultBlockBytes);
    }
    CHECK(f.device.allocated_bytes() == 0);
    CHECK(f.device.peak_allocated_bytes() >= 4000);
    CHECK(f.device.peak_allocated_bytes() < 1u << 20);
}

TEST_CASE("ranges are aligned, disjoint, reused and merged under random use", "[gpu][device][memory]") {
    Fixture f;
    const uint32_t type = host_visible_type(f.device);
    constexpr uint64_t kBlock = uint64_t(4) << 20;
    // nonCoherentAtomSize 64, so every offset and every range end in this host-visible type is a multiple of 64.
    vk::Allocator alloc(f.device.get(), [&] {
        VkPhysicalDeviceMemoryProperties mem{};
        vkGetPhysicalDeviceMemoryProperties(f.device.physical(), &mem);
        return mem;
    }(), 64, uint64_t(1) << 40, kBlock);

    std::mt19937_64 rng(test::seed_of("allocator random"));
    std::vector<std::pair<vk::Allocation, uint64_t>> live;  // allocation, alignment asked for
    uint64_t peak_objects = 0;
    for (int step = 0; step < 4000; ++step) {
        const bool grow = live.empty() || (live.size() < 400 && rng() % 100 < 55);
        if (grow) {
            VkMemoryRequirements req{};
            const uint64_t alignments[] = {1, 4, 16, 256, 4096};
            req.alignment = alignments[rng() % 5];
            req.size = 1 + rng() % (rng() % 8 == 0 ? kBlock : kBlock / 64);  // now and then over half a block
            req.memoryTypeBits = 1u << type;
            vk::Allocation a = alloc.allocate(req, type);
            REQUIRE(a.memory != VK_NULL_HANDLE);
            REQUIRE(a.mapped != nullptr);
            CHECK(a.offset % req.alignment == 0);
            CHECK(a.offset % 64 == 0);
            // Touching the first and last byte proves the range lies inside mapped memory (ASan/valgrind runs).
            static_cast<char*>(a.mapped)[0] = 1;
            static_cast<char*>(a.mapped)[req.size - 1] = 1;
            live.emplace_back(a, req.alignment);
        } else {
            const size_t i = size_t(rng() % live.size());
            alloc.free(live[i].first);
            live.erase(live.begin() + std::ptrdiff_t(i));
        }
        peak_objects = std::max(peak_objects, alloc.memory_objects());
        // No two live ranges of one VkDeviceMemory overlap.
        std::map<std::pair<VkDeviceMemory, uint64_t>, uint64_t> ranges;
        for (const auto& [a, _] : live) ranges[{a.memory, a.offset}] = a.size;
        for (auto it = ranges.begin(); it != ranges.end(); ++it) {
            const auto next = std::next(it);
            if (next == ranges.end() || next->first.first != it->first.first) continue;
            INFO("step " << step);
            REQUIRE(it->first.second + it->second <= next->first.second);
        }
    }
    for (const auto& [a, _] : live) alloc.free(a);
    // Everything merged back: one emptied block is kept, and it holds a range of half a block again.
    CHECK(alloc.memory_objects() == 1);
    CHECK(alloc.reserved_bytes() == kBlock);
    VkMemoryRequirements half{kBlock / 2, 4096, 1u << type};
    const uint64_t made = alloc.memory_allocations_made();
    vk::Allocation a = alloc.allocate(half, type);
    CHECK(alloc.memory_allocations_made() == made);
    alloc.free(a);
    CHECK(peak_objects > 1);  // the sizes asked for did need more than one block at times
}
