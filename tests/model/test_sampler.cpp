// The sampler: greedy ties, option checks, determinism from the seed, and the top-k / top-p / temperature
// filters seen through the frequencies of many draws (fixed seeds, so these are deterministic, not flaky).
#include "catch.hpp"
#include "support.hpp"

#include "model/logit_select.hpp"

#include <vkattn/model/sampler.hpp>
#include "vkattn/error.hpp"

#include <cmath>
#include <limits>
#include <optional>
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

TEST_CASE("min-p keeps the tokens at least min_p times as likely as the top one", "[cpu]") {
    // Probabilities relative to the top: 1, 0.5, 0.25, 0.1 (shuffled); min_p 0.3 keeps {2, 0}, sampled 1 : 0.5.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.1f), std::log(1.0f), std::log(0.25f)};
    SamplerOptions o = options(1.0f, 0, 1, 13);
    o.min_p = 0.3f;
    Sampler s(o);
    const auto f = frequencies(s, logits, 20000);
    CHECK(f[1] == 0.0);
    CHECK(f[3] == 0.0);
    CHECK(f[2] == Approx(1.0 / 1.5).margin(0.015));
    CHECK(f[0] == Approx(0.5 / 1.5).margin(0.015));

    // It filters on the temperature-1 probabilities: a high temperature does not let the others back in.
    o.temperature = 50.0f;
    o.min_p = 0.3f;
    Sampler hot(o);
    const auto g = frequencies(hot, logits, 4000);
    CHECK(g[1] + g[3] == 0.0);

    // min_p 1 keeps only the most likely token; min_p 0 keeps all of them.
    o.temperature = 1.0f;
    o.min_p = 1.0f;
    Sampler one(o);
    for (int i = 0; i < 100; ++i) REQUIRE(one.sample(logits) == 2);
    o.min_p = 0.0f;
    Sampler all(o);
    const auto h = frequencies(all, logits, 20000);
    CHECK(h[1] == Approx(0.1 / 1.85).margin(0.015));
}

TEST_CASE("the repeat penalty divides positive logits and multiplies negative ones of recent tokens", "[cpu]") {
    SamplerOptions o;  // greedy: the penalty applies before the argmax, as in llama.cpp
    o.repeat_penalty = 1.1f;
    {
        // 2.0 / 1.1 = 1.82 falls below 1.9.
        Sampler s(o);
        const std::vector<int> prompt = {0};
        s.accept(prompt);
        CHECK(s.sample(std::vector<float>{2.0f, 1.9f}) == 1);
    }
    {
        // -1.0 * 1.1 = -1.1 falls below -1.05.
        Sampler s(o);
        const std::vector<int> prompt = {0};
        s.accept(prompt);
        CHECK(s.sample(std::vector<float>{-1.0f, -1.05f}) == 1);
    }
    {
        // Each sampled token joins the history: 0 (no history), then 1 (0 penalised), then 0 (both penalised
        // once, however often they occurred: 1.82 > 1.73).
        Sampler s(o);
        const std::vector<float> logits = {2.0f, 1.9f};
        CHECK(s.sample(logits) == 0);
        CHECK(s.sample(logits) == 1);
        CHECK(s.sample(logits) == 0);
        CHECK(s.sample(logits) == 0);
    }
    {
        // Only the last repeat_last_n tokens count: token 0 has left a window of 2.
        SamplerOptions w = o;
        w.repeat_last_n = 2;
        Sampler s(w);
        const std::vector<int> prompt = {0, 5, 5};
        s.accept(prompt);
        CHECK(s.sample(std::vector<float>{2.0f, 1.9f, 0, 0, 0, 0}) == 0);
        w.repeat_last_n = 3;
        Sampler s3(w);
        s3.accept(prompt);
        CHECK(s3.sample(std::vector<float>{2.0f, 1.9f, 0, 0, 0, 0}) == 1);
        w.repeat_last_n = 0;  // off
        Sampler off(w);
        off.accept(prompt);
        CHECK(off.sample(std::vector<float>{2.0f, 1.9f, 0, 0, 0, 0}) == 0);
    }
    {
        // Ids outside the logits (another vocabulary) are ignored; penalty 1 changes nothing.
        Sampler s(o);
        const std::vector<int> prompt = {7, -1};
        s.accept(prompt);
        CHECK(s.sample(std::vector<float>{2.0f, 1.9f}) == 0);
        SamplerOptions none;
        Sampler plain(none);
        plain.accept(std::vector<int>{0});
        CHECK(plain.sample(std::vector<float>{2.0f, 1.9f}) == 0);
    }
}

TEST_CASE("the repeat penalty reshapes the distribution before sampling", "[cpu]") {
    // Probabilities 0.5, 0.3, 0.15, 0.05; penalty 2 on token 0 halves its logit ln 0.5 < 0, i.e. doubles it:
    // ln 0.25, so the weights become 0.25, 0.3, 0.15, 0.05 over 0.75.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    SamplerOptions o = options(1.0f, 0, 1, 17);
    o.repeat_penalty = 2.0f;
    o.repeat_last_n = 1;  // only the token just drawn: re-accept 0 before each draw to hold the history fixed
    Sampler s(o);
    std::vector<double> f(4, 0.0);
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        s.accept(std::vector<int>{0});
        f.at(size_t(s.sample(logits))) += 1.0 / n;
    }
    CHECK(f[0] == Approx(0.25 / 0.75).margin(0.015));
    CHECK(f[1] == Approx(0.3 / 0.75).margin(0.015));
    CHECK(f[3] == Approx(0.05 / 0.75).margin(0.015));
}

