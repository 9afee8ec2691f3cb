// open_model and the LanguageModel interface: family chosen from config.json, both backends, and the
// refusals that must come before any weight is read.
#include "catch.hpp"
#include "model/llama_fixtures.hpp"
#include "model/safetensors_writer.hpp"
#include "support.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/npy.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#ifndef _WIN32
#include <sys/stat.h>
#endif


using namespace vkattn;
using vkattn::test::error_of;
using vkattn::test::fixture;
using vkattn::test::golden_logits;
using vkattn::test::golden_tokens;
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
    dir.write("config.json", R"({"architectures": ["PhiForCausalLM"], "model_type": "phi"})");
    const std::string e = error_of([&] { model::inspect_model(spec); });
    CHECK(has(e, "architectures[0] \"PhiForCausalLM\", model_type \"phi\" is not a model vkattn runs"));
    CHECK(has(e, "supported: GPT2LMHeadModel, GPT2Model, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"));

    // A Llama-family config is taken by the Llama family, which then asks for its own fields.
    dir.write("config.json", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})");
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "hidden_size"));

    // model_type alone is enough (older GPT-2 configs have no architectures).
    nlohmann::json c = test::gpt2_config_json(tiny_weights().config);
    c.erase("architectures");
    dir.write("config.json", c.dump());
    CHECK(model::inspect_model(spec).family == "gpt2");

    dir.write("config.json", "[1, 2]");
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "config.json: is a JSON array, expected an object"));
    CHECK(model::model_families() == std::vector<std::string>{"gpt2", "llama"});
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
    CHECK(has(e, " bytes) of device memory ("));  // binary units next to the exact count
    CHECK(has(e, "iB of KV cache"));
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
    CHECK(has(error_of([&] { model::open_model(spec, model::Backend::cpu); }), "weight_map['wte.weight'] is an array"));

#ifndef _WIN32
    std::filesystem::remove(dir / "model.safetensors.index.json");
    REQUIRE(mkfifo((dir / "model.safetensors.index.json").c_str(), 0600) == 0);
    CHECK(has(error_of([&] { model::open_model(spec, model::Backend::cpu); }), "index.json: is a FIFO"));
    std::filesystem::remove(dir / "config.json");
    REQUIRE(mkfifo((dir / "config.json").c_str(), 0600) == 0);
    CHECK(has(error_of([&] { model::inspect_model(spec); }), "config.json: not a regular file"));
#endif
}


TEST_CASE("open_model runs every Llama-family fixture on both backends, matching PyTorch's golden logits",
          "[gpu][model][language_model][llama]") {
    model::ModelOptions on_gpu;
    on_gpu.context = &test::gpu();
    for (const auto& [name, variant] : test::k_llama_fixtures) {
        INFO(name);
        const std::string dir = fixture(name);
        const model::ModelInfo info = model::inspect_model(dir);
        CHECK(info.family == "llama");
        CHECK(info.variant == variant);
        CHECK(info.tokenizer.empty());

        const auto gpu = model::open_model(dir, model::Backend::vulkan, on_gpu);
        const auto cpu = model::open_model(dir, model::Backend::cpu);
        const std::string family = std::string(variant) == "llama" ? "llama" : "llama (" + std::string(variant) + ")";
        CHECK(has(gpu->description(), family + " on vulkan"));
        CHECK(has(cpu->description(), family + " on the cpu reference, f32 weights"));
        CHECK(gpu->special_tokens().eos == cpu->special_tokens().eos);

        // The bounds of the LlamaGpu/LlamaCpu tests (test_llama_gpu.cpp, test_llama_cpu.cpp): float32 against
        // PyTorch's float64, measured at most 1.3e-5 on logits up to 27.
        const std::vector<int> tokens = golden_tokens(dir);
        const std::vector<float> golden = golden_logits(dir);
        const std::vector<float> on_vulkan = gpu->forward(tokens);
        const std::vector<float> on_cpu = cpu->forward(tokens);
        const auto g = test::compare(on_vulkan, golden, 8e-5, 6e-6);
        INFO("vulkan vs golden: " << g.describe());
        CHECK(g.ok);
        const auto c = test::compare(on_cpu, golden, 3e-5, 3e-5);
        INFO("cpu vs golden: " << c.describe());
        CHECK(c.ok);
    }
}

