#include "vulkan/device.hpp"

#include "vulkan/check.hpp"

#include <vkattn/units.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace vkattn::vk {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

std::string vendor_name(uint32_t id) {
    switch (id) {
    case 0x10de: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x106b: return "Apple";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x10005: return "Mesa";
    default: {
        std::ostringstream s;
        s << "0x" << std::hex << id;
        return s.str();
    }
    }
}

std::string type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

int type_score(const std::string& type) {
    if (type == "discrete") return 4;
    if (type == "integrated") return 3;
    if (type == "virtual") return 2;
    if (type == "cpu") return 1;
    return 0;
}

std::vector<VkExtensionProperties> device_extensions(VkPhysicalDevice pd) {
    uint32_t n = 0;
    VKATTN_CHECK(vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr));
    std::vector<VkExtensionProperties> exts(n);
    VKATTN_CHECK(vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data()));
    return exts;
}

bool has_ext(const std::vector<VkExtensionProperties>& exts, const char* name) {
    return std::any_of(exts.begin(), exts.end(),
                       [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

// The first queue family with compute; a compute-only family is preferred (often the async compute queue).
int compute_family(VkPhysicalDevice pd, uint32_t* timestamp_bits) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
    std::vector<VkQueueFamilyProperties> fams(n);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, fams.data());
    int best = -1;
    for (uint32_t i = 0; i < n; ++i) {
        if (!(fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (best < 0 || !(fams[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
            // Keep the first compute family unless a compute-only one with timestamps comes along.
            if (best < 0 || fams[i].timestampValidBits > 0) best = int(i);
        }
    }
    if (best >= 0 && timestamp_bits != nullptr) *timestamp_bits = fams[size_t(best)].timestampValidBits;
    return best;
}

// Whether matmuls with f16 weights can run on VK_NV_cooperative_matrix here, and on which shape; sets
// matmul_f16_path, coopmat_shape and coopmat_note. The kernel (shaders/matmul_coopmat.comp) multiplies fp16
// A and B into fp32 C at subgroup scope; its SPIR-V needs the cooperativeMatrix, vulkanMemoryModel,
// shaderFloat16 and storageBuffer16BitAccess features, and the shape must be one the driver lists.
void choose_coopmat(VkInstance instance, VkPhysicalDevice pd, uint32_t api,
                    const std::vector<VkExtensionProperties>& exts, DeviceInfo& d) {
    if (!has_ext(exts, "VK_NV_cooperative_matrix")) {
        if (d.cooperative_matrix) d.coopmat_note = "only VK_KHR_cooperative_matrix, which vkattn does not use yet";
        return;
    }
#if !VKATTN_HAVE_COOPMAT_NV
    (void)instance;
    (void)pd;
    (void)api;
    d.coopmat_note = "this build's shader compiler had no GL_NV_cooperative_matrix";
#else
    // Opt-in: on an H100 (driver 580.159) this kernel passes its tests but runs slower than the shader GEMM
    // (9.2 ms against 6.1 ms for 4096^3 with f16 weights), so the faster kernel is the default.
    if (const char* env = std::getenv("VKATTN_COOPMAT"); env == nullptr || std::string(env) != "1") {
        d.coopmat_note = "off unless VKATTN_COOPMAT=1 (slower than the shader kernel on an H100)";
        return;
    }
    const bool memory_model_api = api >= VK_API_VERSION_1_2 || has_ext(exts, "VK_KHR_vulkan_memory_model");
    if (api < VK_API_VERSION_1_1) return;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{};
    coop.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm{};
    vmm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
    if (memory_model_api) coop.pNext = &vmm;
    VkPhysicalDeviceFeatures2 feats{};
    feats.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    feats.pNext = &coop;
    vkGetPhysicalDeviceFeatures2(pd, &feats);
    VkPhysicalDeviceCooperativeMatrixPropertiesNV coop_props{};
    coop_props.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    VkPhysicalDeviceProperties2 props{};
    props.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    props.pNext = &coop_props;
    vkGetPhysicalDeviceProperties2(pd, &props);

    if (!coop.cooperativeMatrix) {
        d.coopmat_note = "VK_NV_cooperative_matrix is listed but its cooperativeMatrix feature is not";
        return;
    }
    if (!(coop_props.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        d.coopmat_note = "VK_NV_cooperative_matrix does not support compute shaders here";
        return;
    }
    if (!vmm.vulkanMemoryModel || !vmm.vulkanMemoryModelDeviceScope) {
        d.coopmat_note = "the cooperative-matrix kernel needs the vulkanMemoryModel and its device-scope feature";
        return;
    }
    if (!d.fp16_arithmetic || !d.storage_16bit) {
        d.coopmat_note = "the cooperative-matrix kernel needs shaderFloat16 and storageBuffer16BitAccess";
        return;
    }
    // Not exported by the loader: extension commands come through vkGetInstanceProcAddr.
    const auto list_shapes = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    uint32_t n = 0;
    if (list_shapes == nullptr || list_shapes(pd, &n, nullptr) != VK_SUCCESS) {
        d.coopmat_note = "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV is missing or failed";
        return;
    }
    std::vector<VkCooperativeMatrixPropertiesNV> shapes(n);
    for (auto& s : shapes) s.sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    if (list_shapes(pd, &n, shapes.data()) != VK_SUCCESS) n = 0;
    shapes.resize(n);
    // fp16 × fp16 + fp32 at subgroup scope, each side 8, 16 or 32 (the kernel's shared-memory rows and tile
    // offsets then stay 16-byte aligned, as cooperative-matrix loads want); 16 × 16 × 16 first, else the first
    // such shape listed.
    auto fits = [](uint32_t v) { return v == 8 || v == 16 || v == 32; };
    std::array<uint32_t, 3> chosen{};
    std::string listed;
    auto type = [](VkComponentTypeNV t) -> std::string {
        switch (t) {
        case VK_COMPONENT_TYPE_FLOAT16_NV: return "f16";
        case VK_COMPONENT_TYPE_FLOAT32_NV: return "f32";
        case VK_COMPONENT_TYPE_SINT8_NV: return "s8";
        case VK_COMPONENT_TYPE_UINT8_NV: return "u8";
        case VK_COMPONENT_TYPE_SINT32_NV: return "s32";
        case VK_COMPONENT_TYPE_UINT32_NV: return "u32";
        default: return "type" + std::to_string(int(t));
        }
    };
    for (const auto& s : shapes) {
        listed += (listed.empty() ? "" : ", ") + std::to_string(s.MSize) + "x" + std::to_string(s.NSize) + "x" +
                  std::to_string(s.KSize) + " " + type(s.AType) + "*" + type(s.BType) + "+" + type(s.CType) + "=" +
                  type(s.DType) + (s.scope == VK_SCOPE_SUBGROUP_NV ? "" : " scope " + std::to_string(int(s.scope)));
        if (s.AType != VK_COMPONENT_TYPE_FLOAT16_NV || s.BType != VK_COMPONENT_TYPE_FLOAT16_NV ||
            s.CType != VK_COMPONENT_TYPE_FLOAT32_NV || s.DType != VK_COMPONENT_TYPE_FLOAT32_NV ||
            s.scope != VK_SCOPE_SUBGROUP_NV || !fits(s.MSize) || !fits(s.NSize) || !fits(s.KSize)) {
            continue;
        }
        const std::array<uint32_t, 3> shape{s.MSize, s.NSize, s.KSize};
        if (chosen[0] == 0 || shape == std::array<uint32_t, 3>{16, 16, 16}) chosen = shape;
    }
    if (chosen[0] == 0) {
        d.coopmat_note = "no fp16*fp16+fp32 subgroup shape with sides of 8, 16 or 32 among those listed "
                         "(MxNxK A*B+C=D): " + (listed.empty() ? std::string("none") : listed);
        return;
    }
    d.matmul_f16_path = "coopmat_nv";
    d.coopmat_shape = chosen;
#endif
}

}  // namespace

std::string missing_kernel_requirement(const std::string& type, VkShaderStageFlags stages,
                                       VkSubgroupFeatureFlags operations, uint32_t size,
                                       uint32_t max_workgroup_size_x, uint32_t max_workgroup_invocations) {
    const auto has = [&](VkSubgroupFeatureFlags f) { return (operations & f) == f; };
    if (!(stages & VK_SHADER_STAGE_COMPUTE_BIT)) return "it has no subgroup operations in compute shaders";
    if (!has(VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT)) {
        return "it lacks subgroup arithmetic in compute shaders, which LayerNorm needs";
    }
    if (type != "cpu") return "";
    if (!has(VK_SUBGROUP_FEATURE_SHUFFLE_BIT)) {
        return "it lacks subgroup shuffles, which its kernels for CPU devices (flash_rows, matmul_simd) need";
    }
    if (size == 0 || size > max_workgroup_size_x || size > max_workgroup_invocations) {
        return "its subgroup size " + std::to_string(size) + " is not a workgroup size it allows (" +
               std::to_string(max_workgroup_size_x) + " × " + std::to_string(max_workgroup_invocations) +
               "), and its kernels for CPU devices run one subgroup per workgroup";
    }
    return "";
}

namespace {

DeviceInfo describe(VkInstance instance, VkPhysicalDevice pd, uint32_t index) {
    DeviceInfo d;
    d.index = index;

    VkPhysicalDeviceSubgroupProperties subgroup{};
    subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    VkPhysicalDeviceDriverProperties driver{};
    driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
    VkPhysicalDeviceProperties2 props{};
    props.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    props.pNext = &subgroup;

    VkPhysicalDeviceProperties base{};
    vkGetPhysicalDeviceProperties(pd, &base);
    const bool v12 = base.apiVersion >= VK_API_VERSION_1_2;
    if (v12) subgroup.pNext = &driver;  // VkPhysicalDeviceDriverProperties is core in 1.2
    if (base.apiVersion >= VK_API_VERSION_1_1) {
        vkGetPhysicalDeviceProperties2(pd, &props);
    } else {
        props.properties = base;
    }
    const VkPhysicalDeviceProperties& p = props.properties;
    const VkPhysicalDeviceLimits& lim = p.limits;

    d.name = p.deviceName;
    d.type = type_name(p.deviceType);
    d.vendor_id = p.vendorID;
    d.device_id = p.deviceID;
    d.vendor = vendor_name(p.vendorID);
    d.api_version = std::to_string(VK_API_VERSION_MAJOR(p.apiVersion)) + "." +
                    std::to_string(VK_API_VERSION_MINOR(p.apiVersion)) + "." +
                    std::to_string(VK_API_VERSION_PATCH(p.apiVersion));
    d.driver = v12 ? std::string(driver.driverName) + " " + driver.driverInfo : std::to_string(p.driverVersion);
    d.subgroup_size = std::max(1u, subgroup.subgroupSize);
    d.subgroup_arithmetic = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                            (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    d.max_shared_memory = lim.maxComputeSharedMemorySize;
    for (int i = 0; i < 3; ++i) {
        d.max_workgroup_size[size_t(i)] = lim.maxComputeWorkGroupSize[i];
        d.max_workgroup_count[size_t(i)] = lim.maxComputeWorkGroupCount[i];
    }
    d.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
    d.max_storage_buffer_range = lim.maxStorageBufferRange;
    d.min_storage_buffer_offset_alignment = std::max<uint64_t>(1, lim.minStorageBufferOffsetAlignment);
    d.timestamp_period_ns = lim.timestampPeriod;

    VkPhysicalDeviceMaintenance3Properties m3{};
    m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
    VkPhysicalDeviceProperties2 props_m3{};
    props_m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    props_m3.pNext = &m3;
    if (base.apiVersion >= VK_API_VERSION_1_1) {
        vkGetPhysicalDeviceProperties2(pd, &props_m3);
        d.max_memory_allocation = m3.maxMemoryAllocationSize;
    }

    VkPhysicalDeviceMemoryProperties mem{};
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    bool all_device_local_visible = true;
    for (uint32_t i = 0; i < mem.memoryHeapCount; ++i) {
        if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
            d.device_heap_bytes = std::max<uint64_t>(d.device_heap_bytes, mem.memoryHeaps[i].size);
        }
    }
    for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
        const auto f = mem.memoryTypes[i].propertyFlags;
        if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && !(f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) {
            all_device_local_visible = false;
        }
    }
    if (d.max_memory_allocation == 0) d.max_memory_allocation = d.device_heap_bytes;
    // Integrated GPUs and CPU devices share host memory: mapping it directly avoids a copy per upload.
    d.unified_memory = d.type == "integrated" || d.type == "cpu" || all_device_local_visible;
    // VKATTN_DISCRETE_MEMORY=1 treats every device as a discrete GPU (device-local buffers reached through
    // staging copies), so that CI, on lavapipe, runs the memory paths of the GPUs users own.
    if (const char* env = std::getenv("VKATTN_DISCRETE_MEMORY"); env != nullptr && std::string(env) == "1") {
        d.unified_memory = false;
    }

    if (base.apiVersion >= VK_API_VERSION_1_1) {
        VkPhysicalDeviceShaderFloat16Int8Features f16{};
        f16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
        VkPhysicalDevice16BitStorageFeatures s16{};
        s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
        s16.pNext = &f16;
        VkPhysicalDeviceFeatures2 feats{};
        feats.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
        feats.pNext = &s16;
        vkGetPhysicalDeviceFeatures2(pd, &feats);
        d.fp16_arithmetic = f16.shaderFloat16;
        d.storage_16bit = s16.storageBuffer16BitAccess;
        d.shader_int64 = feats.features.shaderInt64;
    }

    const auto exts = device_extensions(pd);
    d.cooperative_matrix = has_ext(exts, "VK_KHR_cooperative_matrix") || has_ext(exts, "VK_NV_cooperative_matrix");
    d.portability_subset = has_ext(exts, "VK_KHR_portability_subset");
    choose_coopmat(instance, pd, base.apiVersion, exts, d);

    uint32_t ts_bits = 0;
    const int family = compute_family(pd, &ts_bits);
    d.timestamps = ts_bits > 0 && lim.timestampPeriod > 0;
    if (base.apiVersion < VK_API_VERSION_1_1) {
        d.usable = false;
        d.unusable_reason = "Vulkan " + d.api_version + " is older than the 1.1 vkattn needs";
    } else if (family < 0) {
        d.usable = false;
        d.unusable_reason = "it has no compute queue";
    } else if (std::string why = missing_kernel_requirement(d.type, subgroup.supportedStages,
                                                            subgroup.supportedOperations, subgroup.subgroupSize,
                                                            d.max_workgroup_size[0], d.max_workgroup_invocations);
               !why.empty()) {
        d.usable = false;
        d.unusable_reason = std::move(why);
    }
    return d;
}

}  // namespace

std::vector<DeviceInfo> describe_devices(const Instance& instance) {
    std::vector<DeviceInfo> out;
    const auto pds = instance.physical_devices();
    for (uint32_t i = 0; i < pds.size(); ++i) out.push_back(describe(instance.get(), pds[i], i));
    return out;
}

uint32_t choose_device(const std::vector<DeviceInfo>& devices, const std::string& selector_arg) {
    std::string selector = selector_arg;
    std::string origin = "the device option";
    if (selector.empty()) {
        if (const char* env = std::getenv("VKATTN_DEVICE"); env != nullptr && *env != '\0') {
            selector = env;
            origin = "VKATTN_DEVICE";
        }
    }
    auto candidates = [&] {
        std::string s;
        for (const auto& d : devices) {
            s += "\n  " + std::to_string(d.index) + ": " + d.name + " (" + d.type + ")";
            if (!d.usable) s += " - passed over: " + d.unusable_reason;
        }
        return s.empty() ? std::string("\n  (none: is a Vulkan driver installed? Debian: mesa-vulkan-drivers)") : s;
    };
    if (devices.empty()) throw Error("no Vulkan device found" + candidates());

    if (!selector.empty()) {
        const bool numeric = std::all_of(selector.begin(), selector.end(), [](unsigned char c) { return std::isdigit(c); });
        for (const auto& d : devices) {
            const bool match = numeric ? std::to_string(d.index) == selector
                                       : lower(d.name).find(lower(selector)) != std::string::npos;
            if (!match) continue;
            if (!d.usable) throw Error("device '" + d.name + "' chosen by " + origin + " cannot be used: " + d.unusable_reason);
            return d.index;
        }
        throw Error("no Vulkan device matches '" + selector + "' (from " + origin + "); the candidates are:" + candidates());
    }

    int best = -1;
    for (const auto& d : devices) {
        if (!d.usable) continue;
        if (best < 0 || type_score(d.type) > type_score(devices[size_t(best)].type)) best = int(d.index);
    }
    if (best < 0) throw Error("no usable Vulkan device; the candidates are:" + candidates());
    return uint32_t(best);
}

// ---------------------------------------------------------------------------------------------------------

Device::Device(Instance& instance, const std::string& selector) : instance_(instance) {
    const auto infos = describe_devices(instance);
    const uint32_t index = choose_device(infos, selector);
    info_ = infos[index];
    physical_ = instance.physical_devices()[index];
    vkGetPhysicalDeviceMemoryProperties(physical_, &memory_);
    queue_family_ = uint32_t(compute_family(physical_, &timestamp_bits_));

    const auto exts = device_extensions(physical_);
    std::vector<const char*> enabled;
    if (info_.portability_subset) enabled.push_back("VK_KHR_portability_subset");

    VkPhysicalDeviceShaderFloat16Int8Features f16{};
    f16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
    f16.shaderFloat16 = info_.fp16_arithmetic;
    VkPhysicalDevice16BitStorageFeatures s16{};
    s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    s16.storageBuffer16BitAccess = info_.storage_16bit;
    s16.pNext = &f16;
    VkPhysicalDeviceFeatures2 features{};
    features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    features.pNext = &s16;
    features.features.shaderInt64 = info_.shader_int64;
    // The cooperative-matrix matmul, when describe() chose it: its SPIR-V declares CooperativeMatrixNV and
    // the Vulkan memory model (shaderFloat16 and 16-bit storage are enabled above whenever present).
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{};
    coop.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm{};
    vmm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
    if (info_.matmul_f16_path == "coopmat_nv") {
        enabled.push_back("VK_NV_cooperative_matrix");
        VkPhysicalDeviceProperties props{};
        vkGetPhysicalDeviceProperties(physical_, &props);
        if (props.apiVersion < VK_API_VERSION_1_2) enabled.push_back("VK_KHR_vulkan_memory_model");
        coop.cooperativeMatrix = VK_TRUE;
        vmm.vulkanMemoryModel = VK_TRUE;
        vmm.vulkanMemoryModelDeviceScope = VK_TRUE;  // the kernel's SPIR-V uses device scope
        coop.pNext = &vmm;
        f16.pNext = &coop;
    }

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info{};
    queue_info.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    queue_info.queueFamilyIndex = queue_family_;
    queue_info.queueCount = 1;
    queue_info.pQueuePriorities = &priority;

    VkDeviceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    info.pNext = &features;
    info.queueCreateInfoCount = 1;
    info.pQueueCreateInfos = &queue_info;
    info.enabledExtensionCount = uint32_t(enabled.size());
    info.ppEnabledExtensionNames = enabled.data();
    VKATTN_CHECK(vkCreateDevice(physical_, &info, nullptr, &device_));
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pool_info{};
    pool_info.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    pool_info.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT | VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pool_info.queueFamilyIndex = queue_family_;
    VkCommandPool pool = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateCommandPool(device_, &pool_info, nullptr, &pool));
    pool_ = UniqueCommandPool(device_, pool);

    VkFenceCreateInfo fence_info{};
    fence_info.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    VkFence fence = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateFence(device_, &fence_info, nullptr, &fence));
    fence_ = UniqueFence(device_, fence);

    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(physical_, &props);
    allocator_ = std::make_unique<Allocator>(device_, memory_, props.limits.nonCoherentAtomSize,
                                             info_.max_memory_allocation);
}

Device::~Device() {
    if (device_ == VK_NULL_HANDLE) return;
    vkDeviceWaitIdle(device_);
    free_scratch_.clear();
    free_descriptor_pools_.clear();
    free_fences_.clear();
    allocator_.reset();
    fence_.reset();
    pool_.reset();
    vkDestroyDevice(device_, nullptr);
}

Buffer Device::take_scratch(uint64_t bytes) {
    std::lock_guard lock(mutex_);
    for (auto it = free_scratch_.begin(); it != free_scratch_.end(); ++it) {
        if (it->size() >= bytes) {
            Buffer b = std::move(*it);
            free_scratch_.erase(it);
            return b;
        }
    }
    return Buffer(*this, std::bit_ceil(std::max<uint64_t>(bytes, 64 * 1024)));
}

void Device::give_back(Buffer&& scratch) {
    std::lock_guard lock(mutex_);
    const auto at = std::find_if(free_scratch_.begin(), free_scratch_.end(),
                                 [&](const Buffer& b) { return b.size() >= scratch.size(); });
    free_scratch_.insert(at, std::move(scratch));
    if (free_scratch_.size() > kKeptScratch) free_scratch_.erase(free_scratch_.begin());
}

UniqueDescriptorPool Device::take_descriptor_pool() {
    std::lock_guard lock(mutex_);
    if (free_descriptor_pools_.empty()) return {};
    UniqueDescriptorPool pool = std::move(free_descriptor_pools_.back());
    free_descriptor_pools_.pop_back();
    return pool;
}

void Device::give_back(UniqueDescriptorPool&& pool) {
    std::lock_guard lock(mutex_);
    vkResetDescriptorPool(device_, pool.get(), 0);
    free_descriptor_pools_.push_back(std::move(pool));
}

uint32_t Device::memory_type(uint32_t allowed, Placement placement) const {
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const bool host_visible = info_.unified_memory || placement != Placement::device;
    // Preference order: exactly what the placement policy asks for, then anything that still works. The host
    // reads readback buffers: cached system memory, not a write-combined window onto the GPU's.
    std::vector<VkMemoryPropertyFlags> wanted;
    if (placement == Placement::readback && !info_.unified_memory) {
        wanted = {host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, host};
    } else if (host_visible) {
        wanted = {host | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, host};
    } else {
        wanted = {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0};
    }
    for (auto flags : wanted) {
        for (uint32_t i = 0; i < memory_.memoryTypeCount; ++i) {
            if ((allowed & (1u << i)) && (memory_.memoryTypes[i].propertyFlags & flags) == flags) return i;
        }
    }
    throw Error("no Vulkan memory type fits a " + std::string(host_visible ? "host-visible" : "device") + " buffer");
}

void Device::check_messages() {
    auto messages = instance_.take_messages();
    if (messages.empty()) return;
    std::string all = messages.front();
    if (messages.size() > 1) all += " (and " + std::to_string(messages.size() - 1) + " more)";
    throw Error(all);
}

uint64_t Device::allocated_bytes() const {
    std::lock_guard lock(mutex_);
    return allocated_;
}

uint64_t Device::peak_allocated_bytes() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

void Device::reset_peak() {
    std::lock_guard lock(mutex_);
    peak_ = allocated_;
}

void Device::warn(std::string line) {
    std::lock_guard lock(mutex_);
    warnings_.push_back(std::move(line));
}

std::vector<std::string> Device::warnings() const {
    std::lock_guard lock(mutex_);
    return warnings_;
}

void Device::submit_and_wait(VkCommandBuffer cmd) {
    std::lock_guard lock(mutex_);
    VkFence fence = fence_.get();
    VKATTN_CHECK(vkResetFences(device_, 1, &fence));
    submit(std::span(&cmd, 1), fence);
    wait(fence);
}

void Device::submit(std::span<const VkCommandBuffer> cmds, VkFence fence) {
    std::lock_guard lock(mutex_);
    check_messages();  // a message while recording is as much a failure as one while running
    VkSubmitInfo submit{};
    submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    submit.commandBufferCount = uint32_t(cmds.size());
    submit.pCommandBuffers = cmds.data();
    VKATTN_CHECK(vkQueueSubmit(queue_, 1, &submit, fence));
}

void Device::wait(VkFence fence) {
    // Takes no lock for the wait itself: while a Batch's owner waits for its fence, other threads may record and
    // submit (submit_and_wait, which holds the lock throughout, still runs one submission at a time).
    VKATTN_CHECK(vkWaitForFences(device_, 1, &fence, VK_TRUE, UINT64_MAX));
    std::lock_guard lock(mutex_);
    check_messages();
}

UniqueFence Device::take_fence() {
    std::lock_guard lock(mutex_);
    if (!free_fences_.empty()) {
        UniqueFence fence = std::move(free_fences_.back());
        free_fences_.pop_back();
        return fence;
    }
    VkFenceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    VkFence fence = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateFence(device_, &info, nullptr, &fence));
    return UniqueFence(device_, fence);
}

void Device::give_back(UniqueFence&& fence) {
    std::lock_guard lock(mutex_);
    VkFence f = fence.get();
    VKATTN_CHECK(vkResetFences(device_, 1, &f));
    free_fences_.push_back(std::move(fence));
}

void Device::copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes) {
    std::lock_guard lock(mutex_);  // the command pool and the queue
    VkCommandBufferAllocateInfo alloc{};
    alloc.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    alloc.commandPool = pool_.get();
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = 1;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VKATTN_CHECK(vkAllocateCommandBuffers(device_, &alloc, &cmd));
    struct Free {
        VkDevice d; VkCommandPool p; VkCommandBuffer c;
        ~Free() { vkFreeCommandBuffers(d, p, 1, &c); }
    } free_cmd{device_, pool_.get(), cmd};

    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VKATTN_CHECK(vkBeginCommandBuffer(cmd, &begin));
    // Earlier compute writes → this transfer; this transfer → later compute reads.
    VkMemoryBarrier before{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_SHADER_WRITE_BIT,
                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0,
                         nullptr, 0, nullptr);
    VkBufferCopy region{src_offset, dst_offset, bytes};
    vkCmdCopyBuffer(cmd, src, dst, 1, &region);
    VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                          VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &after, 0, nullptr,
                         0, nullptr);
    VKATTN_CHECK(vkEndCommandBuffer(cmd));
    submit_and_wait(cmd);
}

