// Records many dispatches into one command buffer, then submits once and waits once.
#pragma once

#include "vulkan/device.hpp"
#include "vulkan/handle.hpp"
#include "vulkan/pipeline.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vkattn::vk {

// One storage-buffer binding: a range of a buffer. offset must respect minStorageBufferOffsetAlignment and
// range must not exceed maxStorageBufferRange; ops/binding.hpp computes both.
struct Binding {
    VkBuffer buffer = VK_NULL_HANDLE;
    uint64_t offset = 0;
    uint64_t range = 0;
};

struct DispatchTiming {
    std::string name;
    double ms = 0;
};

class Recorder {
public:
    // timestamps: write a GPU timestamp around each dispatch (ignored where the queue has none). reusable: once
    // ended, the command buffer may go to the queue again and again (through a Batch each time, each waited for
    // before the next): a decode step recorded once and replayed; otherwise it is submitted once.
    Recorder(Device& device, bool timestamps, bool reusable = false);
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;
    ~Recorder();

    // Records one dispatch, followed by a compute → compute barrier so the next dispatch sees its writes.
    void dispatch(const Pipeline& pipeline, std::span<const Binding> bindings, const void* push, uint32_t push_bytes,
                  std::array<uint32_t, 3> groups, std::string label = {});

    // Records buffer-to-buffer copies, fenced by barriers from earlier dispatches and to later ones.
    void copy(VkBuffer src, VkBuffer dst, std::span<const VkBufferCopy> regions);

    // Records a write of `bytes` (a multiple of 4, at most 65536) from the host into dst at offset (a multiple
    // of 4), the data kept in the command buffer: small per-submission inputs without a staging buffer.
    // Fenced like copy().
    void update(VkBuffer dst, uint64_t offset, const void* data, uint64_t bytes);

    // Scratch memory of at least `bytes` for the work being recorded. One buffer serves every call (each
    // dispatch is fenced from the next by a barrier) unless a call needs more than it holds. Borrowed from the
    // device and given back when the Recorder dies, so repeated submissions allocate nothing.
    const Buffer& scratch(uint64_t bytes);

    // Ends recording, submits, waits. A Recorder is used once.
    void submit_and_wait();

    // Ends recording (then only a Batch may submit it), with the barrier that makes the writes visible to the host.
    void end();
    bool ended() const { return ended_; }
    VkCommandBuffer command_buffer() const { return cmd_; }
    // Reads the timestamps once the submission has completed (Batch::wait does).
    void read_timings();

    // Per-dispatch GPU times after submit_and_wait(), in recording order (empty without timestamps).
    const std::vector<DispatchTiming>& timings() const { return timings_; }
    size_t dispatch_count() const { return labels_.size(); }
    Device& device() const { return device_; }

private:
    VkDescriptorSet allocate_set(VkDescriptorSetLayout layout);

    Device& device_;
    VkCommandBuffer cmd_ = VK_NULL_HANDLE;
    bool timestamps_ = false;
    bool reusable_ = false;
    bool ended_ = false;
    friend class Batch;
    uint32_t batches_ = 0;  // submissions through a Batch
    std::vector<UniqueDescriptorPool> pools_;
    uint32_t sets_left_ = 0;
    std::vector<UniqueQueryPool> query_pools_;
    std::vector<std::string> labels_;
    std::vector<DispatchTiming> timings_;
    std::vector<Buffer> scratch_;  // borrowed from the device; the last one is the current
};

// Recorders submitted together, in order, behind one fence, and waited for later: a decode step recorded ahead of
// time runs between a prologue and an epilogue recorded just before its submission, while the host goes on. The
// device's lock is taken by each call, not held from submit to wait. The Recorders must outlive the Batch.
class Batch {
public:
    explicit Batch(Device& device);  // borrows a fence from the device
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    ~Batch();  // waits for a submission not yet waited for (errors ignored), gives the fence back

    // Ends each part that is not ended yet and submits them all, in this order. Once per Batch.
    void submit(std::span<Recorder* const> parts);
    // Waits for the submission; then each part's timings() hold its dispatches' GPU times.
    void wait();

private:
    Device& device_;
    UniqueFence fence_;
    std::vector<Recorder*> parts_;
    bool submitted_ = false;
    bool waited_ = false;
};

// A device buffer that the host reads after each submission, with no staging copy of its own: read where it
// is mapped (unified memory), else through a persistent host-cached mirror that the submission fills with a
// recorded copy. A decode step then costs one submission and one wait, not a second pair for its logits.
class ReadbackBuffer {
public:
    ReadbackBuffer() = default;
    ReadbackBuffer(Device& device, uint64_t bytes);
    const Buffer& buffer() const { return buffer_; }  // what the kernels write
    // Records the copy of bytes [0, bytes) into the mirror, after the writes (nothing where it is mapped).
    void record_copy(Recorder& recorder, uint64_t bytes) const;
    // Bytes [0, bytes), once the submission that recorded the copy has completed.
    void read(void* dst, uint64_t bytes) const;

private:
    Buffer buffer_;
    Buffer mirror_;  // empty where buffer_ is mapped
};

}  // namespace vkattn::vk