TEST_CASE("16-bit weights: the CPU reference computes with the weights as the GPU stores them",
          "[gpu][model][language_model][llama]") {
    const DType storage = GENERATE(DType::f16, DType::bf16);
    model::ModelOptions gpu_options, cpu_options;
    gpu_options.context = &test::gpu();
    gpu_options.weights = cpu_options.weights = storage;
    for (const char* name : {"tiny_qwen2_window", "tiny_llama_mqa_bf16"}) {
        INFO(name << ", " << dtype_name(storage) << " weights");
        const std::string dir = fixture(name);
        const auto gpu = model::open_model(dir, model::Backend::vulkan, gpu_options);
        const auto cpu = model::open_model(dir, model::Backend::cpu, cpu_options);
        CHECK(has(cpu->description(), std::string(dtype_name(storage)) + "-rounded weights in f32 arithmetic"));
        const std::vector<int> tokens = golden_tokens(dir);
        const std::vector<float> a = gpu->forward(tokens), b = cpu->forward(tokens);
        // The same numbers on both sides: only float32 summation order differs (5e-5 as LlamaGpu's test).
        const auto c = test::compare(a, b, 5e-5, 5e-6);
        INFO(c.describe());
        CHECK(c.ok);
        if (std::string(name) == "tiny_llama_mqa_bf16") {
            // Its weights are bf16 values, exact in either storage: the golden logits hold to f32's bound.
            CHECK(test::compare(a, golden_logits(dir), 8e-5, 6e-6).ok);
        } else {
            // Rounding changes Qwen2's weights, so the rounded CPU model must differ from the f32 one.
            const auto f32 = model::open_model(dir, model::Backend::cpu);
            CHECK_FALSE(test::compare(f32->forward(tokens), b, 1e-6, 0).ok);
        }
    }
    // GPT-2 stores f32 or f16 only, and says so on both backends.
    model::ModelOptions bf16;
    bf16.weights = DType::bf16;
    CHECK(has(error_of([&] { model::open_model("synthetic:1,2,64", model::Backend::cpu, bf16); }),
              "GPT-2 weights are stored on the GPU as f32 or f16, not bf16"));
}

TEST_CASE("synthetic Llama-family presets have the published models' shapes", "[cpu][model][language_model][llama]") {
    // Parameter counts as Hugging Face reports them for the published checkpoints (tied heads counted once).
    const model::ModelInfo smol = model::inspect_model("synthetic:smollm2-135m");
    CHECK(smol.family == "llama");
    CHECK(smol.synthetic);
    CHECK(smol.parameters == 134515008);
    CHECK((smol.n_layer == 30 && smol.n_head == 9 && smol.n_kv_head == 3 && smol.head_dim == 64));
    const model::ModelInfo llama = model::inspect_model("synthetic:llama-3.2-1b");
    CHECK(llama.parameters == 1235814400);
    CHECK(llama.context_length == 131072);
    CHECK(llama.cache_bytes_per_token == 16u * 2 * 8 * 64 * 4);  // layers · (K, V) · Hkv · D · f32
    const model::ModelInfo qwen = model::inspect_model("synthetic:qwen2.5-0.5b");
    CHECK(qwen.variant == "qwen2");
    CHECK(qwen.parameters == 494032768);
    CHECK(model::inspect_model("synthetic:mistral-7b").window == 4096);
    // bf16 and f16 halve the weights; the GPU keeps norm gains and biases in f32.
    REQUIRE(llama.weight_bytes.size() == 3);
    CHECK(llama.weight_bytes[0].dtype == DType::f32);
    CHECK(llama.weight_bytes[0].bytes == 4 * llama.parameters);
    CHECK(llama.weight_bytes[2].dtype == DType::bf16);
    CHECK(llama.weight_bytes[2].bytes == 2 * llama.parameters + 2 * 2048 * (2 * 16 + 1));  // the 33 norm gains in f32

    const std::string e = error_of([] { model::inspect_model("synthetic:llama-9b"); });
    CHECK(has(e, "is not a synthetic model vkattn knows"));
    CHECK(has(e, "smollm2-135m"));
    CHECK(has(e, "synthetic:LAYERS,HEADS,EMBD"));
}

TEST_CASE("a Llama-family directory with tokenizer.json: its tokenizer and special tokens",
          "[cpu][model][language_model][llama]") {
    const TempDir dir;
    for (const char* f : {"config.json", "model.safetensors"}) {
        std::filesystem::copy_file(fixture("tiny_llama3_gqa") + "/" + f, dir / f);
    }
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
        std::filesystem::copy_file(fixture("tokenizer_bytelevel") + "/" + f, dir / f);
    }
    CHECK(model::inspect_model(dir.path().string()).tokenizer == "tokenizer.json");
    const auto m = model::open_model(dir.path().string(), model::Backend::cpu);
    REQUIRE(m->tokenizer() != nullptr);
    // The post-processor adds <|bos|> (20); "abc" and " ab" are single tokens of this vocabulary.
    CHECK(m->tokenizer()->encode("abc ab") == std::vector<int>{20, 8, 10});
    // config.json's ids come first, then the tokenizer's eos.
    CHECK(m->special_tokens().bos == 76);
    CHECK(m->special_tokens().eos == std::vector<int>{77, 78, 79, 21});
    CHECK(m->forward(m->tokenizer()->encode("abc ab")).size() == 3u * 80u);
}
