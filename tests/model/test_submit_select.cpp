// LanguageModel::submit_select: a decode step submitted while the next one is recorded (model/step_ahead.hpp). The
// selections must be those forward_select gives step by step on the same device, whatever the caller does between
// submitting and waiting.
#include "catch.hpp"
#include "model/llama_fixtures.hpp"
#include "support.hpp"

#include <vkattn/context.hpp>
#include <vkattn/model/language_model.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace vkattn;
using vkattn::test::error_of;

namespace {

struct Variant {
    const char* fixture;
    DType weights;
    bool fused;
};

std::unique_ptr<model::LanguageModel> open_gpu(const Variant& v, Context& ctx) {
    model::ModelOptions o;
    o.context = &ctx;
    o.weights = v.weights;
    o.fused_attention = v.fused;
    return model::open_model(test::fixture(v.fixture), model::Backend::vulkan, o);
}

void check_same(const model::LogitSelection& got, const model::LogitSelection& want) {
    CHECK(got.vocab == want.vocab);
    CHECK(got.ids == want.ids);
    CHECK(got.logits == want.logits);
    CHECK(got.skipped == want.skipped);
    CHECK(got.first_nan == want.first_nan);
}

// A request as a repeat penalty makes them: the skip list changes every step (here, the tokens so far).
model::LogitRequest request_after(const std::vector<int>& tokens, int k) {
    model::LogitRequest r{k, {}};
    for (int t : tokens) {
        if (std::find(r.skip.begin(), r.skip.end(), t) == r.skip.end()) r.skip.push_back(t);
    }
    std::sort(r.skip.begin(), r.skip.end());
    return r;
}

}  // namespace

TEST_CASE("submit_select gives forward_select's selections step by step, on both families",
          "[gpu][generate][sampler]") {
    const Variant v = GENERATE(Variant{"tiny_gpt2", DType::f32, true}, Variant{"tiny_gpt2", DType::f16, true},
                               Variant{"tiny_llama3_gqa", DType::f32, true},
                               Variant{"tiny_llama3_gqa", DType::bf16, true},   // rows widened in the step's body
                               Variant{"tiny_llama3_gqa", DType::f32, false});  // three kernels: no step ahead
    const int k = GENERATE(1, 7);
    INFO(v.fixture << ", " << dtype_name(v.weights) << (v.fused ? ", fused" : ", three kernels") << ", k " << k);
    Context& ctx = test::gpu();
    const auto plain = open_gpu(v, ctx);
    const auto ahead = open_gpu(v, ctx);
    const std::vector<int> prompt = {43, 34, 66, 15};
    std::vector<int> tokens = prompt;
    model::LogitRequest request = request_after(tokens, k);
    check_same(ahead->forward_select(prompt, request), plain->forward_select(prompt, request));
    int next = 21;
    for (int step = 0; step < 12; ++step) {
        INFO("step " << step);
        request = request_after(tokens, k);
        const auto pending = ahead->submit_select(next, request);
        CHECK(ahead->position() == plain->position() + 1);  // the token counts once submitted
        const model::LogitSelection want = plain->forward_select(std::span<const int>(&next, 1), request);
        const model::LogitSelection got = pending->wait();
        check_same(got, want);
        tokens.push_back(next);
        next = got.ids.at(size_t(step) % got.ids.size());  // not always the top one: other paths too
    }
    CHECK(ahead->position() == plain->position());
}

TEST_CASE("submit_select: other calls complete the step in flight; refusals leave the cache as it was",
          "[gpu][generate][sampler]") {
    Context& ctx = test::gpu();
    const Variant v = GENERATE(Variant{"tiny_gpt2", DType::f32, true}, Variant{"tiny_llama3_gqa", DType::f32, true});
    INFO(v.fixture);
    const auto plain = open_gpu(v, ctx);
    const auto m = open_gpu(v, ctx);
    const std::vector<int> prompt = {43, 34, 66, 15};
    const model::LogitRequest top{3, {}};
    plain->forward_select(prompt, top);
    m->forward_select(prompt, top);

    // forward() while a step is in flight: the step completes first, its selection is kept for wait(), and the
    // forward sees the cache with the step's token in it.
    auto pending = m->submit_select(21, top);
    const model::LogitSelection want21 = plain->forward_select(std::vector<int>{21}, top);
    const std::vector<float> got_logits = m->forward(std::vector<int>{8}, false);
    CHECK(got_logits == plain->forward(std::vector<int>{8}, false));
    check_same(pending->wait(), want21);
    check_same(pending->wait(), want21);  // again: the same answer
    CHECK(m->position() == plain->position());

    // A PendingSelection dropped unread: the step still happened.
    m->submit_select(5, top);
    plain->forward_select(std::vector<int>{5}, top);
    CHECK(m->position() == plain->position());
    check_same(m->submit_select(9, top)->wait(), plain->forward_select(std::vector<int>{9}, top));

    // Refusals: a token outside the vocabulary, a bad request. Nothing changes, and the next step is right.
    const int before = m->position();
    CHECK(error_of([&] { m->submit_select(m->vocab_size(), top); }).find("is out of range") != std::string::npos);
    CHECK(error_of([&] { m->submit_select(3, {0, {}}); }).find("k must be in [1, 256]") != std::string::npos);
    CHECK(m->position() == before);
    check_same(m->submit_select(11, top)->wait(), plain->forward_select(std::vector<int>{11}, top));

    // reset() with a step in flight, then a fresh start.
    auto dropped = m->submit_select(12, top);
    m->reset();
    CHECK(m->position() == 0);
    plain->reset();
    check_same(m->forward_select(prompt, top), plain->forward_select(prompt, top));
    check_same(m->submit_select(30, top)->wait(), plain->forward_select(std::vector<int>{30}, top));
}

