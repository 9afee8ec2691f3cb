#include "vulkan/recorder.hpp"

#include "vulkan/check.hpp"

#include <vkattn/error.hpp>

#include <cstring>
#include <string>

namespace vkattn::vk {
namespace {
constexpr uint32_t kSetsPerPool = 256;
constexpr uint32_t kBindingsPerSet = 8;  // descriptors reserved per set; no kernel binds more
constexpr uint32_t kQueriesPerPool = 512;  // two per dispatch
}  // namespace

Recorder::Recorder(Device& device, bool timestamps, bool reusable)
    : device_(device), timestamps_(timestamps && device.info().timestamps && device.timestamp_valid_bits() > 0),
      reusable_(reusable) {
    std::lock_guard lock(device.mutex());  // the command pool is shared by every Recorder of the device
    VkCommandBufferAllocateInfo alloc{};
    alloc.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    alloc.commandPool = device.command_pool();
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = 1;
    VKATTN_CHECK(vkAllocateCommandBuffers(device.get(), &alloc, &cmd_));
    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = reusable ? 0 : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    const VkResult r = vkBeginCommandBuffer(cmd_, &begin);
    if (r != VK_SUCCESS) {
        vkFreeCommandBuffers(device.get(), device.command_pool(), 1, &cmd_);
        VKATTN_CHECK(r);
    }
}

Recorder::~Recorder() {
    std::lock_guard lock(device_.mutex());
    vkFreeCommandBuffers(device_.get(), device_.command_pool(), 1, &cmd_);
    for (UniqueDescriptorPool& pool : pools_) device_.give_back(std::move(pool));
    for (Buffer& b : scratch_) device_.give_back(std::move(b));
}

VkDescriptorSet Recorder::allocate_set(VkDescriptorSetLayout layout) {
    if (sets_left_ == 0) {
        if (UniqueDescriptorPool reused = device_.take_descriptor_pool(); reused.get() != VK_NULL_HANDLE) {
            pools_.push_back(std::move(reused));
            sets_left_ = kSetsPerPool;
        }
    }
    if (sets_left_ == 0) {
        VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kBindingsPerSet};
        VkDescriptorPoolCreateInfo pi{};
        pi.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
        pi.maxSets = kSetsPerPool;
        pi.poolSizeCount = 1;
        pi.pPoolSizes = &size;
        VkDescriptorPool pool = VK_NULL_HANDLE;
        VKATTN_CHECK(vkCreateDescriptorPool(device_.get(), &pi, nullptr, &pool));
        pools_.emplace_back(device_.get(), pool);
        sets_left_ = kSetsPerPool;
    }
    VkDescriptorSetAllocateInfo ai{};
    ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    ai.descriptorPool = pools_.back().get();
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    VKATTN_CHECK(vkAllocateDescriptorSets(device_.get(), &ai, &set));
    --sets_left_;
    return set;
}

