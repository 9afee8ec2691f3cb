#include "ops/runtime.hpp"

#include "vulkan/recorder.hpp"

namespace vkattn::ops {

Runtime::Runtime(const ContextOptions& options)
    : instance_(options.validation.value_or(vk::validation_requested_by_env())),
      device_(instance_, options.device),
      pipelines_(device_),
      profile_(options.profile) {}

void Runtime::run(const std::function<void(Encoder&)>& record) {
    // One operation at a time per device: the command pool, the queue and the pipeline registry are shared.
    std::lock_guard lock(device_.mutex());
    vk::Recorder recorder(device_, profile_);
    Encoder enc{device_, pipelines_, recorder};
    record(enc);
    recorder.submit_and_wait();
    const vk::Recorder* parts[] = {&recorder};
    keep_timings(parts);
}

void Runtime::keep_timings(std::span<const vk::Recorder* const> parts) {
    if (!profile_) return;
    last_timings_.clear();
    for (const vk::Recorder* r : parts) {
        for (const auto& t : r->timings()) last_timings_.push_back({t.name, t.ms});
    }
}

}  // namespace vkattn::ops
