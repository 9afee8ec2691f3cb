// The embedding kernel, and the guarantee it used to break: every kernel whose workgroup size is fixed in the
// shader asks for at most 128 invocations, the maxComputeWorkGroupInvocations Vulkan guarantees.
#include "catch.hpp"
#include "ops/shader_table.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

using namespace vkattn;

namespace {

struct LocalSize {
    uint32_t x = 0, y = 0, z = 0;
    bool specialized = false;  // a WorkgroupSize built-in (local_size_x_id) overrides the literal at run time
};

// Reads OpExecutionMode LocalSize and any BuiltIn WorkgroupSize decoration from a SPIR-V module.
LocalSize local_size(const ops::EmbeddedShader& s) {
    LocalSize ls;
    uint32_t workgroup_size_id = 0;  // the id decorated BuiltIn WorkgroupSize, if any
    for (size_t i = 5; i < s.word_count;) {
        const uint32_t count = s.words[i] >> 16, op = s.words[i] & 0xffffu;
        if (count == 0) break;  // malformed: stop rather than loop forever (spirv-val's test reports it)
        if (op == 16 && count >= 6 && s.words[i + 2] == 17) {  // OpExecutionMode %main LocalSize x y z
            ls.x = s.words[i + 3];
            ls.y = s.words[i + 4];
            ls.z = s.words[i + 5];
        }
        if (op == 71 && count >= 4 && s.words[i + 2] == 11 && s.words[i + 3] == 25) {  // OpDecorate BuiltIn WorkgroupSize
            workgroup_size_id = s.words[i + 1];
        }
        // glslang decorates a constant WorkgroupSize too; only an OpSpecConstantComposite is set at run time.
        if (op == 51 && count >= 3 && s.words[i + 2] == workgroup_size_id && workgroup_size_id != 0) {
            ls.specialized = true;
        }
        i += count;
    }
    return ls;
}

}  // namespace

TEST_CASE("kernels with a fixed workgroup size ask for at most 128 invocations", "[cpu][embedding]") {
    int fixed = 0;
    for (const auto& s : ops::embedded_shaders()) {
        const LocalSize ls = local_size(s);
        if (ls.specialized) continue;  // sized from the device's limits by ops/tuning.cpp
        INFO(s.name << ": local size " << ls.x << " × " << ls.y << " × " << ls.z);
        REQUIRE(ls.x > 0);
        CHECK(uint64_t(ls.x) * ls.y * ls.z <= 128);
        ++fixed;
    }
    // embedding_f32 and embedding_f16 at least have a fixed size: the loop above checked something.
    CHECK(fixed >= 2);
    const auto emb = local_size(*std::find_if(ops::embedded_shaders().begin(), ops::embedded_shaders().end(),
                                              [](const auto& s) { return std::string(s.name) == "embedding_f32"; }));
    CHECK_FALSE(emb.specialized);
    CHECK(emb.x == 128);
}
