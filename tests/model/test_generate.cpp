// generate(): stopping rules and UTF-8-safe streaming, with a scripted model; then greedy generation through
// open_model on both backends.
#include "catch.hpp"
#include "model/llama_fixtures.hpp"
#include "model/logit_select.hpp"
#include "model/safetensors_writer.hpp"
#include "support.hpp"

#include <nlohmann/json.hpp>

#include <vkattn/model/generate.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/model/language_model.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace vkattn;
using vkattn::test::error_of;
using vkattn::test::TempDir;

namespace {

// Byte-level tokens: id 0 is the byte 0xC3 ("Ã" in GPT-2's byte alphabet) and id 1 the byte 0xA9 ("©"), the
// two halves of "é"; ids 2..4 are "a", "b", "c"; 5 is <|endoftext|>.
constexpr int kLead = 0, kTail = 1, kA = 2, kB = 3, kC = 4, kEos = 5, kV = 6;

// A LanguageModel whose greedy choice after each forward is the next id of a script.
class ScriptedModel final : public model::LanguageModel {
public:
    ScriptedModel(std::vector<int> script, int context, const TempDir* tokenizer_dir) : script_(std::move(script)) {
        info_.family = "scripted";
        info_.source = "a test";
        info_.vocab_size = kV;
        info_.context_length = context;
        special_.eos = {kEos};
        if (tokenizer_dir != nullptr) {
            tokenizer_dir->write("vocab.json", R"({"Ã": 0, "©": 1, "a": 2, "b": 3, "c": 4, "<|endoftext|>": 5})");
            tokenizer_dir->write("merges.txt", "#version: 0.2\n");
            tokenizer_.emplace(model::Tokenizer::from_dir(tokenizer_dir->path()));
        }
    }
    std::vector<float> forward(std::span<const int> tokens, bool all_logits) override {
        REQUIRE_FALSE(all_logits);
        position_ += int(tokens.size());
        std::vector<float> logits(kV, 0.0f);
        logits[size_t(script_.at(calls_++))] = 1.0f;
        return logits;
    }
    void reset() override { position_ = 0; }
    int position() const override { return position_; }
    uint64_t weight_bytes() const override { return 0; }

private:
    std::vector<int> script_;
    size_t calls_ = 0;
    int position_ = 0;
};

struct Streamed {
    std::vector<int> ids;
    std::vector<std::string> texts;
    model::TokenCallback callback() {
        return [this](int id, std::string_view text) {
            ids.push_back(id);
            texts.emplace_back(text);
        };
    }
};

const std::vector<int> kPrompt = {kA, kB};

model::GenerateOptions at_most(int tokens) {
    model::GenerateOptions o;
    o.max_tokens = tokens;
    return o;
}

}  // namespace

TEST_CASE("generate streams whole UTF-8 characters", "[cpu][generate]") {
    const TempDir dir;
    ScriptedModel m({kA, kLead, kTail, kB, kC}, 64, &dir);
    Streamed s;
    model::GenerateOptions o;
    o.max_tokens = 4;
    const model::GenerateResult r = model::generate(m, kPrompt, o, s.callback());
    CHECK(r.tokens == std::vector<int>{kA, kLead, kTail, kB});
    CHECK(s.texts == std::vector<std::string>{"a", "", "\xC3\xA9", "b"});  // nothing of "é" until it is whole
    CHECK(r.text == "a\xC3\xA9" "b");
    CHECK(r.reason == model::StopReason::max_tokens);
    CHECK(r.prompt_tokens == 2);
    CHECK(r.decode_steps == 3);  // the last sampled token is never fed back
}

TEST_CASE("generate replaces a character cut off by the end with U+FFFD", "[cpu][generate]") {
    const TempDir dir;
    ScriptedModel m({kA, kLead, kTail}, 64, &dir);
    Streamed s;
    model::GenerateOptions o;
    o.max_tokens = 2;
    const model::GenerateResult r = model::generate(m, kPrompt, o, s.callback());
    CHECK(s.ids == std::vector<int>{kA, kLead, -1});
    CHECK(s.texts == std::vector<std::string>{"a", "", "\xEF\xBF\xBD"});
    CHECK(r.text == "a\xEF\xBF\xBD");
}

