// The sampler's candidates from a row of logits on the device (shaders/top_k.comp): the k largest logits
// outside a skip list, the skipped ones' values and the first NaN, so that a decode step reads back a few
// hundred bytes, not the whole vocabulary's logits.
#pragma once

#include "ops/encoder.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace vkattn::ops {

constexpr uint32_t kTopKMax = 256;         // the most candidates one selection returns (the kernel's K_MAX)
constexpr uint32_t kTopKMaxSkip = 16000;   // the most skipped ids: the list travels in the command buffer
// The longest row: every invocation of the one workgroup runs about 10 V / kTopKWorkgroup + 3,000 loop
// iterations, and llvmpipe stops an invocation's loops after 65,535 (see shaders/top_k.comp).
constexpr uint32_t kTopKMaxVocab = 1u << 19;
constexpr uint32_t kTopKWorkgroup = 128;  // Vulkan's guaranteed maxComputeWorkGroupInvocations

// Words of the output buffer for k candidates and n_skip skipped ids.
inline uint64_t top_k_words(uint32_t k, uint32_t n_skip) { return 2 + 2 * uint64_t(k) + n_skip; }

// out (top_k_words(k, n_skip) words) = the k (1 <= k <= kTopKMax) largest of x [V] f32 (1 <= V <=
// kTopKMaxVocab) from element x_offset, leaving out the ids of `skip`, which this call writes into skip_buffer
// (4 · max(1, skip.size()) bytes at least) within the command buffer; skip must be ascending, distinct and
// below V (all checked). Read the result with read_top_k after the submission.
void record_top_k(Encoder& enc, const vk::Buffer& x, uint64_t x_offset, uint32_t V, std::span<const int> skip,
                  const vk::Buffer& skip_buffer, uint32_t k, const vk::Buffer& out);

struct TopKResult {
    std::vector<int> ids;        // by decreasing value, ties by increasing id; fewer than k when fewer remain
    std::vector<float> values;   // x[ids[i]]
    std::vector<float> skipped;  // x[skip[j]]
    int64_t first_nan = -1;      // the lowest index of a NaN in x; -1: none
};

// Decodes what record_top_k wrote (words: the first top_k_words(k, n_skip) words of out).
TopKResult read_top_k(std::span<const uint32_t> words, uint32_t k, uint32_t n_skip);

}  // namespace vkattn::ops
