// vkattn devices: every Vulkan device with the capabilities vkattn uses.
#include "cli.hpp"

#include <vkattn/context.hpp>

#include <cstdio>
#include <string>

namespace vkattn::cli {

Runner add_devices(CLI::App& app) {
    app.add_subcommand("devices", "List Vulkan devices and their capabilities");
    return [] {
        const auto devices = Context::devices();
        if (devices.empty()) {
            std::fprintf(stderr, "vkattn: no Vulkan device found (Debian/Ubuntu: apt-get install mesa-vulkan-drivers)\n");
            return kBadInput;
        }
        std::printf("%-3s %-34s %-10s %-7s %-8s %4s %7s %10s %9s %5s %5s  %s\n", "#", "name", "type", "vendor",
                    "api", "sg", "shared", "max range", "heap", "fp16", "st16", "f16 matmul");
        for (const auto& d : devices) {
            // The kernel matmuls with f16 weights run on: tensor cores (with the cooperative-matrix shape) or not.
            const std::string matmul = d.matmul_f16_path == "coopmat_nv"
                                           ? "coopmat_nv " + std::to_string(d.coopmat_shape[0]) + "x" +
                                                 std::to_string(d.coopmat_shape[1]) + "x" +
                                                 std::to_string(d.coopmat_shape[2])
                                           : d.matmul_f16_path;
            std::printf("%-3u %-34.34s %-10s %-7.7s %-8s %4u %6uK %9lluM %8lluM %5s %5s  %s\n", d.index, d.name.c_str(),
                        d.type.c_str(), d.vendor.c_str(), d.api_version.c_str(), d.subgroup_size,
                        d.max_shared_memory / 1024, (unsigned long long)(d.max_storage_buffer_range >> 20),
                        (unsigned long long)(d.device_heap_bytes >> 20), d.fp16_arithmetic ? "yes" : "no",
                        d.storage_16bit ? "yes" : "no", matmul.c_str());
            std::printf("    driver: %s; workgroup: %u invocations, size %u×%u×%u, count %u×%u×%u; %s memory%s\n",
                        d.driver.c_str(), d.max_workgroup_invocations, d.max_workgroup_size[0], d.max_workgroup_size[1],
                        d.max_workgroup_size[2], d.max_workgroup_count[0], d.max_workgroup_count[1],
                        d.max_workgroup_count[2], d.unified_memory ? "unified" : "discrete",
                        d.usable ? "" : ("; NOT USABLE: " + d.unusable_reason).c_str());
            if (!d.coopmat_note.empty()) std::printf("    cooperative matrices not used: %s\n", d.coopmat_note.c_str());
        }
        return kOk;
    };
}

}  // namespace vkattn::cli