TEST_CASE("generate stops at end-of-sequence, a stop string and a full context", "[cpu][generate]") {
    const TempDir dir;
    SECTION("eos: not emitted, not in the tokens") {
        ScriptedModel m({kA, kEos, kB}, 64, &dir);
        const model::GenerateResult r = model::generate(m, kPrompt);
        CHECK(r.tokens == std::vector<int>{kA});
        CHECK(r.reason == model::StopReason::eos);
    }
    SECTION("a stop string spanning tokens and a split character is never emitted") {
        ScriptedModel m({kA, kLead, kTail, kB, kC}, 64, &dir);
        Streamed s;
        model::GenerateOptions o;
        o.stop = {"\xC3\xA9" "b"};  // "éb"
        const model::GenerateResult r = model::generate(m, kPrompt, o, s.callback());
        CHECK(r.reason == model::StopReason::stop_string);
        CHECK(r.tokens == std::vector<int>{kA, kLead, kTail, kB});
        CHECK(s.texts == std::vector<std::string>{"a", "", "", ""});  // "é" is held: it may start "éb"
        CHECK(r.text == "a");
    }
    SECTION("text held for a stop string that never comes is emitted at the end") {
        ScriptedModel m({kA, kB, kA}, 64, &dir);
        Streamed s;
        model::GenerateOptions o;
        o.stop = {"bc"};
        o.max_tokens = 2;
        const model::GenerateResult r = model::generate(m, kPrompt, o, s.callback());
        CHECK(s.texts == std::vector<std::string>{"a", "", "b"});
        CHECK(r.text == "ab");
        CHECK(r.reason == model::StopReason::max_tokens);
    }
    SECTION("the context: P - prompt + 1 tokens, the last one sampled from a full cache") {
        ScriptedModel m({kA, kB, kC, kA, kB}, 4, &dir);
        const model::GenerateResult r = model::generate(m, kPrompt, at_most(10));
        CHECK(r.tokens == std::vector<int>{kA, kB, kC});
        CHECK(r.reason == model::StopReason::context_full);
        CHECK(m.position() == 4);
    }
    SECTION("max_tokens 0 runs the prompt only") {
        ScriptedModel m({kA}, 64, &dir);
        const model::GenerateResult r = model::generate(m, kPrompt, at_most(0));
        CHECK(r.tokens.empty());
        CHECK(m.position() == 2);
    }
}

TEST_CASE("generate refuses what it cannot do", "[cpu][generate]") {
    ScriptedModel m({kA, kA}, 4, nullptr);
    CHECK(error_of([&] { model::generate(m, std::vector<int>{}); }).find("the prompt is empty") != std::string::npos);
    CHECK(error_of([&] { model::generate(m, std::vector<int>(5, kA)); }).find("exceeds the model's context of 4") !=
          std::string::npos);
    model::GenerateOptions stop;
    stop.stop = {"x"};
    CHECK(error_of([&] { model::generate(m, kPrompt, stop); }).find("stop strings need the model's tokenizer") !=
          std::string::npos);
    CHECK(error_of([&] { model::generate(m, kPrompt, at_most(-1)); }).find("max_tokens must be >= 0") !=
          std::string::npos);
    CHECK(m.position() == 0);  // every refusal came before the model ran
}

