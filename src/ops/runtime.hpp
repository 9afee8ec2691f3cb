// The engine behind a vkattn::Context: the Vulkan instance, the chosen device, the pipeline registry,
// profiling, and `run`, which records ops into one command buffer and submits it once.
//
// How vkattn's own layers reach it from the public handles: Context and Tensor befriend ops::Internal,
// which is defined only here, in a header that is never installed. So src/model/ (which may include ops/
// and cpu/, never api/) gets the Runtime behind a `Context&` and the buffer behind a `Tensor&` through
// ops::runtime(ctx) and ops::buffer(t), users see no accessor, and nothing needs api/ internals.
//
// The Runtime is shared: the Context holds it, and so does every Tensor (and model) made from it, so a
// tensor that outlives its Context still frees its buffer on a live device instead of crashing.
#pragma once

#include "ops/encoder.hpp"
#include "vulkan/device.hpp"
#include "vulkan/instance.hpp"
#include "vulkan/pipeline.hpp"

#include <vkattn/context.hpp>
#include <vkattn/tensor.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace vkattn::ops {

class Runtime {
public:
    explicit Runtime(const ContextOptions& options);
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    vk::Instance& instance() { return instance_; }
    vk::Device& device() { return device_; }
    const vk::Device& device() const { return device_; }
    vk::PipelineRegistry& pipelines() { return pipelines_; }

    bool profiling() const { return profile_; }
    void set_profiling(bool on) { profile_ = on; }
    // The timings of the last profiled run on any thread (see Context::last_timings for when to read them).
    const std::vector<KernelTiming>& last_timings() const { return last_timings_; }

    // Records what `record` asks for into one command buffer, submits once, waits once, and keeps the
    // per-dispatch timings when profiling. Thread-safe: runs hold the device's lock from the first
    // recorded command to the end of the wait, so runs from several threads take turns.
    void run(const std::function<void(Encoder&)>& record);
    // For work recorded into several Recorders and submitted as one vk::Batch (a decode step recorded ahead,
    // model/step_ahead.hpp): their timings, in order, become last_timings() when profiling. Call under the lock.
    void keep_timings(std::span<const vk::Recorder* const> parts);

private:
    // Creation order; destruction runs in reverse.
    vk::Instance instance_;
    vk::Device device_;
    vk::PipelineRegistry pipelines_;
    std::atomic<bool> profile_ = false;
    std::vector<KernelTiming> last_timings_;
};

// A Tensor's device storage. The runtime is declared first so that the buffer is released before it.
struct DeviceBuffer {
    std::shared_ptr<Runtime> runtime;
    vk::Buffer buffer;
};

// The friend of Context and Tensor (see the top of this file).
struct Internal {
    static const std::shared_ptr<Runtime>& shared_runtime(const Context& ctx) { return ctx.runtime_; }
    static vk::Buffer& buffer(const Tensor& t) { return t.storage_->buffer; }
};

inline Runtime& runtime(const Context& ctx) { return *Internal::shared_runtime(ctx); }
inline const std::shared_ptr<Runtime>& shared_runtime(const Context& ctx) { return Internal::shared_runtime(ctx); }
inline vk::Buffer& buffer(const Tensor& t) { return Internal::buffer(t); }

}  // namespace vkattn::ops
