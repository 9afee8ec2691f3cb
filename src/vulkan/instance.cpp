#include "vulkan/instance.hpp"

#include "vulkan/check.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace vkattn::vk {
namespace {

std::atomic<uint64_t> g_validation_messages{0};

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

bool has_layer(const char* name) {
    uint32_t n = 0;
    VKATTN_CHECK(vkEnumerateInstanceLayerProperties(&n, nullptr));
    std::vector<VkLayerProperties> layers(n);
    VKATTN_CHECK(vkEnumerateInstanceLayerProperties(&n, layers.data()));
    for (const auto& l : layers) {
        if (std::strcmp(l.layerName, name) == 0) return true;
    }
    return false;
}

std::vector<VkExtensionProperties> instance_extensions(const char* layer) {
    uint32_t n = 0;
    VKATTN_CHECK(vkEnumerateInstanceExtensionProperties(layer, &n, nullptr));
    std::vector<VkExtensionProperties> exts(n);
    VKATTN_CHECK(vkEnumerateInstanceExtensionProperties(layer, &n, exts.data()));
    return exts;
}

bool has_extension(const std::vector<VkExtensionProperties>& exts, const char* name) {
    for (const auto& e : exts) {
        if (std::strcmp(e.extensionName, name) == 0) return true;
    }
    return false;
}

// The instance-level Vulkan version the loader offers (1.0 when it predates vkEnumerateInstanceVersion).
uint32_t loader_version() {
    auto enumerate = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
    uint32_t version = VK_API_VERSION_1_0;
    if (enumerate != nullptr && enumerate(&version) != VK_SUCCESS) version = VK_API_VERSION_1_0;
    return version;
}

}  // namespace

uint64_t validation_message_count() { return g_validation_messages.load(); }

bool validation_requested_by_env() {
    const char* v = std::getenv("VKATTN_VALIDATION");
    if (v == nullptr) return false;
    const std::string_view s(v);
    return s == "1" || s == "true" || s == "on" || s == "yes" || s == "TRUE" || s == "ON";
}

Instance::Instance(bool validation) {
    const auto exts = instance_extensions(nullptr);
    std::vector<const char*> enabled_exts;
    std::vector<const char*> layers;

    // MoltenVK and other portability drivers are only enumerated when we say we can live with them.
    if (has_extension(exts, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        enabled_exts.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
        portability_enumeration_ = true;
    }
    // vkGetPhysicalDeviceProperties2 and friends are core from Vulkan 1.1; the KHR extension is only for a
    // 1.0 loader (enabling it on a newer one is a deprecated-extension warning under best-practices validation).
    if (loader_version() < VK_API_VERSION_1_1 &&
        has_extension(exts, VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME)) {
        enabled_exts.push_back(VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME);
    }
    if (validation) {
        if (!has_layer(kValidationLayer)) {
            throw Error("VKATTN_VALIDATION is on but the Vulkan validation layer " + std::string(kValidationLayer) +
                        " is not installed (Debian/Ubuntu: apt-get install vulkan-validationlayers; "
                        "elsewhere: the LunarG Vulkan SDK)");
        }
        layers.push_back(kValidationLayer);
        bool debug_utils = has_extension(exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                           has_extension(instance_extensions(kValidationLayer), VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        if (!debug_utils) throw Error("VKATTN_VALIDATION is on but VK_EXT_debug_utils is not available");
        enabled_exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    }

    VkApplicationInfo app{};
    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    app.pApplicationName = "vkattn";
    app.pEngineName = "vkattn";
    app.apiVersion = VK_API_VERSION_1_2;

    VkDebugUtilsMessengerCreateInfoEXT messenger_info{};
    messenger_info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    messenger_info.messageSeverity =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    messenger_info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                 VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
    messenger_info.pfnUserCallback = &Instance::on_message;
    messenger_info.pUserData = this;

    VkInstanceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
    info.pApplicationInfo = &app;
    info.enabledExtensionCount = uint32_t(enabled_exts.size());
    info.ppEnabledExtensionNames = enabled_exts.data();
    info.enabledLayerCount = uint32_t(layers.size());
    info.ppEnabledLayerNames = layers.data();
    if (portability_enumeration_) info.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    if (validation) info.pNext = &messenger_info;  // also catches messages from vkCreate/DestroyInstance

    const VkResult r = vkCreateInstance(&info, nullptr, &instance_);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
        throw VulkanError("no Vulkan driver found (VK_ERROR_INCOMPATIBLE_DRIVER); on Debian/Ubuntu install "
                          "mesa-vulkan-drivers for the lavapipe CPU device or your GPU vendor's driver",
                          int(r));
    }
    VKATTN_CHECK(r);

    if (validation) {
        auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
        if (create == nullptr || create(instance_, &messenger_info, nullptr, &messenger_) != VK_SUCCESS) {
            vkDestroyInstance(instance_, nullptr);
            throw Error("could not create the Vulkan debug messenger for the validation layer");
        }
    }
}

Instance::~Instance() {
    if (messenger_ != VK_NULL_HANDLE) {
        auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
        if (destroy != nullptr) destroy(instance_, messenger_, nullptr);
    }
    if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
}

std::vector<VkPhysicalDevice> Instance::physical_devices() const {
    uint32_t n = 0;
    VKATTN_CHECK(vkEnumeratePhysicalDevices(instance_, &n, nullptr));
    std::vector<VkPhysicalDevice> devices(n);
    VKATTN_CHECK(vkEnumeratePhysicalDevices(instance_, &n, devices.data()));
    devices.resize(n);
    return devices;
}

std::vector<std::string> Instance::take_messages() {
    std::lock_guard lock(mutex_);
    return std::exchange(messages_, {});
}

VkBool32 Instance::on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT,
                              const VkDebugUtilsMessengerCallbackDataEXT* data, void* self) {
    // Best-practices validation advises against VK_EXT_debug_utils, a debugging extension; vkattn enables it
    // only while validating, to receive these very messages, so that advice is the one message not counted.
    if (data->pMessageIdName != nullptr &&
        std::string_view(data->pMessageIdName) == "UNASSIGNED-BestPractices-vkCreateInstance-specialuse-extension-debugging") {
        return VK_FALSE;
    }
    const char* level = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning";
    std::string msg = std::string("Vulkan validation ") + level + ": " + (data->pMessage ? data->pMessage : "");
    std::fprintf(stderr, "%s\n", msg.c_str());
    g_validation_messages.fetch_add(1);
    auto* instance = static_cast<Instance*>(self);
    std::lock_guard lock(instance->mutex_);
    instance->messages_.push_back(std::move(msg));
    return VK_FALSE;
}

}  // namespace vkattn::vk
