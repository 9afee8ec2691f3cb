#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>

#include <string>

namespace vkattn::ops {

std::span<const uint32_t> spirv(std::string_view name) {
    for (const auto& s : embedded_shaders()) {
        if (name == s.name) return {s.words, s.word_count};
    }
    throw Error("internal: no embedded SPIR-V module named '" + std::string(name) + "'");
}

}  // namespace vkattn::ops