TEST_CASE("submit_select fills the context to its last position and refuses one more", "[gpu][generate][sampler]") {
    Context& ctx = test::gpu();
    model::ModelOptions o;
    o.context = &ctx;
    const auto m = model::open_model("synthetic:1,2,64", model::Backend::vulkan, o);
    const auto plain = model::open_model("synthetic:1,2,64", model::Backend::vulkan, o);
    const int P = m->context_length();
    const model::LogitRequest greedy{1, {}};
    std::vector<int> prompt(size_t(P - 2), 7);
    m->forward_select(prompt, greedy);
    plain->forward_select(prompt, greedy);
    check_same(m->submit_select(1, greedy)->wait(), plain->forward_select(std::vector<int>{1}, greedy));
    check_same(m->submit_select(2, greedy)->wait(), plain->forward_select(std::vector<int>{2}, greedy));
    CHECK(m->position() == P);
    CHECK(error_of([&] { m->submit_select(3, greedy); }).find("exceeds") != std::string::npos);
    CHECK(m->position() == P);
}

TEST_CASE("submit_select reports each step's kernels as the last timings", "[gpu][generate]") {
    ContextOptions co;
    co.profile = true;
    Context ctx(co);
    if (!ctx.device().timestamps) {
        WARN("no timestamps on " << ctx.device().name << ": the timings cannot be checked");
        return;
    }
    model::ModelOptions o;
    o.context = &ctx;
    const auto plain = model::open_model(test::fixture("tiny_gpt2"), model::Backend::vulkan, o);
    const auto m = model::open_model(test::fixture("tiny_gpt2"), model::Backend::vulkan, o);
    const auto names = [&] {
        std::vector<std::string> n;
        for (const KernelTiming& k : ctx.last_timings()) n.push_back(k.name);
        return n;
    };
    plain->forward_select(std::vector<int>{1, 2, 3}, {1, {}});
    m->forward_select(std::vector<int>{1, 2, 3}, {1, {}});
    plain->forward_select(std::vector<int>{4}, {1, {}});
    const std::vector<std::string> want = names();
    m->submit_select(4, {1, {}})->wait();
    // The same kernels in the same order (the step's three parts in one list), the embedding first.
    CHECK(names() == want);
    REQUIRE_FALSE(want.empty());
    CHECK(want.front().rfind("embedding", 0) == 0);
}

TEST_CASE("submit_select across the attention plan's changes: each step as forward_select's",
          "[gpu][generate][sampler]") {
    // Decode switches attention kernels at 256 keys (split-KV from there on every device's tuning table) and, on
    // the way, changes split-KV's slice count: a replayed step is recorded again for each new plan and must stay
    // right across them.
    Context& ctx = test::gpu();
    const bool is_llama = GENERATE(false, true);
    // A GPT-2 of one layer, and tiny_llama3_gqa (GQA, RoPE) with room for 1024 positions instead of 128.
    test::TempDir dir("llama1024");
    const std::string llama = (dir.path() / "tiny_llama3_gqa").string();
    std::filesystem::copy(test::fixture("tiny_llama3_gqa"), llama);
    {
        const std::string config = llama + "/config.json";
        std::ifstream in(config);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string from = "\"max_position_embeddings\": 128";
        REQUIRE(text.find(from) != std::string::npos);
        text.replace(text.find(from), from.size(), "\"max_position_embeddings\": 1024");
        std::ofstream(config) << text;
    }
    const std::string spec = is_llama ? llama : "synthetic:1,2,64";
    INFO(spec);
    model::ModelOptions o;
    o.context = &ctx;
    const auto m = model::open_model(spec, model::Backend::vulkan, o);
    const auto plain = model::open_model(spec, model::Backend::vulkan, o);
    const model::LogitRequest top{2, {}};
    std::vector<int> prompt(250);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int(i * 7 % 50);
    check_same(m->forward_select(prompt, top), plain->forward_select(prompt, top));
    int next = 3;
    const auto decode = [&](int steps) {
        for (int step = 0; step < steps; ++step) {
            INFO("position " << m->position());
            const model::LogitSelection got = m->submit_select(next, top)->wait();
            check_same(got, plain->forward_select(std::span<const int>(&next, 1), top));
            next = got.ids.at(size_t(step) % got.ids.size());
        }
    };
    decode(24);  // across 256 keys
    // To 500 positions, then across 512 keys, where split-KV's slice count grows on CPU devices.
    const std::vector<int> more(size_t(500 - m->position()), 9);
    check_same(m->forward_select(more, top), plain->forward_select(more, top));
    decode(24);
}