TEST_CASE("greedy generate gives the same tokens on the GPU and the CPU", "[gpu][generate]") {
    model::Gpt2Config c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 64;
    c.vocab_size = 60;
    c.n_positions = 40;
    const TempDir dir;
    test::write_gpt2_checkpoint(dir.path(), model::synthetic_gpt2(c, 5, 0.3f));
    model::ModelOptions on_gpu;
    on_gpu.context = &test::gpu();
    const auto gpu = model::open_model(dir.path().string(), model::Backend::vulkan, on_gpu);
    const auto cpu = model::open_model(dir.path().string(), model::Backend::cpu);
    model::GenerateOptions o;
    o.max_tokens = 20;
    o.stop_at_eos = false;
    const std::vector<int> prompt = {7, 3, 41, 12};
    const model::GenerateResult a = model::generate(*gpu, prompt, o);
    const model::GenerateResult b = model::generate(*cpu, prompt, o);
    CHECK(a.tokens.size() == 20);
    CHECK(a.tokens == b.tokens);
}

// The tiny models do not emit their end-of-sequence id on their own, so each fixture is copied with a config.json
// whose eos_token_id is a token greedy decoding is known to produce (learned from a run without the eos stop):
// the whole chain config.json -> special_tokens().eos -> generate() then stops there, on both backends.
TEST_CASE("generate stops at the eos_token_id config.json names, on the GPU and the CPU", "[gpu][generate]") {
    const std::vector<int> prompt = {43, 34, 66, 15};
    for (const char* name : {"tiny_gpt2", "tiny_llama3_gqa"}) {
        INFO(name);
        const std::string src = test::fixture(name);
        model::GenerateOptions free = at_most(8);
        free.stop_at_eos = false;
        const auto reference = model::open_model(src, model::Backend::cpu);
        const std::vector<int> greedy = model::generate(*reference, prompt, free).tokens;
        REQUIRE(greedy.size() == 8);
        // The first token that greedy decoding produces at step k > 0 and not before: as eos, it stops generation
        // after k tokens.
        size_t k = 1;
        while (k < greedy.size() && std::find(greedy.begin(), greedy.begin() + std::ptrdiff_t(k), greedy[k]) !=
                                        greedy.begin() + std::ptrdiff_t(k)) {
            ++k;
        }
        REQUIRE(k < greedy.size());  // the fixtures' greedy runs are not one token repeated
        for (const size_t stop_at : {size_t(0), k}) {
            const int eos = greedy[stop_at];
            INFO("eos_token_id " << eos << ", the greedy token at step " << stop_at);
            const TempDir dir("eos");
            std::filesystem::copy_file(std::filesystem::path(src) / "model.safetensors", dir / "model.safetensors");
            nlohmann::json config = nlohmann::json::parse(std::ifstream(std::filesystem::path(src) / "config.json"));
            // GPT-2's config names one id; Llama 3's a list, of which any one ends generation: its ids that greedy
            // decoding never produces, then this one.
            if (config["eos_token_id"].is_array()) {
                nlohmann::json ids = nlohmann::json::array();
                for (const auto& id : config["eos_token_id"]) {
                    if (std::find(greedy.begin(), greedy.end(), id.get<int>()) == greedy.end()) ids.push_back(id);
                }
                ids.push_back(eos);
                config["eos_token_id"] = ids;
            } else {
                config["eos_token_id"] = eos;
            }
            dir.write("config.json", config.dump());
            model::ModelOptions on_gpu;
            on_gpu.context = &test::gpu();
            const auto gpu = model::open_model(dir.path().string(), model::Backend::vulkan, on_gpu);
            const auto cpu = model::open_model(dir.path().string(), model::Backend::cpu);
            for (model::LanguageModel* m : {gpu.get(), cpu.get()}) {
                INFO(m->description());
                REQUIRE(std::find(m->special_tokens().eos.begin(), m->special_tokens().eos.end(), eos) !=
                        m->special_tokens().eos.end());
                const model::GenerateResult r = model::generate(*m, prompt, at_most(8));
                CHECK(r.reason == model::StopReason::eos);
                CHECK(r.tokens == std::vector<int>(greedy.begin(), greedy.begin() + std::ptrdiff_t(stop_at)));
                CHECK(r.decode_steps == int(stop_at));  // every token before eos was fed back, eos was not
                CHECK(m->position() == int(prompt.size() + stop_at));
            }
        }
    }
}

