// The inside of vkattn::Context and vkattn::Tensor, shared by the files of src/api/ and src/model/.
#pragma once

#include "ops/encoder.hpp"
#include "vulkan/device.hpp"
#include "vulkan/instance.hpp"
#include "vulkan/pipeline.hpp"
#include "vulkan/recorder.hpp"

#include <vkattn/context.hpp>
#include <vkattn/tensor.hpp>

#include <functional>

namespace vkattn {

struct Context::Impl {
    // Creation order; destruction runs in reverse.
    vk::Instance instance;
    vk::Device device;
    vk::PipelineRegistry pipelines;
    bool profile = false;
    std::vector<KernelTiming> last_timings;

    explicit Impl(const ContextOptions& options);

    // Records what `record` asks for into one command buffer, submits once, waits once,
    // and keeps the per-dispatch timings when profiling.
    void run(const std::function<void(ops::Encoder&)>& record);
};

struct Tensor::Impl {
    Context* ctx = nullptr;
    std::vector<int64_t> shape;
    DType dtype = DType::f32;
    int64_t numel = 0;
    vk::Buffer buffer;
};

}  // namespace vkattn
