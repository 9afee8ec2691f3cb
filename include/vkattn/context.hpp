// A Context owns the Vulkan instance, the chosen device, its queue and the pipeline cache. Tensors made from
// it share that device core, so a Tensor that outlives its Context is harmless: its memory is freed with it.
//
// Threads: one Context may be used by several threads at once. One lock per Context (its device's) is held
// by every operation from its first recorded command to the end of its submission, by uploads, downloads and
// fill_zero, by tensor creation and destruction (the memory accounting) and by the pipeline registry; so
// operations from different threads are safe and run one after another on the GPU, not side by side.
// Descriptor pools belong to each operation's recording, so they need no lock. Not locked: a Tensor itself
// (two threads writing one tensor, or one reading what another writes, must order that themselves), the
// models (a LanguageModel's KV cache belongs to one thread at a time), and last_timings(), which is the
// last profiled operation of any thread: read it only when no other thread is running operations.
#pragma once

#include <vkattn/device_info.hpp>
#include <vkattn/export.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vkattn {

namespace ops {
class Runtime;
struct Internal;
}  // namespace ops

struct ContextOptions {
    std::string device;               // index or name substring; empty: $VKATTN_DEVICE, then the best by score
    std::optional<bool> validation;   // Khronos validation layer; unset: on when VKATTN_VALIDATION=1
    bool profile = false;             // time every dispatch with GPU timestamps (see Context::last_timings)
};

// GPU time of one dispatch of the last call, from timestamps.
struct KernelTiming {
    std::string name;
    double ms = 0;
};

class VKATTN_API Context {
public:
    explicit Context(const ContextOptions& options = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Every device the Vulkan loader lists, usable or not (with the reason); creates a temporary instance.
    static std::vector<DeviceInfo> devices();

    const DeviceInfo& device() const;
    bool validation() const;

    bool profiling() const;
    void set_profiling(bool on);
    // Per-dispatch GPU times of the last operation recorded with profiling on.
    const std::vector<KernelTiming>& last_timings() const;

    // Bytes of device memory held by vkattn now, and the most held since the last reset_peak_memory().
    uint64_t device_memory_bytes() const;
    uint64_t peak_device_memory_bytes() const;
    void reset_peak_memory();

    // One-line warnings vkattn recorded about this context's device, oldest first; the library never prints them.
    // Today: a cooperative-matrix kernel that disagreed with the CPU reference on its first use (a small case run
    // once per kernel and device), which then gives way to the scalar kernels, e.g.
    // "flash_coopmat_f16 [...] failed its self-check against the CPU reference: ...; using the scalar kernels".
    std::vector<std::string> warnings() const;

private:
    friend struct ops::Internal;  // vkattn's own layers reach the engine through src/ops/runtime.hpp
    std::shared_ptr<ops::Runtime> runtime_;
};

}  // namespace vkattn
