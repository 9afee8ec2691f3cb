// top_k: the sampler's candidates by radix selection in one workgroup (shaders/top_k.comp).
#include "ops/top_k.hpp"

#include "model_params.h"
#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <bit>
#include <string>

namespace vkattn::ops {

void record_top_k(Encoder& enc, const vk::Buffer& x, uint64_t x_offset, uint32_t V, std::span<const int> skip,
                  const vk::Buffer& skip_buffer, uint32_t k, const vk::Buffer& out) {
    const std::string what = "top_k of " + std::to_string(V) + " values";
    if (V == 0 || V > kTopKMaxVocab) {
        throw Error(what + ": the selection takes rows of 1 to " + std::to_string(kTopKMaxVocab) + " values");
    }
    if (k == 0 || k > kTopKMax) {
        throw Error(what + ": k = " + std::to_string(k) + " is outside [1, " + std::to_string(kTopKMax) + "]");
    }
    if (skip.size() > kTopKMaxSkip) {
        throw Error(what + ": " + std::to_string(skip.size()) + " skipped ids, more than the " +
                    std::to_string(kTopKMaxSkip) + " one selection takes");
    }
    for (size_t j = 0; j < skip.size(); ++j) {
        if (skip[j] < 0 || uint32_t(skip[j]) >= V || (j > 0 && skip[j] <= skip[j - 1])) {
            throw Error(what + ": the skipped ids must be ascending, distinct and in [0, V); entry " +
                        std::to_string(j) + " is " + std::to_string(skip[j]));
        }
    }
    if (x_offset + V > x.size() / 4) throw Error("internal: " + what + " outside its buffer");
    if (std::max<uint64_t>(1, skip.size()) * 4 > skip_buffer.size() || top_k_words(k, uint32_t(skip.size())) * 4 > out.size()) {
        throw Error("internal: " + what + ": skip or output buffer too small");
    }
    if (!skip.empty()) enc.recorder.update(skip_buffer.get(), 0, skip.data(), skip.size() * 4);

    const vk::Pipeline& pipeline =
        enc.pipelines.get({"top_k", spirv("top_k"), 4, sizeof(glsl::TopKParams), {kTopKWorkgroup}});
    // Bind the row alone (the logits of a long prefill may exceed one binding), from an aligned start.
    const uint64_t align = enc.device.info().min_storage_buffer_offset_alignment;
    const uint64_t start = x_offset * 4 / align * align;
    glsl::TopKParams p{};
    p.V = V;
    p.k = k;
    p.n_skip = uint32_t(skip.size());
    p.x_offset = uint32_t(x_offset - start / 4);
    const vk::Binding row{x.get(), start, (x_offset + V) * 4 - start};
    if (row.range > enc.device.info().max_storage_buffer_range) {
        throw Error(what + ": a row of " + std::to_string(row.range) + " bytes exceeds the device's maxStorageBufferRange");
    }
    const vk::Buffer& keys = enc.recorder.scratch(uint64_t(V) * 4);
    const vk::Binding bindings[] = {row,
                                    bind_whole(enc.device, skip_buffer, "top_k skip list"),
                                    bind_whole(enc.device, out, "top_k output"),
                                    {keys.get(), 0, uint64_t(V) * 4}};
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {1, 1, 1}, "top_k");
}

TopKResult read_top_k(std::span<const uint32_t> words, uint32_t k, uint32_t n_skip) {
    if (words.size() < top_k_words(k, n_skip)) throw Error("internal: top_k output too short");
    const uint32_t n = words[0];
    if (n > k) throw Error("internal: top_k chose " + std::to_string(n) + " of at most " + std::to_string(k));
    TopKResult r;
    r.first_nan = words[1] == UINT32_MAX ? -1 : int64_t(words[1]);
    for (uint32_t i = 0; i < n; ++i) {
        r.ids.push_back(int(words[2 + i]));
        r.values.push_back(std::bit_cast<float>(words[2 + k + i]));
    }
    for (uint32_t j = 0; j < n_skip; ++j) r.skipped.push_back(std::bit_cast<float>(words[2 + 2 * k + j]));
    return r;
}

}  // namespace vkattn::ops
