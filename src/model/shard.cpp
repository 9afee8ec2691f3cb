// Input checks of the GPU forwards and the pieces of a sequence-parallel forward (src/model/shard.hpp).
#include "model/shard.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::model {

void check_tokens(std::span<const int> tokens, int vocab_size) {
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= vocab_size) {
            throw Error("token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is out of range: the vocabulary has V = " + std::to_string(vocab_size) + " tokens");
        }
    }
}

int check_shard(const ShardForward& shard, int vocab_size, int max_positions, int max_rows) {
    if (shard.attention == nullptr) throw Error("a sequence-parallel forward needs a ShardAttention");
    if (shard.runs.empty()) throw Error("a sequence-parallel forward needs at least one run of positions");
    int64_t rows = 0, last_end = 0;
    for (size_t i = 0; i < shard.runs.size(); ++i) {
        const auto [b, e] = shard.runs[i];
        if (b < last_end || e <= b || e > max_positions) {
            throw Error("run " + std::to_string(i) + " of positions [" + std::to_string(b) + ", " + std::to_string(e) +
                        ") is empty, out of order or past the model's " + std::to_string(max_positions) +
                        " positions");
        }
        rows += e - b;
        last_end = e;
    }
    if (int64_t(shard.tokens.size()) != rows) {
        throw Error("the runs hold " + std::to_string(rows) + " positions but " + std::to_string(shard.tokens.size()) +
                    " tokens came");
    }
    if (rows > max_rows) {
        throw Error("this rank's " + std::to_string(rows) + " rows exceed the " + std::to_string(max_rows) +
                    " positions its KV cache can hold; use more ranks");
    }
    check_tokens(shard.tokens, vocab_size);
    return int(rows);
}

GpuPass shard_pass(const ShardForward& shard, uint32_t T) {
    GpuPass p{.T = T, .pos = 0, .runs = {}, .scores = {}, .capture = nullptr};
    uint32_t row = 0;
    for (const auto& [b, e] : shard.runs) {
        p.runs.push_back({row, uint32_t(b), uint32_t(e - b)});
        row += uint32_t(e - b);
    }
    return p;
}

uint32_t shard_logit_rows(uint32_t vocab_size) {
    return std::max<uint32_t>(1, uint32_t((uint64_t(64) << 20) / (uint64_t(vocab_size) * 4)));
}

void to_heads(std::span<const float> rows, uint32_t T, uint32_t heads, uint32_t D, uint32_t row_stride,
              uint32_t offset, std::span<float> out) {
    for (uint32_t hd = 0; hd < heads; ++hd) {
        for (uint32_t t = 0; t < T; ++t) {
            const float* src = rows.data() + size_t(t) * row_stride + offset + size_t(hd) * D;
            std::copy_n(src, D, out.data() + (size_t(hd) * T + t) * D);
        }
    }
}

void from_heads(std::span<const float> in, uint32_t T, uint32_t heads, uint32_t D, std::span<float> out) {
    for (uint32_t hd = 0; hd < heads; ++hd) {
        for (uint32_t t = 0; t < T; ++t) {
            std::copy_n(in.data() + (size_t(hd) * T + t) * D, D, out.data() + size_t(t) * heads * D + size_t(hd) * D);
        }
    }
}

}  // namespace vkattn::model

namespace vkattn::model {

void LanguageModel::forward_shard(const ShardForward&) {
    throw Error("a sequence-parallel forward needs the vulkan backend; this model runs " + description_);
}

}  // namespace vkattn::model
