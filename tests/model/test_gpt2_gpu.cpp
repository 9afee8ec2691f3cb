// The GPU forward pass against the CPU reference forward: logits, KV-cache decode, greedy generation.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_cpu.hpp>
#include <vkattn/model/gpt2_gpu.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/model/sampler.hpp>
#include <vkattn/npy.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

using namespace vkattn;
using namespace vkattn::model;
using vkattn::test::compare;

namespace {

// A small GPT-2 whose weights have a spread of 0.1, not GPT-2's 0.02 initialisation: with 0.02 attention is
// nearly uniform, and a wrong scale or mask would move the logits less than fp16 rounding does.
Gpt2Weights small_model(int layers, int heads, int embd, int vocab, int positions, uint64_t seed) {
    Gpt2Config c;
    c.n_layer = layers;
    c.n_head = heads;
    c.n_embd = embd;
    c.vocab_size = vocab;
    c.n_positions = positions;
    return synthetic_gpt2(c, seed, 0.1f);
}

// The weights as f16 storage holds them, so the CPU reference sees what the GPU reads.
Gpt2Weights rounded_to_f16(Gpt2Weights w) {
    auto r = [](std::vector<float>& v) {
        for (float& x : v) x = round_to_dtype(x, DType::f16);
    };
    r(w.wte);
    r(w.wpe);
    for (auto& l : w.layers) {
        r(l.attn_w);
        r(l.attn_proj_w);
        r(l.fc_w);
        r(l.fc_proj_w);
    }
    return w;
}

std::vector<int> some_tokens(int n, int vocab, uint64_t seed) {
    const auto u = test::random_values(size_t(n), seed, 0.0f, 1.0f);
    std::vector<int> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[size_t(i)] = std::min(vocab - 1, int(u[size_t(i)] * float(vocab)));
    return t;
}

}  // namespace

TEST_CASE("GPU forward matches the CPU reference forward", "[gpu][model]") {
    const bool fused = GENERATE(true, false);
    const DType dtype = GENERATE(DType::f32, DType::f16);
    INFO((fused ? "fused" : "three-kernel") << " attention, " << dtype_name(dtype) << " weights");
    const Gpt2Weights w = small_model(2, 4, 128, 300, 64, 42);
    const Gpt2Weights ref_w = dtype == DType::f16 ? rounded_to_f16(w) : w;
    const auto tokens = some_tokens(37, 300, 7);  // not a multiple of any tile

    Gpt2Cpu cpu(ref_w);
    const auto ref = cpu.forward(tokens);
    Gpt2Gpu gpu(test::gpu(), w, {.weights = dtype, .fused_attention = fused});
    const auto got = gpu.forward(tokens);
    REQUIRE(got.size() == ref.size());
    // fp32 accumulation on the GPU against double on the CPU, through 2 layers with logits of size ~10:
    // 1e-3 absolute. f16 weights are rounded identically on both sides; only the f16 embedding rows and
    // accumulation order differ, the same bound holds.
    const auto cmp = compare(got, ref, 1e-3, 1e-4);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("GPU KV-cache decode equals the full recompute", "[gpu][model]") {
    const bool fused = GENERATE(true, false);
    const Gpt2Weights w = small_model(2, 2, 64, 120, 40, 3);
    const auto tokens = some_tokens(25, 120, 11);
    Gpt2Gpu gpu(test::gpu(), w, {.fused_attention = fused});
    const auto full = gpu.forward(tokens);
    gpu.reset();
    std::vector<float> stepwise;
    // Prefill 9 tokens, then 16 one at a time, each returning only the last row.
    auto part = gpu.forward(std::span(tokens).first(9));
    stepwise.insert(stepwise.end(), part.begin(), part.end());
    for (size_t i = 9; i < tokens.size(); ++i) {
        part = gpu.forward(std::span(tokens).subspan(i, 1), false);
        stepwise.insert(stepwise.end(), part.begin(), part.end());
    }
    CHECK(gpu.position() == 25);
    // Same kernels, different Lq splits of the same sums: fp32 reassociation only.
    const auto cmp = compare(stepwise, full, 1e-4, 1e-4);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("greedy generation gives the same 20 tokens on GPU and CPU", "[gpu][model]") {
    const Gpt2Weights w = small_model(2, 4, 128, 200, 64, 5);
    const std::vector<int> prompt = {1, 50, 7, 199, 3};
    auto generate = [&](auto& model) {
        Sampler greedy(SamplerOptions{});
        std::vector<int> out;
        auto logits = model.forward(prompt);
        int next = greedy.sample(std::span(logits).last(size_t(w.config.vocab_size)));
        for (int i = 0; i < 20; ++i) {
            out.push_back(next);
            logits = model.forward(std::span(&next, 1));
            next = greedy.sample(logits);
        }
        return out;
    };
    Gpt2Cpu cpu(w);
    Gpt2Gpu gpu(test::gpu(), w);
    const auto a = generate(cpu);
    const auto b = generate(gpu);
    CHECK(a == b);
}

TEST_CASE("the GPU forward reproduces PyTorch's golden logits", "[gpu][model]") {
    const std::string dir = std::string(VKATTN_FIXTURES_DIR) + "/tiny_gpt2";
    const Gpt2Weights w = load_gpt2_weights(dir);
    const NpyArray golden = read_npy(dir + "/golden_logits.npy");
    std::vector<int> tokens;
    {
        std::ifstream in(dir + "/golden_tokens.txt");
        for (int t; in >> t;) tokens.push_back(t);
    }
    REQUIRE(int64_t(tokens.size()) == golden.shape[0]);
    Gpt2Gpu gpu(test::gpu(), w);
    const auto cmp = compare(gpu.forward(tokens), golden.data, 1e-4, 1e-4);  // fp32 GPU against fp32/64 torch
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("the GPU model refuses bad tokens and an overlong context", "[gpu][model][errors]") {
    const Gpt2Weights w = small_model(1, 2, 64, 50, 8, 1);
    Gpt2Gpu gpu(test::gpu(), w);
    const std::vector<int> bad = {1, 50};
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { gpu.forward(bad); }), "token 50 at index 1 is out of range");
    const std::vector<int> nine(9, 1);
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { gpu.forward(nine); }), "exceeds n_positions = 8");
    CHECK(gpu.position() == 0);
}