TEST_CASE("min-p and repeat penalty options are validated", "[cpu]") {
    auto with = [](auto set) {
        SamplerOptions o = options(1, 0, 1, 0);
        set(o);
        return error_of([&] { Sampler s(o); });
    };
    CHECK(with([](SamplerOptions& o) { o.min_p = -0.1f; }).find("min_p must be in [0, 1]") != std::string::npos);
    CHECK(with([](SamplerOptions& o) { o.min_p = 1.5f; }).find("min_p") != std::string::npos);
    CHECK(with([](SamplerOptions& o) { o.min_p = std::nanf(""); }).find("min_p") != std::string::npos);
    CHECK(with([](SamplerOptions& o) { o.repeat_penalty = 0; }).find("repeat_penalty must be finite and > 0") !=
          std::string::npos);
    CHECK(with([](SamplerOptions& o) { o.repeat_penalty = std::numeric_limits<float>::infinity(); })
              .find("repeat_penalty") != std::string::npos);
    CHECK(with([](SamplerOptions& o) { o.repeat_last_n = -1; }).find("repeat_last_n must be >= 0") !=
          std::string::npos);
    CHECK(with([](SamplerOptions& o) {
              o.min_p = 0.05f;
              o.repeat_penalty = 1.1f;
          }).empty());
}

// What the device selection hands the sampler must give the token the whole row gives: step after step (the
// repeat penalty's history growing), with ties, for every option set a selection serves.
TEST_CASE("a logit selection gives the token the whole row gives", "[cpu][sampler]") {
    struct Case {
        const char* name;
        SamplerOptions o;
    };
    auto with = [](float temperature, int top_k, float top_p, float min_p, float penalty) {
        SamplerOptions o = options(temperature, top_k, top_p, 7);
        o.min_p = min_p;
        o.repeat_penalty = penalty;
        o.repeat_last_n = 16;
        return o;
    };
    const Case cases[] = {
        {"greedy", with(0, 0, 1, 0, 1)},
        {"greedy with a penalty", with(0, 0, 1, 0, 1.5f)},
        {"top-1", with(0.8f, 1, 1, 0, 1)},
        {"top-40", with(0.8f, 40, 1, 0, 1)},
        {"top-40, top-p, min-p, penalty", with(1.0f, 40, 0.9f, 0.05f, 1.3f)},
        {"top-256, hot", with(1.5f, 256, 1, 0, 0.7f)},
    };
    const int V = 1000;
    for (const Case& c : cases) {
        INFO(c.name);
        Sampler whole(c.o), selected(c.o);
        const std::vector<int> prompt = {3, 999, 3, 42};
        whole.accept(prompt);
        selected.accept(prompt);
        for (int step = 0; step < 200; ++step) {
            // Logits on a coarse grid: many ties, and the penalised tokens often among the top.
            std::vector<float> logits = test::random_values(size_t(V), uint64_t(step) * 31 + 5, -4.0f, 4.0f);
            for (float& x : logits) x = std::round(x * 2) / 2;
            const std::optional<model::LogitRequest> request = selected.request(V);
            REQUIRE(request);
            const int a = whole.sample(logits);
            const int b = selected.sample(model::select_on_host(logits, *request), *request);
            REQUIRE(a == b);
        }
    }
}

TEST_CASE("the sampler asks for the whole row only when it needs it", "[cpu][sampler]") {
    CHECK(Sampler(options(0, 0, 1, 0)).request(50).value().k == 1);
    CHECK(Sampler(options(0.7f, 40, 0.9f, 0)).request(50).value().k == 40);
    CHECK_FALSE(Sampler(options(0.7f, 0, 1, 0)).request(50));    // every token a candidate
    CHECK_FALSE(Sampler(options(0.7f, 257, 1, 0)).request(50));  // more than a selection serves
    SamplerOptions penalty = options(0, 0, 1, 0);
    penalty.repeat_penalty = 1.2f;
    Sampler s(penalty);
    s.accept(std::vector<int>{9, 2, 9, 70, -1});  // outside [0, V) and repeated ids are left out
    CHECK(s.request(50).value().skip == std::vector<int>{2, 9});
    CHECK(Sampler(options(0, 0, 1, 0)).request(50).value().skip.empty());  // no penalty: nothing skipped

    // A selection that does not answer its request is refused, not trusted.
    Sampler g(options(0, 0, 1, 0));
    const model::LogitRequest r = g.request(4).value();
    model::LogitSelection wrong;
    wrong.vocab = 4;
    wrong.ids = {1, 2};
    wrong.logits = {1.0f, 0.5f};
    CHECK(error_of([&] { g.sample(wrong, r); }).find("does not answer its request") != std::string::npos);
    model::LogitSelection nan = wrong;
    nan.ids = {1};
    nan.logits = {1.0f};
    nan.first_nan = 3;
    CHECK(error_of([&] { g.sample(nan, r); }) == "sampler got NaN at logit 3");
}