void Recorder::dispatch(const Pipeline& pipeline, std::span<const Binding> bindings, const void* push,
                        uint32_t push_bytes, std::array<uint32_t, 3> groups, std::string label) {
    if (ended_) throw Error("internal: dispatch recorded after submit");
    if (bindings.size() != pipeline.bindings || push_bytes != pipeline.push_bytes || bindings.size() > kBindingsPerSet) {
        throw Error("internal: kernel '" + pipeline.name + "' expects " + std::to_string(pipeline.bindings) +
                    " bindings and " + std::to_string(pipeline.push_bytes) + " push-constant bytes, got " +
                    std::to_string(bindings.size()) + " and " + std::to_string(push_bytes));
    }
    const DeviceInfo& info = device_.info();
    for (int d = 0; d < 3; ++d) {
        if (groups[size_t(d)] > info.max_workgroup_count[size_t(d)]) {
            throw Error("kernel '" + pipeline.name + "' needs " + std::to_string(groups[size_t(d)]) +
                        " workgroups in dimension " + std::to_string(d) + ", over the device's maxComputeWorkGroupCount of " +
                        std::to_string(info.max_workgroup_count[size_t(d)]));
        }
    }
    if (groups[0] == 0 || groups[1] == 0 || groups[2] == 0) return;  // nothing to compute

    const VkDescriptorSet set = allocate_set(pipeline.set_layout.get());
    std::vector<VkDescriptorBufferInfo> infos(bindings.size());
    std::vector<VkWriteDescriptorSet> writes(bindings.size());
    for (size_t i = 0; i < bindings.size(); ++i) {
        infos[i] = {bindings[i].buffer, bindings[i].offset, bindings[i].range};
        writes[i] = {};
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstSet = set;
        writes[i].dstBinding = uint32_t(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(device_.get(), uint32_t(writes.size()), writes.data(), 0, nullptr);

    uint32_t query = 0;
    if (timestamps_) {
        const size_t index = labels_.size() * 2;
        if (index / kQueriesPerPool >= query_pools_.size()) {
            VkQueryPoolCreateInfo qi{};
            qi.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO;
            qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
            qi.queryCount = kQueriesPerPool;
            VkQueryPool qp = VK_NULL_HANDLE;
            VKATTN_CHECK(vkCreateQueryPool(device_.get(), &qi, nullptr, &qp));
            query_pools_.emplace_back(device_.get(), qp);
            vkCmdResetQueryPool(cmd_, qp, 0, kQueriesPerPool);
        }
        query = uint32_t(index % kQueriesPerPool);
        vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, query_pools_.back().get(), query);
    }

    vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.pipeline.get());
    vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout.get(), 0, 1, &set, 0, nullptr);
    if (push_bytes > 0) {
        vkCmdPushConstants(cmd_, pipeline.layout.get(), VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    }
    vkCmdDispatch(cmd_, groups[0], groups[1], groups[2]);

    // This dispatch's writes → the next dispatch's reads and writes (and host reads after the wait).
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_SHADER_WRITE_BIT,
                            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &barrier, 0, nullptr, 0, nullptr);
    if (timestamps_) {
        vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pools_.back().get(), query + 1);
    }
    labels_.push_back(label.empty() ? pipeline.name : std::move(label));
}

void Recorder::copy(VkBuffer src, VkBuffer dst, std::span<const VkBufferCopy> regions) {
    if (ended_) throw Error("internal: copy recorded after submit");
    if (regions.empty()) return;
    // Earlier dispatches' reads and writes → this copy's writes (and its reads of their results).
    VkMemoryBarrier before{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0,
                         nullptr, 0, nullptr);
    vkCmdCopyBuffer(cmd_, src, dst, uint32_t(regions.size()), regions.data());
    // This copy's writes → later dispatches' reads.
    VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                          VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &after, 0,
                         nullptr, 0, nullptr);
}

void Recorder::update(VkBuffer dst, uint64_t offset, const void* data, uint64_t bytes) {
    if (ended_) throw Error("internal: update recorded after submit");
    if (bytes == 0) return;
    if (bytes % 4 != 0 || offset % 4 != 0 || bytes > 65536) {
        throw Error("internal: vkCmdUpdateBuffer of " + std::to_string(bytes) + " bytes at offset " +
                    std::to_string(offset) + " (needs multiples of 4, at most 65536 bytes)");
    }
    VkMemoryBarrier before{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
                           VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0,
                         nullptr, 0, nullptr);
    vkCmdUpdateBuffer(cmd_, dst, offset, bytes, data);
    VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                          VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &after, 0,
                         nullptr, 0, nullptr);
}

const Buffer& Recorder::scratch(uint64_t bytes) {
    if (scratch_.empty() || scratch_.back().size() < bytes) scratch_.push_back(device_.take_scratch(bytes));
    return scratch_.back();
}

void Recorder::submit_and_wait() {
    if (ended_) throw Error("internal: a Recorder is submitted once");
    end();
    device_.submit_and_wait(cmd_);
    read_timings();
}

