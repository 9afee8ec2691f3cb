// open_model and the LanguageModel interface: family chosen from config.json, both backends, and the
// refusals that must come before any weight is read.
#include "catch.hpp"
#include "model/safetensors_writer.hpp"
#include "support.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/model/language_model.hpp>

#include <fstream>
#include <string>

#ifndef _WIN32
#include <sys/stat.h>
#endif

using namespace vkattn;
using vkattn::test::error_of;
using vkattn::test::TempDir;

namespace {

model::Gpt2Weights tiny_weights() {
    model::Gpt2Config c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 64;
    c.vocab_size = 50;
    c.n_positions = 24;
    return model::synthetic_gpt2(c, 11, 0.1f);  // a spread of 0.1 so that attention is far from uniform
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("open_model reads a GPT-2 directory and runs it on both backends", "[gpu][model][language_model]") {
    const TempDir dir;
    const model::Gpt2Weights w = tiny_weights();
    test::write_gpt2_checkpoint(dir.path(), w);

    const model::ModelInfo info = model::inspect_model(dir.path().string());
    CHECK(info.family == "gpt2");
    CHECK(info.n_layer == 2);
    CHECK(info.hidden == 64);
    CHECK(info.vocab_size == 50);
    CHECK(info.context_length == 24);
    CHECK_FALSE(info.synthetic);

    model::ModelOptions on_gpu;
    on_gpu.context = &test::gpu();
    const auto gpu = model::open_model(dir.path().string(), model::Backend::vulkan, on_gpu);
    const auto cpu = model::open_model(dir.path().string(), model::Backend::cpu);
    CHECK(gpu->context() == &test::gpu());
    CHECK(cpu->context() == nullptr);
    CHECK(gpu->tokenizer() == nullptr);  // the directory has no tokenizer files
    CHECK(gpu->special_tokens().eos == std::vector<int>{49});  // no tokenizer, no eos_token_id: the last id
    CHECK(has(gpu->description(), "gpt2 on vulkan"));
    CHECK(has(cpu->description(), "gpt2 on the cpu reference"));

    const std::vector<int> tokens = {3, 14, 15, 9, 26, 5};
    const std::vector<float> a = gpu->forward(tokens);
    const std::vector<float> b = cpu->forward(tokens);
    REQUIRE(a.size() == tokens.size() * 50);
    // fp32 on the GPU against the reference (double attention) through two layers.
    const auto cmp = test::compare(a, b, 1e-4, 1e-4);
    INFO(cmp.describe());
    CHECK(cmp.ok);
    CHECK(gpu->position() == 6);

    // The last row alone, and the cache continuing from there.
    gpu->reset();
    cpu->reset();
    const std::vector<float> last = gpu->forward(tokens, false);
    CHECK(last.size() == 50);
    CHECK(cpu->forward(tokens, false).size() == 50);
    CHECK(test::compare(last, std::vector<float>(a.end() - 50, a.end()), 1e-5, 1e-5).ok);
}

TEST_CASE("config.json's bos and eos ids become the special tokens", "[cpu][model][language_model]") {
    const TempDir dir;
    test::write_gpt2_checkpoint(dir.path(), tiny_weights());
    nlohmann::json config = test::gpt2_config_json(tiny_weights().config);
    config["bos_token_id"] = 7;
    config["eos_token_id"] = {40, 41};
    std::ofstream(dir / "config.json") << config.dump();
    const auto m = model::open_model(dir.path().string(), model::Backend::cpu);
    CHECK(m->special_tokens().bos == 7);
    CHECK(m->special_tokens().eos == std::vector<int>{40, 41});

    config["eos_token_id"] = 50;  // outside the vocabulary
    std::ofstream(dir / "config.json") << config.dump();
    CHECK(has(error_of([&] { model::inspect_model(dir.path().string()); }), "'eos_token_id' is 50, expected a token id in [0, 50)"));
}

TEST_CASE("open_model picks the family by architectures, then model_type, and names what it runs",
          "[cpu][model][language_model]") {
    const TempDir dir;
    const auto spec = dir.path().string();
    dir.write("config.json", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})");
    const std::string e = error_of([&] { model::inspect_model(spec); });
    CHECK(has(e, "architectures[0] \"LlamaForCausalLM\", model_type \"llama\" is not a model vkattn runs"));
    CHECK(has(e, "supported: GPT2LMHeadModel"));

    // model_type alone is enough (older GPT-2 configs have no architectures).
    nlohmann::json c = test::gpt2_config_json(tiny_weights().config);
    c.erase("architectures");
    dir.write("config.json", c.dump());
    CHECK(model::inspect_model(spec).family == "gpt2");

    dir.write("config.json", "[1, 2]");
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "config.json: is a JSON array, expected an object"));
    CHECK(model::model_families() == std::vector<std::string>{"gpt2"});
}