// forward_select: on a GPU the top_k kernel picks the sampler's candidates from logits that never leave the
// device (on lavapipe the host picks them, unless VKATTN_DISCRETE_MEMORY=1 as in CTest gpu_discrete_memory);
// they must be what the host picks from the same model's logits, at the prefill and at a decode step.
TEST_CASE("forward_select selects what the host selects from the same logits, on both backends",
          "[gpu][generate][sampler]") {
    const std::vector<int> prompt = {43, 34, 66, 15, 8};
    const int next = 21;
    for (const char* name : {"tiny_gpt2", "tiny_llama3_gqa"}) {
        model::ModelOptions on_gpu;
        on_gpu.context = &test::gpu();
        const auto gpu = model::open_model(test::fixture(name), model::Backend::vulkan, on_gpu);
        const auto cpu = model::open_model(test::fixture(name), model::Backend::cpu);
        for (model::LanguageModel* m : {gpu.get(), cpu.get()}) {
            INFO(name << " " << m->description());
            const std::vector<float> first = m->forward(prompt, false);
            const std::vector<float> second = m->forward(std::span<const int>(&next, 1), false);
            m->reset();
            for (const model::LogitRequest& request :
                 {model::LogitRequest{1, {}}, model::LogitRequest{40, {2, 15, 34, 43, 66}},
                  model::LogitRequest{256, {0, 7}}}) {
                INFO("k " << request.k << ", " << request.skip.size() << " skipped");
                const model::LogitSelection a = m->forward_select(prompt, request);
                const model::LogitSelection b = m->forward_select(std::span<const int>(&next, 1), request);
                m->reset();
                for (const auto& [got, logits] : {std::pair{&a, &first}, std::pair{&b, &second}}) {
                    const model::LogitSelection want = model::select_on_host(*logits, request);
                    CHECK(got->vocab == want.vocab);
                    CHECK(got->ids == want.ids);
                    CHECK(got->logits == want.logits);
                    CHECK(got->skipped == want.skipped);
                    CHECK(got->first_nan == -1);
                }
            }
            // Refusals leave the cache as it was.
            CHECK(error_of([&] { m->forward_select(prompt, {0, {}}); }).find("k must be in [1, 256]") !=
                  std::string::npos);
            CHECK(error_of([&] { m->forward_select(prompt, {4, {9, 3}}); }).find("entry 1 is 3") != std::string::npos);
            CHECK(error_of([&] { m->forward_select({}, {4, {}}); }).find("needs at least one token") !=
                  std::string::npos);
            CHECK(m->position() == 0);
        }
    }
}

// generate() asks the device for the candidates when it can (here top-k with a repeat penalty): the tokens
// must be those the sampler draws from the whole rows of logits of the same GPU model.
TEST_CASE("sampled generate on the GPU draws what the whole logits give", "[gpu][generate][sampler]") {
    const std::vector<int> prompt = {43, 34, 66, 15};
    model::ModelOptions on_gpu;
    on_gpu.context = &test::gpu();
    const auto gpu = model::open_model(test::fixture("tiny_llama3_gqa"), model::Backend::vulkan, on_gpu);
    model::GenerateOptions o = at_most(12);
    o.stop_at_eos = false;
    o.sampling.temperature = 0.9f;
    o.sampling.top_k = 20;
    o.sampling.top_p = 0.95f;
    o.sampling.repeat_penalty = 1.3f;
    o.sampling.seed = 3;
    const model::GenerateResult r = model::generate(*gpu, prompt, o);
    REQUIRE(r.tokens.size() == 12);

    gpu->reset();
    model::Sampler sampler(o.sampling);
    sampler.accept(prompt);
    std::vector<int> tokens;
    std::vector<float> logits = gpu->forward(prompt, false);
    while (tokens.size() < 12) {
        tokens.push_back(sampler.sample(logits));
        if (tokens.size() < 12) logits = gpu->forward(std::span<const int>(&tokens.back(), 1), false);
    }
    CHECK(r.tokens == tokens);
}
