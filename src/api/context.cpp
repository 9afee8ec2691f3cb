// The public Context is a handle on a shared ops::Runtime (src/ops/runtime.hpp).
#include "ops/runtime.hpp"
#include "ops/self_check.hpp"

#include <vkattn/reference.hpp>

namespace vkattn {

namespace {

// The ops layer's self-checks compare with vkattn::reference, which lives in this layer.
std::shared_ptr<ops::Runtime> make_runtime(const ContextOptions& options) {
    ops::set_check_reference({&reference::attention, &reference::matmul});
    return std::make_shared<ops::Runtime>(options);
}

}  // namespace

Context::Context(const ContextOptions& options) : runtime_(make_runtime(options)) {}
Context::~Context() = default;

std::vector<DeviceInfo> Context::devices() {
    vk::Instance instance(false);
    return vk::describe_devices(instance);
}

const DeviceInfo& Context::device() const { return runtime_->device().info(); }
bool Context::validation() const { return runtime_->instance().validation(); }
bool Context::profiling() const { return runtime_->profiling(); }
void Context::set_profiling(bool on) { runtime_->set_profiling(on); }
const std::vector<KernelTiming>& Context::last_timings() const { return runtime_->last_timings(); }
uint64_t Context::device_memory_bytes() const { return runtime_->device().allocated_bytes(); }
uint64_t Context::peak_device_memory_bytes() const { return runtime_->device().peak_allocated_bytes(); }
void Context::reset_peak_memory() { runtime_->device().reset_peak(); }
std::vector<std::string> Context::warnings() const { return runtime_->device().warnings(); }

}  // namespace vkattn