void Recorder::end() {
    if (ended_) throw Error("internal: a Recorder is ended once");
    ended_ = true;
    // Compute and copy writes → host reads of mapped memory after the fence.
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr,
                            VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0, nullptr, 0, nullptr);
    VKATTN_CHECK(vkEndCommandBuffer(cmd_));
}

void Recorder::read_timings() {
    if (!timestamps_ || labels_.empty()) return;
    const uint64_t mask = device_.timestamp_valid_bits() >= 64 ? ~0ull : ((1ull << device_.timestamp_valid_bits()) - 1);
    const double period_ms = device_.info().timestamp_period_ns * 1e-6;
    std::vector<uint64_t> stamps(labels_.size() * 2);
    for (size_t p = 0; p < query_pools_.size(); ++p) {
        const size_t first = p * kQueriesPerPool;
        const uint32_t count = uint32_t(std::min<size_t>(kQueriesPerPool, stamps.size() - first));
        VKATTN_CHECK(vkGetQueryPoolResults(device_.get(), query_pools_[p].get(), 0, count, count * sizeof(uint64_t),
                                           stamps.data() + first, sizeof(uint64_t),
                                           VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    }
    timings_.clear();
    for (size_t i = 0; i < labels_.size(); ++i) {
        const uint64_t t0 = stamps[2 * i] & mask;
        const uint64_t t1 = stamps[2 * i + 1] & mask;
        timings_.push_back({labels_[i], double((t1 - t0) & mask) * period_ms});
    }
}

Batch::Batch(Device& device) : device_(device), fence_(device.take_fence()) {}

Batch::~Batch() {
    if (submitted_ && !waited_) {
        // The command buffers may not be freed while the device runs them; an error here has no one to reach.
        VkFence fence = fence_.get();
        vkWaitForFences(device_.get(), 1, &fence, VK_TRUE, UINT64_MAX);
    }
    try {
        device_.give_back(std::move(fence_));
    } catch (...) {
        // A fence that cannot be reset is not kept: its handle destroys it.
    }
}

void Batch::submit(std::span<Recorder* const> parts) {
    if (submitted_) throw Error("internal: a Batch is submitted once");
    std::vector<VkCommandBuffer> cmds;
    for (Recorder* r : parts) {
        if (r->batches_ > 0 && !r->reusable_) throw Error("internal: a Recorder not made reusable submitted again");
        if (!r->ended()) r->end();
        cmds.push_back(r->command_buffer());
    }
    parts_.assign(parts.begin(), parts.end());
    device_.submit(cmds, fence_.get());
    for (Recorder* r : parts) ++r->batches_;
    submitted_ = true;
}

void Batch::wait() {
    if (!submitted_ || waited_) throw Error("internal: Batch::wait without a submission to wait for");
    waited_ = true;
    device_.wait(fence_.get());
    for (Recorder* r : parts_) r->read_timings();
}

ReadbackBuffer::ReadbackBuffer(Device& device, uint64_t bytes) : buffer_(device, bytes) {
    if (buffer_.mapped() == nullptr) mirror_ = Buffer(device, bytes, Placement::readback);
}

void ReadbackBuffer::record_copy(Recorder& recorder, uint64_t bytes) const {
    if (mirror_.get() == VK_NULL_HANDLE || bytes == 0) return;
    const VkBufferCopy region{0, 0, bytes};
    recorder.copy(buffer_.get(), mirror_.get(), std::span(&region, 1));
}

void ReadbackBuffer::read(void* dst, uint64_t bytes) const {
    const Buffer& from = mirror_.get() != VK_NULL_HANDLE ? mirror_ : buffer_;
    if (bytes > from.size()) {
        throw Error("internal: a readback of " + std::to_string(bytes) + " bytes from a buffer of " +
                    std::to_string(from.size()));
    }
    std::memcpy(dst, from.mapped(), bytes);
}

}  // namespace vkattn::vk
