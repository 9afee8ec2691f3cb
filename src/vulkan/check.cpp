#include "vulkan/check.hpp"

namespace vkattn::vk {

const char* result_name(VkResult result) {
    switch (result) {
#define VKATTN_CASE(r) case r: return #r;
        VKATTN_CASE(VK_SUCCESS)
        VKATTN_CASE(VK_NOT_READY)
        VKATTN_CASE(VK_TIMEOUT)
        VKATTN_CASE(VK_INCOMPLETE)
        VKATTN_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        VKATTN_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        VKATTN_CASE(VK_ERROR_INITIALIZATION_FAILED)
        VKATTN_CASE(VK_ERROR_DEVICE_LOST)
        VKATTN_CASE(VK_ERROR_MEMORY_MAP_FAILED)
        VKATTN_CASE(VK_ERROR_LAYER_NOT_PRESENT)
        VKATTN_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        VKATTN_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        VKATTN_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        VKATTN_CASE(VK_ERROR_TOO_MANY_OBJECTS)
        VKATTN_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        VKATTN_CASE(VK_ERROR_FRAGMENTED_POOL)
        VKATTN_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
        VKATTN_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        VKATTN_CASE(VK_ERROR_FRAGMENTATION)
        VKATTN_CASE(VK_ERROR_UNKNOWN)
#undef VKATTN_CASE
    default: return "VkResult(unknown)";
    }
}

void throw_vulkan_error(VkResult result, const char* expr, const char* file, int line) {
    std::string what = std::string(expr) + " failed with " + result_name(result) + " (" + std::to_string(result) +
                       ") at " + file + ":" + std::to_string(line);
    if (result == VK_ERROR_DEVICE_LOST) {
        what = "the GPU device was lost (driver reset or crash); the context cannot be used any more: " + what;
    } else if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
        what = "out of GPU memory: " + what;
    } else if (result == VK_ERROR_OUT_OF_HOST_MEMORY) {
        what = "out of host memory: " + what;
    }
    throw VulkanError(what, int(result));
}

}  // namespace vkattn::vk
