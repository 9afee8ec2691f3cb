#include "api/context_impl.hpp"

namespace vkattn {

Context::Impl::Impl(const ContextOptions& options)
    : instance(options.validation.value_or(vk::validation_requested_by_env())),
      device(instance, options.device),
      pipelines(device),
      profile(options.profile) {}

void Context::Impl::run(const std::function<void(ops::Encoder&)>& record) {
    vk::Recorder recorder(device, profile);
    ops::Encoder enc{device, pipelines, recorder};
    record(enc);
    recorder.submit_and_wait();
    if (profile) {
        last_timings.clear();
        for (const auto& t : recorder.timings()) last_timings.push_back({t.name, t.ms});
    }
}

Context::Context(const ContextOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Context::~Context() = default;

std::vector<DeviceInfo> Context::devices() {
    vk::Instance instance(false);
    return vk::describe_devices(instance);
}

const DeviceInfo& Context::device() const { return impl_->device.info(); }
bool Context::validation() const { return impl_->instance.validation(); }
bool Context::profiling() const { return impl_->profile; }
void Context::set_profiling(bool on) { impl_->profile = on; }
const std::vector<KernelTiming>& Context::last_timings() const { return impl_->last_timings; }
uint64_t Context::device_memory_bytes() const { return impl_->device.allocated_bytes(); }
uint64_t Context::peak_device_memory_bytes() const { return impl_->device.peak_allocated_bytes(); }
void Context::reset_peak_memory() { impl_->device.reset_peak(); }

}  // namespace vkattn
