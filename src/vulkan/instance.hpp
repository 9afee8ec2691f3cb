// The Vulkan instance, with the Khronos validation layer and a debug messenger when asked for.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace vkattn::vk {

// Number of validation messages (warnings and errors) seen by any instance of this process.
// Tests fail when it is not zero at the end; submissions fail at once when it grows.
uint64_t validation_message_count();

class Instance {
public:
    // validation: enable VK_LAYER_KHRONOS_validation and route its messages here; throws when the layer is missing.
    explicit Instance(bool validation);
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    VkInstance get() const { return instance_; }
    bool validation() const { return messenger_ != VK_NULL_HANDLE; }
    bool portability_enumeration() const { return portability_enumeration_; }
    std::vector<VkPhysicalDevice> physical_devices() const;

    // The messages seen by this instance since the last call, oldest first.
    std::vector<std::string> take_messages();

private:
    static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data, void* self);

    VkInstance instance_ = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
    bool portability_enumeration_ = false;
    std::mutex mutex_;
    std::vector<std::string> messages_;
};

// Whether the validation layer was asked for through VKATTN_VALIDATION (1, true, on, yes).
bool validation_requested_by_env();

}  // namespace vkattn::vk
