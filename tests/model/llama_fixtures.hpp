// The tiny Llama-family checkpoints in tests/fixtures (written by scripts/golden_llama.py) and their golden
// tokens and PyTorch logits, for the tests that run them.
#pragma once

#include "catch.hpp"

#include <vkattn/npy.hpp>

#include <fstream>
#include <string>
#include <vector>

#ifndef VKATTN_FIXTURES_DIR
#define VKATTN_FIXTURES_DIR "tests/fixtures"
#endif

namespace vkattn::test {

// Every tiny Llama-family checkpoint and its config.json model_type.
struct LlamaFixture {
    const char* name;
    const char* model_type;
};
inline constexpr LlamaFixture k_llama_fixtures[] = {
    {"tiny_llama3_gqa", "llama"},     {"tiny_llama_tied_bias", "llama"},        {"tiny_llama_mqa_bf16", "llama"},
    {"tiny_llama_head_dim_sharded", "llama"}, {"tiny_mistral_window", "mistral"}, {"tiny_qwen2_window", "qwen2"}};

inline std::string fixture(const std::string& name) { return std::string(VKATTN_FIXTURES_DIR) + "/" + name; }

// dir/golden_tokens.txt: the ids the golden logits were computed for.
inline std::vector<int> golden_tokens(const std::string& dir) {
    std::vector<int> tokens;
    std::ifstream in(dir + "/golden_tokens.txt");
    REQUIRE(in);
    for (int t; in >> t;) tokens.push_back(t);
    return tokens;
}

// dir/golden_logits.npy: PyTorch's float64 logits [T, V] for those tokens, as float32.
inline std::vector<float> golden_logits(const std::string& dir) {
    const NpyArray golden = read_npy(dir + "/golden_logits.npy");
    return std::vector<float>(golden.data.begin(), golden.data.end());
}

}  // namespace vkattn::test
