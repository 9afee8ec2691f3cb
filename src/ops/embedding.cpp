// embedding: gather token rows by copies, then add position rows (shaders/embedding.comp).
#include "model_params.h"
#include "ops/shader_table.hpp"
#include "ops/transformer.hpp"

#include <vector>

namespace vkattn::ops {

void record_embedding(Encoder& enc, std::span<const int> tokens, int pos0, uint32_t C, DType dtype,
                      const vk::Buffer& wte, const vk::Buffer& wpe, const vk::Buffer& rows, const vk::Buffer& x,
                      uint32_t row0) {
    record_token_rows(enc, tokens, C, dtype, wte, rows, row0);
    record_position_add(enc, uint32_t(tokens.size()), pos0, C, dtype, wpe, rows, x, row0);
}

void record_token_rows(Encoder& enc, std::span<const int> tokens, uint32_t C, DType dtype, const vk::Buffer& wte,
                       const vk::Buffer& rows, uint32_t row0) {
    const uint64_t row_bytes = uint64_t(C) * dtype_size(dtype);
    std::vector<VkBufferCopy> regions(tokens.size());
    for (size_t t = 0; t < tokens.size(); ++t) {
        regions[t] = {uint64_t(tokens[t]) * row_bytes, (uint64_t(row0) + t) * row_bytes, row_bytes};
    }
    enc.recorder.copy(wte.get(), rows.get(), regions);
}

void record_position_add(Encoder& enc, uint32_t T, int pos0, uint32_t C, DType dtype, const vk::Buffer& wpe,
                         const vk::Buffer& rows, const vk::Buffer& x, uint32_t row0, const vk::Buffer* step) {
    const char* name = dtype == DType::f16 ? "embedding_f16" : "embedding_f32";
    const vk::Pipeline& pipeline = enc.pipelines.get({name, spirv(name), 4, sizeof(glsl::EmbeddingParams), {}});
    glsl::EmbeddingParams p{};
    p.T = T;
    p.C = C;
    p.rows_offset = row0 * C;
    p.x_offset = row0 * C;
    p.step = step != nullptr ? 1 : 0;
    vk::Binding wpe_binding;
    if (step != nullptr) {  // the position is known when the dispatch runs: all of wpe
        wpe_binding = bind_whole(enc.device, wpe, "the position embedding table");
        p.wpe_offset = 0;
    } else {
        // Bind wpe from the first position used; rows of f16 may start mid-word, so keep an element remainder.
        const TensorRef wpe_ref{&wpe, dtype, uint64_t(pos0) * C, {1, 1, int64_t(T), int64_t(C)}, {0, 0, int64_t(C), 1}};
        const BoundView bw = bind_view(enc.device, wpe_ref, 1, 0, 1);
        wpe_binding = bw.binding;
        p.wpe_offset = bw.offset;
    }
    const vk::Binding rows_binding{rows.get(), 0, rows.size()};
    const vk::Binding bindings[] = {rows_binding, wpe_binding, {x.get(), 0, x.size()},
                                    step != nullptr ? bind_whole(enc.device, *step, "the step's position") : rows_binding};
    const uint32_t groups = (T * C + 127) / 128;  // shaders/embedding.comp: 128 invocations per workgroup
    const uint32_t gx = std::min(groups, enc.device.info().max_workgroup_count[0]);
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {gx, (groups + gx - 1) / gx, 1}, name);
}

}  // namespace vkattn::ops