void Device::upload(Buffer& dst, uint64_t offset, const void* src, uint64_t bytes) {
    if (bytes == 0) return;
    if (offset + bytes > dst.size()) throw Error("upload of " + std::to_string(bytes) + " bytes at offset " +
                                                 std::to_string(offset) + " overruns a buffer of " +
                                                 std::to_string(dst.size()) + " bytes");
    if (dst.mapped() != nullptr) {
        std::memcpy(static_cast<char*>(dst.mapped()) + offset, src, bytes);
        return;
    }
    Buffer staging(*this, bytes, Placement::staging);
    std::memcpy(staging.mapped(), src, bytes);
    copy(staging.get(), 0, dst.get(), offset, bytes);
}

void Device::download(const Buffer& src, uint64_t offset, void* dst, uint64_t bytes) {
    if (bytes == 0) return;
    if (offset + bytes > src.size()) throw Error("download of " + std::to_string(bytes) + " bytes at offset " +
                                                 std::to_string(offset) + " overruns a buffer of " +
                                                 std::to_string(src.size()) + " bytes");
    if (src.mapped() != nullptr) {
        std::memcpy(dst, static_cast<const char*>(src.mapped()) + offset, bytes);
        return;
    }
    Buffer staging(*this, bytes, Placement::staging);
    copy(src.get(), offset, staging.get(), 0, bytes);
    std::memcpy(dst, staging.mapped(), bytes);
}

