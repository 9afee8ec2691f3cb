// The device manager: enumeration, choice, limits, validation layer, embedded SPIR-V, memory accounting.
#include "catch.hpp"
#include "ops/shader_table.hpp"
#include "support.hpp"
#include "vulkan/device.hpp"
#include "vulkan/instance.hpp"

#include <vkattn/context.hpp>
#include <vkattn/tensor.hpp>
#include <vkattn/units.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace vkattn;
using vkattn::test::error_message;

TEST_CASE("devices are listed with the limits the kernels respect", "[gpu][device]") {
    const auto devices = Context::devices();
    REQUIRE_FALSE(devices.empty());
    for (const auto& d : devices) {
        INFO(d.name);
        CHECK_FALSE(d.name.empty());
        if (!d.usable) continue;
        CHECK(d.max_storage_buffer_range >= (1u << 27) - 1);  // Vulkan requires 128 MiB
        CHECK(d.max_shared_memory >= 16384);
        CHECK(d.max_workgroup_invocations >= 128);
        CHECK(d.max_workgroup_count[0] >= 65535);
        CHECK(d.subgroup_size >= 1);
        CHECK(d.device_heap_bytes > 0);
    }
}

TEST_CASE("the context runs on the chosen device with validation as asked", "[gpu][device]") {
    Context& ctx = test::gpu();
    CHECK(ctx.validation() == vk::validation_requested_by_env());
    if (!vk::validation_requested_by_env()) WARN("VKATTN_VALIDATION is not set: the validation layer is off");
    const auto& d = ctx.device();
    CHECK(d.usable);
    // Choosing by index and by name substring finds the same device.
    const uint32_t by_index = vk::choose_device(Context::devices(), std::to_string(d.index));
    const uint32_t by_name = vk::choose_device(Context::devices(), d.name.substr(0, 4));
    CHECK(by_index == d.index);
    CHECK(Context::devices()[by_name].name.find(d.name.substr(0, 4)) != std::string::npos);
}

TEST_CASE("device memory is accounted and released", "[gpu][device]") {
    Context& ctx = test::gpu();
    const uint64_t before = ctx.device_memory_bytes();
    {
        Tensor t(ctx, {1000, 1000});
        CHECK(ctx.device_memory_bytes() >= before + 4'000'000);
        CHECK(ctx.peak_device_memory_bytes() >= before + 4'000'000);
        t.fill_zero();
        for (float x : t.download()) REQUIRE(x == 0.0f);
    }
    CHECK(ctx.device_memory_bytes() == before);
}

TEST_CASE("a buffer larger than the device allows is refused with the limit named", "[gpu][device]") {
    Context& ctx = test::gpu();
    const int64_t too_many = int64_t(ctx.device().max_memory_allocation / 4) + 1024;
    VKATTN_REQUIRE_CONTAINS(error_message([&] { Tensor t(ctx, {too_many}); }),
                            "exceeds the device's maxMemoryAllocationSize of " +
                                bytes_str(ctx.device().max_memory_allocation));
}

TEST_CASE("tensors round-trip through f32 and f16 storage", "[gpu][device]") {
    Context& ctx = test::gpu();
    const auto values = test::random_values(1001, 3, -100, 100);  // odd count: the last f16 word is half used
    Tensor t32(ctx, {1001}, values);
    CHECK(t32.download() == values);
    if (!ctx.device().storage_16bit) {
        WARN("no 16-bit storage on " << ctx.device().name << ": f16 tensors are refused there");
        return;
    }
    Tensor t16(ctx, {1001}, values, DType::f16);
    const auto back = t16.download();
    for (size_t i = 0; i < values.size(); ++i) REQUIRE(back[i] == round_to_dtype(values[i], DType::f16));
    VKATTN_REQUIRE_CONTAINS(error_message([&] { t16.upload(std::vector<float>(5)); }), "upload of 5 values");
}

TEST_CASE("every embedded SPIR-V module passes spirv-val", "[gpu][spirv]") {
    const auto dir = std::filesystem::temp_directory_path() / ("vkattn_spirv_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    REQUIRE_FALSE(ops::embedded_shaders().empty());
    for (const auto& s : ops::embedded_shaders()) {
        INFO(s.name);
        const auto path = dir / (std::string(s.name) + ".spv");
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(s.words), std::streamsize(s.word_count * 4));
        REQUIRE(s.words[0] == 0x07230203u);  // the SPIR-V magic number
        const std::string cmd = std::string(VKATTN_SPIRV_VAL) + " --target-env vulkan1.1 " + path.string();
        CHECK(std::system(cmd.c_str()) == 0);
    }
    std::filesystem::remove_all(dir);
}
