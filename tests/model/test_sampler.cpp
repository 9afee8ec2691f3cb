// The sampler: greedy ties, option checks, determinism from the seed, and the top-k / top-p / temperature
// filters seen through the frequencies of many draws (fixed seeds, so these are deterministic, not flaky).
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/model/sampler.hpp>
#include "vkattn/error.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace vkattn;
#ifdef VKATTN_CATCH3
using Catch::Approx;  // v2 declares Approx at global scope, v3 only in Catch::
#endif
using model::Sampler;
using model::SamplerOptions;

namespace {

using vkattn::test::error_of;

SamplerOptions options(float temperature, int top_k, float top_p, uint64_t seed) {
    SamplerOptions o;
    o.temperature = temperature;
    o.top_k = top_k;
    o.top_p = top_p;
    o.seed = seed;
    return o;
}

// Fraction of n draws that gave each index of logits [V].
std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<double> f(logits.size(), 0.0);
    for (int i = 0; i < n; ++i) f.at(s.sample(logits)) += 1.0 / n;
    return f;
}

}  // namespace

TEST_CASE("greedy picks the argmax, the lowest index on ties", "[cpu]") {
    Sampler s;
    CHECK(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}) == 1);
    CHECK(s.sample(std::vector<float>{1.0f, 5.0f, 5.0f, 5.0f}) == 1);
    CHECK(s.sample(std::vector<float>{-std::numeric_limits<float>::infinity(), -7.0f}) == 1);
}

TEST_CASE("sampler options are validated", "[cpu]") {
    CHECK(error_of([] { Sampler(options(-0.5f, 0, 1, 0)); }).find("temperature") != std::string::npos);
    CHECK(error_of([] { Sampler(options(std::nanf(""), 0, 1, 0)); }).find("temperature") != std::string::npos);
    CHECK(error_of([] { Sampler(options(1, -1, 1, 0)); }).find("top_k must be >= 0") != std::string::npos);
    CHECK(error_of([] { Sampler(options(1, 0, 0, 0)); }).find("top_p must be in (0, 1]") != std::string::npos);
    CHECK(error_of([] { Sampler(options(1, 0, 1.5f, 0)); }).find("top_p") != std::string::npos);
    CHECK(error_of([] { Sampler(options(0.7f, 40, 0.9f, 1)); }).empty());

    Sampler s(options(1, 0, 1, 0));
    CHECK(error_of([&] { s.sample(std::vector<float>{}); }).find("no logits") != std::string::npos);
    CHECK(error_of([&] { s.sample(std::vector<float>{0, std::nanf(""), 1}); }).find("NaN at logit 1") !=
          std::string::npos);
}

TEST_CASE("the same seed gives the same tokens; another seed does not", "[cpu]") {
    std::vector<float> logits(50);
    for (int i = 0; i < 50; ++i) logits[i] = std::sin(0.7f * i);
    auto draw = [&](uint64_t seed) {
        Sampler s(options(1.0f, 0, 1, seed));
        std::vector<int> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
        return out;
    };
    CHECK(draw(42) == draw(42));
    CHECK(draw(42) != draw(43));
}

TEST_CASE("temperature sampling follows the softmax", "[cpu]") {
    // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    Sampler s(options(1.0f, 0, 1, 7));
    const auto f = frequencies(s, logits, 20000);
    // The standard deviation of each frequency is at most sqrt(0.25 / 20000) = 0.0035; 0.015 is over 4 of them.
    CHECK(f[0] == Approx(0.5).margin(0.015));
    CHECK(f[1] == Approx(0.3).margin(0.015));
    CHECK(f[2] == Approx(0.15).margin(0.015));
    CHECK(f[3] == Approx(0.05).margin(0.015));

    // Temperature 0.5 squares the probabilities before renormalising: 0.25, 0.09, 0.0225, 0.0025 over 0.365.
    Sampler cold(options(0.5f, 0, 1, 7));
    const auto g = frequencies(cold, logits, 20000);
    CHECK(g[0] == Approx(0.25 / 0.365).margin(0.015));
    CHECK(g[1] == Approx(0.09 / 0.365).margin(0.015));
}

TEST_CASE("top-k keeps only the k largest logits", "[cpu]") {
    const std::vector<float> logits = {0.0f, 2.0f, 1.9f, -1.0f, 1.8f, 0.5f};
    Sampler one(options(1.0f, 1, 1, 3));
    for (int i = 0; i < 100; ++i) REQUIRE(one.sample(logits) == 1);

    Sampler three(options(5.0f, 3, 1, 3));  // a high temperature, so the others would show up if allowed
    const auto f = frequencies(three, logits, 3000);
    CHECK(f[0] == 0.0);
    CHECK(f[3] == 0.0);
    CHECK(f[5] == 0.0);
    CHECK(f[1] > 0.25);
    CHECK(f[2] > 0.25);
    CHECK(f[4] > 0.25);
}

TEST_CASE("top-p keeps the smallest nucleus reaching p, then renormalises", "[cpu]") {
    // Probabilities 0.05, 0.5, 0.15, 0.3 (shuffled so order comes from the sort, not the index).
    const std::vector<float> logits = {std::log(0.05f), std::log(0.5f), std::log(0.15f), std::log(0.3f)};
    // 0.5 < 0.7 <= 0.5 + 0.3: the nucleus is {1, 3}, sampled as 0.5 : 0.3.
    Sampler s(options(1.0f, 0, 0.7f, 11));
    const auto f = frequencies(s, logits, 20000);
    CHECK(f[0] == 0.0);
    CHECK(f[2] == 0.0);
    CHECK(f[1] == Approx(0.5 / 0.8).margin(0.015));
    CHECK(f[3] == Approx(0.3 / 0.8).margin(0.015));

    // A p no larger than the top probability leaves only the top token.
    Sampler tight(options(1.0f, 0, 0.4f, 11));
    for (int i = 0; i < 100; ++i) REQUIRE(tight.sample(logits) == 1);
}

TEST_CASE("masked (-inf) logits are never sampled", "[cpu]") {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> logits = {-inf, 0.0f, -inf, 0.0f, -inf};
    Sampler s(options(2.0f, 0, 1, 5));
    const auto f = frequencies(s, logits, 2000);
    CHECK(f[0] + f[2] + f[4] == 0.0);
    CHECK(f[1] == Approx(0.5).margin(0.05));

    const std::vector<float> all_masked = {-inf, -inf};
    CHECK(error_of([&] { s.sample(all_masked); }).find("finite largest logit") != std::string::npos);
}
