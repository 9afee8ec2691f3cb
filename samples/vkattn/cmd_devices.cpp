// vkattn devices: every Vulkan device with the capabilities vkattn uses, in words (or --json).
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/context.hpp>

#include <cstdio>
#include <string>

namespace vkattn::cli {
namespace {

// The kernel matmuls with f16 weights run on: tensor cores (with the cooperative-matrix shape) or not.
std::string matmul_path(const DeviceInfo& d) {
    if (d.matmul_f16_path != "coopmat_nv") return d.matmul_f16_path;
    return "coopmat_nv " + std::to_string(d.coopmat_shape[0]) + "x" + std::to_string(d.coopmat_shape[1]) + "x" +
           std::to_string(d.coopmat_shape[2]);
}

const char* yes_no(bool b) { return b ? "yes" : "no"; }

std::string type_words(const std::string& type) {
    if (type == "cpu") return "CPU (Vulkan implemented in software)";
    if (type == "other") return "other";
    return type + " GPU";
}

nlohmann::ordered_json device_json(const DeviceInfo& d) {
    using json = nlohmann::ordered_json;
    return {{"index", d.index},
            {"name", d.name},
            {"type", d.type},
            {"vendor", d.vendor},
            {"vendor_id", d.vendor_id},
            {"device_id", d.device_id},
            {"driver", d.driver},
            {"api_version", d.api_version},
            {"usable", d.usable},
            {"unusable_reason", d.usable ? json(nullptr) : json(d.unusable_reason)},
            {"device_heap_bytes", d.device_heap_bytes},
            {"max_memory_allocation_bytes", d.max_memory_allocation},
            {"max_storage_buffer_range_bytes", d.max_storage_buffer_range},
            {"max_shared_memory_bytes", d.max_shared_memory},
            {"unified_memory", d.unified_memory},
            {"subgroup_size", d.subgroup_size},
            {"subgroup_arithmetic", d.subgroup_arithmetic},
            {"max_workgroup_invocations", d.max_workgroup_invocations},
            {"max_workgroup_size", d.max_workgroup_size},
            {"max_workgroup_count", d.max_workgroup_count},
            {"fp16_arithmetic", d.fp16_arithmetic},
            {"storage_16bit", d.storage_16bit},
            {"shader_int64", d.shader_int64},
            {"timestamps", d.timestamps},
            {"cooperative_matrix", d.cooperative_matrix},
            {"matmul_f16_path", d.matmul_f16_path},
            {"coopmat_note", d.coopmat_note.empty() ? json(nullptr) : json(d.coopmat_note)},
            {"portability_subset", d.portability_subset}};
}

void print_device(const DeviceInfo& d) {
    std::printf("device %u: %s\n", d.index, d.name.c_str());
    std::printf("  type:                   %s, vendor %s, Vulkan %s\n", type_words(d.type).c_str(), d.vendor.c_str(),
                d.api_version.c_str());
    std::printf("  driver:                 %s\n", d.driver.c_str());
    if (!d.usable) std::printf("  NOT USABLE by vkattn:   %s\n", d.unusable_reason.c_str());
    std::printf("  device memory:          %s in the largest device-local heap; %s\n", bytes_str(d.device_heap_bytes).c_str(),
                d.unified_memory ? "unified with the host (no staging copies)" : "discrete (copies go through staging)");
    std::printf("  largest allocation:     %s\n", bytes_str(d.max_memory_allocation).c_str());
    std::printf("  storage binding range:  %s (what one kernel argument may cover; larger work is split)\n",
                bytes_str(d.max_storage_buffer_range).c_str());
    std::printf("  shared memory:          %s per workgroup\n", bytes_str(d.max_shared_memory).c_str());
    std::printf("  subgroup size:          %u lanes%s\n", d.subgroup_size,
                d.subgroup_arithmetic ? ", with subgroup arithmetic" : ", no subgroup arithmetic");
    std::printf("  workgroups:             at most %u invocations, size %u x %u x %u, count %u x %u x %u\n",
                d.max_workgroup_invocations, d.max_workgroup_size[0], d.max_workgroup_size[1], d.max_workgroup_size[2],
                d.max_workgroup_count[0], d.max_workgroup_count[1], d.max_workgroup_count[2]);
    std::printf("  16-bit storage:         %s (f16 tensors, --dtype f16, need it)\n", yes_no(d.storage_16bit));
    std::printf("  fp16 arithmetic:        %s\n", yes_no(d.fp16_arithmetic));
    std::printf("  64-bit integers:        %s (CPU devices' matmul loads weights 8 bytes at a time with them)\n",
                yes_no(d.shader_int64));
    std::printf("  GPU timestamps:         %s (GPU times in attention, forward and bench need them)\n",
                yes_no(d.timestamps));
    std::printf("  f16 matmul kernel:      %s\n", matmul_path(d).c_str());
    if (!d.coopmat_note.empty()) std::printf("  cooperative matrices:   not used: %s\n", d.coopmat_note.c_str());
}

}  // namespace

Runner add_devices(CLI::App& app) {
    auto* cmd = app.add_subcommand("devices", "List Vulkan devices and the capabilities vkattn uses");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "one JSON object on stdout: version, commit and every device with its driver");
    cmd->footer("Sizes are in binary units (1 GiB = 1024^3 bytes) with the exact bytes. Unless --device or "
                "VKATTN_DEVICE says otherwise, vkattn takes the first usable device by type: discrete, integrated, "
                "virtual, then CPU.");
    return [json] {
        const auto devices = Context::devices();
        if (devices.empty()) {
            std::fprintf(stderr, "vkattn: no Vulkan device found (Debian/Ubuntu: apt-get install mesa-vulkan-drivers)\n");
            return kBadInput;
        }
        if (*json) {
            nlohmann::ordered_json j = provenance(nullptr);
            j.erase("device");
            j.erase("driver");  // each device carries its own
            j["devices"] = nlohmann::ordered_json::array();
            for (const auto& d : devices) j["devices"].push_back(device_json(d));
            std::printf("%s\n", json_line(j).c_str());
            return kOk;
        }
        for (size_t i = 0; i < devices.size(); ++i) {
            if (i > 0) std::printf("\n");
            print_device(devices[i]);
        }
        return kOk;
    };
}

}  // namespace vkattn::cli
