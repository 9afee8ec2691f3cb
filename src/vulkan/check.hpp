// VKATTN_CHECK: turns a failed VkResult into vkattn::VulkanError naming the call, the result, file and line.
#pragma once

#include <vkattn/error.hpp>

#include <vulkan/vulkan.h>

#include <string>

namespace vkattn::vk {

const char* result_name(VkResult result);

[[noreturn]] void throw_vulkan_error(VkResult result, const char* expr, const char* file, int line);

}  // namespace vkattn::vk

#define VKATTN_CHECK(expr)                                                              \
    do {                                                                                \
        const VkResult vkattn_result_ = (expr);                                         \
        if (vkattn_result_ < 0) ::vkattn::vk::throw_vulkan_error(vkattn_result_, #expr, __FILE__, __LINE__); \
    } while (0)
