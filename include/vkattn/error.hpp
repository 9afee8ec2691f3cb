// Errors thrown by vkattn. Library code never exits or aborts; the CLI maps these to one line and exit code 2.
#pragma once

#include <vkattn/export.hpp>

#include <stdexcept>
#include <string>

namespace vkattn {

// Bad input or an unmet device requirement; the message says what was expected and what came.
class VKATTN_API Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A Vulkan call failed. result() is the VkResult as an int, so this header needs no Vulkan include.
class VKATTN_API VulkanError : public Error {
public:
    VulkanError(const std::string& message, int result) : Error(message), result_(result) {}
    int result() const noexcept { return result_; }

private:
    int result_;
};

}  // namespace vkattn
