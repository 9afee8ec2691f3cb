// Compute pipelines, built once per (kernel, specialization) and cached for the life of the device.
#pragma once

#include "vulkan/device.hpp"
#include "vulkan/handle.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace vkattn::vk {

// What a kernel needs to become a pipeline. Specialization constant i gets spec[i] (constant_id = i);
// bindings 0 .. bindings-1 are storage buffers; push constants are push_bytes long.
struct PipelineDesc {
    std::string name;
    std::span<const uint32_t> spirv;
    uint32_t bindings = 0;
    uint32_t push_bytes = 0;
    std::vector<uint32_t> spec;
};

struct Pipeline {
    std::string name;
    uint32_t bindings = 0;
    uint32_t push_bytes = 0;
    UniqueDescriptorSetLayout set_layout;
    UniquePipelineLayout layout;
    UniquePipeline pipeline;
};

class PipelineRegistry {
public:
    explicit PipelineRegistry(Device& device);

    // The cached pipeline for desc.name and desc.spec, built on first use. Thread-safe (the device's lock).
    const Pipeline& get(const PipelineDesc& desc);
    size_t size() const { return pipelines_.size(); }

private:
    Device& device_;
    std::map<std::tuple<std::string, std::vector<uint32_t>>, std::unique_ptr<Pipeline>> pipelines_;
};

}  // namespace vkattn::vk
