// What both families' GPU forwards share for checking their input and for sequence-parallel runs
// (LanguageModel::forward_shard): the checks, and the host reshapes between the device's row-major
// activations and the head-major tensors ShardAttention takes.
#pragma once

#include "model/attention_capture.hpp"

#include <vkattn/model/language_model.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vkattn::model {

// One pass of T rows through a GPU family's layers (their record_* pieces): activations in rows [0, T), their
// keys and values written to cache rows [pos, pos + T), each run of rows at its own positions (RoPE, position
// embeddings); the device attention, when the model does it, sees cache rows [0, pos + T).
struct GpuPass {
    struct Run {
        uint32_t row0, position, count;
    };
    uint32_t T = 0, pos = 0;
    std::vector<Run> runs;
    std::optional<vk::Buffer> scores;        // the three-kernel path's [H, T, Lk] scores
    GpuAttentionCapture* capture = nullptr;  // layers whose probabilities forward_with_attention returns
    // A one-token decode step recorded once and replayed (model/step_ahead.hpp): the position and key count come
    // from this glsl::StepParams buffer when it runs; pos is the position the recording is planned for.
    const vk::Buffer* step = nullptr;
};

// A sequence-parallel pass of a checked ShardForward: T rows from cache row 0, one run per run of positions.
GpuPass shard_pass(const ShardForward& shard, uint32_t T);

// Throws vkattn::Error naming the first token outside [0, V) and its index.
void check_tokens(std::span<const int> tokens, int vocab_size);

// Checks a ShardForward (an attention, runs non-empty, ascending, disjoint, within [0, max_positions), as
// many tokens as run positions, at most max_rows rows: what one device's KV cache holds) and returns its rows.
int check_shard(const ShardForward& shard, int vocab_size, int max_positions, int max_rows);

// Rows of logits one chunk of a sequence-parallel forward hands out at a time (about 64 MiB of f32).
uint32_t shard_logit_rows(uint32_t vocab_size);

// out [heads, T, D] = the heads of rows [T, row_stride] starting at element `offset` of each row.
void to_heads(std::span<const float> rows, uint32_t T, uint32_t heads, uint32_t D, uint32_t row_stride,
              uint32_t offset, std::span<float> out);
// out [T, heads·D] = in [heads, T, D], rows again.
void from_heads(std::span<const float> in, uint32_t T, uint32_t heads, uint32_t D, std::span<float> out);

}  // namespace vkattn::model
