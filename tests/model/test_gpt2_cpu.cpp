// The CPU GPT-2: KV-cache decoding agrees with a full recompute, bad input is refused with a useful message,
// and the logits match golden ones from an independent PyTorch forward (scripts/golden_gpt2.py).
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/model/gpt2_cpu.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include "vkattn/error.hpp"
#include "vkattn/npy.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#ifndef VKATTN_FIXTURES_DIR
#define VKATTN_FIXTURES_DIR "tests/fixtures"
#endif

using namespace vkattn;

namespace {

using vkattn::test::error_of;

// Awkward sizes on purpose: 3 heads of 16, a vocabulary and context that are not powers of two.
model::Gpt2Config tiny_config() {
    model::Gpt2Config c;
    c.n_embd = 48;
    c.n_head = 3;
    c.n_layer = 2;
    c.n_positions = 40;
    c.vocab_size = 101;
    return c;
}

std::vector<int> some_tokens(int n, int V) {
    std::vector<int> t(n);
    for (int i = 0; i < n; ++i) t[i] = (i * 37 + 11) % V;
    return t;
}

// Largest |a - b| over rows [row0, row0 + rows) of b [*, V] against a [rows, V].
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, long row0, long V) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[row0 * V + i]));
    return m;
}

}  // namespace

TEST_CASE("KV-cache decoding gives the logits of a full recompute", "[cpu]") {
    const auto cfg = tiny_config();
    // stddev 0.1 rather than GPT-2's 0.02 so attention is far from uniform and a cache mistake shows.
    const auto w = model::synthetic_gpt2(cfg, 5, 0.1f);
    const int T = 17, V = cfg.vocab_size;
    const auto tokens = some_tokens(T, V);

    model::Gpt2Cpu full(w);
    const auto expected = full.forward(tokens);  // [T, V]
    REQUIRE(expected.size() == size_t(T) * V);
    CHECK(full.position() == T);

    // Each row is the same math either way; only the attention's double sums see different loop bounds, so
    // the float results agree to rounding. 1e-5 on logits of magnitude ~1 leaves ample room for that.
    const double tolerance = 1e-5;

    SECTION("prefill then one token at a time") {
        model::Gpt2Cpu m(w);
        const int prefill = 5;
        auto logits = m.forward(std::span(tokens).first(prefill));
        CHECK(max_abs_diff(logits, expected, 0, V) <= tolerance);
        for (int t = prefill; t < T; ++t) {
            logits = m.forward(std::span(tokens).subspan(t, 1));
            REQUIRE(logits.size() == size_t(V));
            INFO("decode step at position " << t);
            CHECK(max_abs_diff(logits, expected, t, V) <= tolerance);
            CHECK(m.position() == t + 1);
        }
    }

    SECTION("uneven chunks") {
        model::Gpt2Cpu m(w);
        int t0 = 0;
        for (int n : {3, 6, 8}) {
            const auto logits = m.forward(std::span(tokens).subspan(t0, n));
            INFO("chunk at " << t0 << " of " << n);
            CHECK(max_abs_diff(logits, expected, t0, V) <= tolerance);
            t0 += n;
        }
    }

    SECTION("reset starts over at position 0") {
        full.reset();
        CHECK(full.position() == 0);
        const auto again = full.forward(tokens);
        CHECK(max_abs_diff(again, expected, 0, V) == 0.0);
    }
}

TEST_CASE("Gpt2Cpu refuses bad tokens, overlong contexts and malformed weights", "[cpu]") {
    const auto cfg = tiny_config();
    const auto w = model::synthetic_gpt2(cfg, 6, 0.02f);
    model::Gpt2Cpu m(w);

    const std::vector<int> too_big = {1, 2, 101};
    const auto e1 = error_of([&] { m.forward(too_big); });
    CHECK(e1.find("token 101 at index 2") != std::string::npos);
    CHECK(e1.find("V = 101") != std::string::npos);
    CHECK(error_of([&] { m.forward(std::vector<int>{-1}); }).find("token -1") != std::string::npos);
    CHECK(m.position() == 0);  // a refused call leaves the cache as it was

    m.forward(some_tokens(30, cfg.vocab_size));
    const auto e2 = error_of([&] { m.forward(some_tokens(11, cfg.vocab_size)); });
    CHECK(e2.find("context of 41 tokens") != std::string::npos);
    CHECK(e2.find("n_positions = 40") != std::string::npos);
    CHECK(m.position() == 30);
    m.forward(some_tokens(10, cfg.vocab_size));  // exactly full is fine
    CHECK(m.position() == 40);
    CHECK(error_of([&] { m.forward(std::vector<int>{0}); }).find("context of 41") != std::string::npos);

    auto broken = w;
    broken.layers[1].fc_b.pop_back();
    CHECK(error_of([&] { model::Gpt2Cpu b(broken); }).find("h.1.mlp.c_fc.bias") != std::string::npos);
}

TEST_CASE("CPU GPT-2 logits match the PyTorch golden logits", "[cpu]") {
    const std::string dir = std::string(VKATTN_FIXTURES_DIR) + "/tiny_gpt2";
    const auto w = model::load_gpt2_weights(dir);

    std::vector<int> tokens;
    std::ifstream in(dir + "/golden_tokens.txt");
    REQUIRE(in);
    for (int t; in >> t;) tokens.push_back(t);
    REQUIRE(tokens.size() == 20);

    const auto golden = read_npy(dir + "/golden_logits.npy");
    const long V = w.config.vocab_size;
    REQUIRE(golden.shape == std::vector<int64_t>{static_cast<int64_t>(tokens.size()), V});

    model::Gpt2Cpu m(w);
    const auto logits = m.forward(tokens);
    REQUIRE(logits.size() == golden.data.size());

    // The golden logits come from a float64 torch forward on the same float32 weights, so the difference is
    // the float32 rounding between the ops here: ~1e-6 on logits of magnitude ~1. 1e-4 absorbs libm
    // differences in exp and tanh; a wrong mask, scale or missing bias moves logits by 1e-2 or more.
    const double atol = 1e-4;
    size_t worst = 0;
    double worst_diff = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
        REQUIRE(std::isfinite(logits[i]));
        const double d = std::abs(double(logits[i]) - golden.data[i]);
        if (d > worst_diff) worst_diff = d, worst = i;
    }
    INFO("max |cpu - torch| " << worst_diff << " at token " << worst / V << ", vocab " << worst % V << ": cpu "
                              << logits[worst] << ", torch " << golden.data[worst]);
    CHECK(worst_diff <= atol);
}