void Device::fill_zero(Buffer& dst) {
    if (dst.mapped() != nullptr) {
        std::memset(dst.mapped(), 0, dst.size());
        return;
    }
    std::vector<char> zeros(dst.size(), 0);
    upload(dst, 0, zeros.data(), zeros.size());
}

// ---------------------------------------------------------------------------------------------------------

Buffer::Buffer(Device& device, uint64_t bytes, Placement placement) : device_(&device) {
    std::lock_guard lock(device.mutex_);  // the accounting below, and one validation message stream
    const DeviceInfo& info = device.info();
    // Whole 32-bit words, at least one: shaders see 16-bit arrays as words, and Vulkan forbids empty buffers.
    bytes = std::max<uint64_t>(4, (bytes + 3) / 4 * 4);
    size_ = bytes;
    if (bytes > info.max_memory_allocation) {
        throw Error("a buffer of " + bytes_str(bytes) + " exceeds the device's maxMemoryAllocationSize of " +
                    bytes_str(info.max_memory_allocation) + " (" + info.name + ")");
    }
    if (bytes > info.device_heap_bytes) {
        throw Error("a buffer of " + bytes_str(bytes) + " exceeds the device's memory heap of " +
                    bytes_str(info.device_heap_bytes) + " (" + info.name + ")");
    }
    VkBufferCreateInfo bi{};
    bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    bi.size = bytes;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkBuffer buffer = VK_NULL_HANDLE;
    VKATTN_CHECK(vkCreateBuffer(device.get(), &bi, nullptr, &buffer));
    buffer_ = UniqueBuffer(device.get(), buffer);

    VkMemoryRequirements req{};
    vkGetBufferMemoryRequirements(device.get(), buffer, &req);
    // Placement policy: unified-memory devices get mapped device memory; discrete GPUs get device-local
    // memory and reach it through host-visible staging (or readback) buffers.
    const bool host_visible = info.unified_memory || placement != Placement::device;
    const uint32_t type = device.memory_type(req.memoryTypeBits, placement);
    memory_ = device.allocator_->allocate(req, type);
    const VkResult r = vkBindBufferMemory(device.get(), buffer, memory_.memory, memory_.offset);
    if (r != VK_SUCCESS) {
        device.allocator_->free(std::exchange(memory_, Allocation{}));
        VKATTN_CHECK(r);
    }
    mapped_ = host_visible ? memory_.mapped : nullptr;  // device placement is reached by staging where not unified
    device.allocated_ += req.size;
    device.peak_ = std::max(device.peak_, device.allocated_);
    accounted_ = req.size;
}

Buffer::Buffer(Buffer&& o) noexcept
    : device_(std::exchange(o.device_, nullptr)), buffer_(std::move(o.buffer_)),
      memory_(std::exchange(o.memory_, Allocation{})),
      size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, nullptr)),
      accounted_(std::exchange(o.accounted_, 0)) {}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        release();
        device_ = std::exchange(o.device_, nullptr);
        buffer_ = std::move(o.buffer_);
        memory_ = std::exchange(o.memory_, Allocation{});
        size_ = std::exchange(o.size_, 0);
        mapped_ = std::exchange(o.mapped_, nullptr);
        accounted_ = std::exchange(o.accounted_, 0);
    }
    return *this;
}

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
    if (device_ == nullptr) return;
    std::lock_guard lock(device_->mutex_);
    device_->allocated_ -= accounted_;
    accounted_ = 0;
    buffer_.reset();  // before its memory goes back to the allocator
    device_->allocator_->free(std::exchange(memory_, Allocation{}));
    mapped_ = nullptr;
}

}  // namespace vkattn::vk