TEST_CASE("synthetic specs: the default, a shape, and the refusals", "[cpu][model][language_model]") {
    const model::ModelInfo small = model::inspect_model("synthetic");
    CHECK(small.family == "gpt2");
    CHECK(small.synthetic);
    CHECK(small.n_layer == 12);
    CHECK(small.parameters == 124439808);  // GPT-2 small as Hugging Face counts it (wte tied)
    const model::ModelInfo shaped = model::inspect_model("synthetic:3,4,128");
    CHECK((shaped.n_layer == 3 && shaped.n_head == 4 && shaped.hidden == 128));

    CHECK(has(error_of([] { model::inspect_model("synthetic:"); }), "'synthetic:' names no model"));
    CHECK(has(error_of([] { model::inspect_model("synthetic:1,2"); }), "three positive integers"));
    CHECK(has(error_of([] { model::inspect_model("synthetic:0,2,64"); }), "three positive integers"));
    CHECK(has(error_of([] { model::inspect_model("synthetic:tinyllama"); }), "is not a synthetic model vkattn knows"));
    CHECK(has(error_of([] { model::parse_backend("metal"); }), "expected vulkan or cpu"));
}

TEST_CASE("a model too large for the device is refused before a weight is made", "[gpu][model][language_model]") {
    model::ModelOptions on_gpu;
    on_gpu.context = &test::gpu();
    // 1000 layers of width 16384 would be terabytes of weights: making them first would not end in a vkattn::Error.
    const std::string e = error_of([&] { model::open_model("synthetic:1000,128,16384", model::Backend::vulkan, on_gpu); });
    CHECK(has(e, "this GPT-2 (1000 layers, 16384 wide) needs"));
    CHECK(has(e, "MiB of KV cache"));
}

TEST_CASE("hostile config and index files: deep nesting and named pipes", "[cpu][model][language_model]") {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const TempDir dir;
    const auto spec = dir.path().string();
    dir.write("config.json", R"({"model_type": "gpt2", "n_embd": )" + deep + R"(, "n_head": 2, "n_layer": 1, "n_positions": 8, "vocab_size": 10})");
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "'n_embd' is a JSON array, expected a positive integer"));

    dir.write("config.json", R"({"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1, "n_positions": 8, "vocab_size": 10, "activation_function": ")" +
                                 std::string(5000, 'x') + "\"}");
    const std::string long_value = error_of([&] { model::inspect_model(spec); });
    CHECK(has(long_value, "activation_function \"xxxxxxxx"));
    CHECK(long_value.size() < 300);  // a prefix, not 5000 characters

    dir.write("config.json", R"({"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1, "n_positions": 8, "vocab_size": 10})");
    dir.write("model.safetensors.index.json", R"({"weight_map": {"wte.weight": )" + deep + "}}");
    CHECK(has(error_of([&] { model::open_model(spec, model::Backend::cpu); }), "weight_map['wte.weight'] is a JSON array"));

#ifndef _WIN32
    std::filesystem::remove(dir / "model.safetensors.index.json");
    REQUIRE(mkfifo((dir / "model.safetensors.index.json").c_str(), 0600) == 0);
    CHECK(has(error_of([&] { model::open_model(spec, model::Backend::cpu); }), "index.json: not a regular file"));
    std::filesystem::remove(dir / "config.json");
    REQUIRE(mkfifo((dir / "config.json").c_str(), 0600) == 0);
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "config.json: not a regular file"));
#endif
}
