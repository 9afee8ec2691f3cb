#include "vulkan/pipeline.hpp"

#include "vulkan/check.hpp"

namespace vkattn::vk {

PipelineRegistry::PipelineRegistry(Device& device) : device_(device) {}

const Pipeline& PipelineRegistry::get(const PipelineDesc& desc) {
    std::lock_guard lock(device_.mutex());  // the map; built pipelines never move (unique_ptr), so the reference stays valid
    auto key = std::make_tuple(desc.name, desc.spec);
    if (auto it = pipelines_.find(key); it != pipelines_.end()) return *it->second;
    if (desc.spirv.empty()) throw Error("no SPIR-V for kernel '" + desc.name + "'");

    const VkDevice dev = device_.get();
    auto p = std::make_unique<Pipeline>();
    p->name = desc.name;
    p->bindings = desc.bindings;
    p->push_bytes = desc.push_bytes;

    std::vector<VkDescriptorSetLayoutBinding> bindings(desc.bindings);
    for (uint32_t i = 0; i < desc.bindings; ++i) {
        bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    }
    VkDescriptorSetLayoutCreateInfo dsl{};
    dsl.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    dsl.bindingCount = desc.bindings;
    dsl.pBindings = bindings.data();
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateDescriptorSetLayout(dev, &dsl, nullptr, &set_layout));
    p->set_layout = UniqueDescriptorSetLayout(dev, set_layout);

    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, desc.push_bytes};
    VkPipelineLayoutCreateInfo pl{};
    pl.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    pl.setLayoutCount = 1;
    pl.pSetLayouts = &set_layout;
    pl.pushConstantRangeCount = desc.push_bytes > 0 ? 1 : 0;
    pl.pPushConstantRanges = &range;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreatePipelineLayout(dev, &pl, nullptr, &layout));
    p->layout = UniquePipelineLayout(dev, layout);

    VkShaderModuleCreateInfo sm{};
    sm.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    sm.codeSize = desc.spirv.size_bytes();
    sm.pCode = desc.spirv.data();
    VkShaderModule module = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateShaderModule(dev, &sm, nullptr, &module));
    UniqueShaderModule module_owner(dev, module);  // only needed until the pipeline exists

    std::vector<VkSpecializationMapEntry> entries(desc.spec.size());
    for (uint32_t i = 0; i < desc.spec.size(); ++i) entries[i] = {i, i * 4u, 4u};
    VkSpecializationInfo spec{};
    spec.mapEntryCount = uint32_t(entries.size());
    spec.pMapEntries = entries.data();
    spec.dataSize = desc.spec.size() * 4;
    spec.pData = desc.spec.data();

    VkComputePipelineCreateInfo ci{};
    ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = module;
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = desc.spec.empty() ? nullptr : &spec;
    ci.layout = layout;
    VkPipeline pipeline = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &ci, nullptr, &pipeline));
    p->pipeline = UniquePipeline(dev, pipeline);

    return *pipelines_.emplace(std::move(key), std::move(p)).first->second;
}

}  // namespace vkattn::vk
