// What every op records into: the device, its pipeline cache, and the command buffer being built.
// Also the tensor reference ops take, and the planner that splits work to fit binding and grid limits.
#pragma once

#include "vulkan/device.hpp"
#include "vulkan/pipeline.hpp"
#include "vulkan/recorder.hpp"

#include "attention_params.h"

#include <vkattn/dtype.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace vkattn::ops {

struct Encoder {
    vk::Device& device;
    vk::PipelineRegistry& pipelines;
    vk::Recorder& recorder;
};

// A 4-D view [B, heads, L, D] of a device buffer; offset and strides in elements; the D stride is 1.
struct TensorRef {
    const vk::Buffer* buffer = nullptr;
    DType dtype = DType::f32;
    uint64_t offset = 0;
    std::array<int64_t, 4> shape{};
    std::array<int64_t, 4> stride{};  // b, head, l, d(=1)
};

// A contiguous [B, heads, L, D] view of a whole buffer.
TensorRef contiguous(const vk::Buffer& buffer, DType dtype, std::array<int64_t, 4> shape);

// Where the slices z in [z0, z1) of a view live inside one binding. z runs over B × H (H query heads);
// a view with fewer heads (K, V under GQA) maps query head h to h / (H / heads).
struct BoundView {
    vk::Binding binding;
    // Element offset of the view relative to the binding start. It may "wrap" below zero when z0 > 0: the
    // kernels add b·stride_b + h·stride_h for absolute b and h, and uint arithmetic is modulo 2³², so the
    // sum is the right index as long as the true index fits in 32 bits (checked by the planner).
    uint32_t offset = 0;
};
BoundView bind_view(const vk::Device& device, const TensorRef& view, uint32_t H, uint32_t z0, uint32_t z1);

// The push-constant description of a bound view (offset relative to the binding, strides).
glsl::ViewParams view_params(const BoundView& bound, const TensorRef& view);

// Splits z in [0, Z) into chunks whose every view fits one binding (maxStorageBufferRange) and whose count
// fits the grid's z dimension. Throws vkattn::Error naming the limit when a single slice does not fit.
std::vector<std::pair<uint32_t, uint32_t>> plan_chunks(const vk::Device& device, uint32_t Z, uint32_t H,
                                                       std::span<const TensorRef* const> views, const char* what);

// A whole buffer as one binding, refused with a message when it exceeds maxStorageBufferRange.
vk::Binding bind_whole(const vk::Device& device, const vk::Buffer& buffer, const char* what);

}  // namespace vkattn::ops
