// Llama-family checkpoints: the tensor list, loading every Hugging Face layout (F32, F16, BF16, shards),
// synthetic weights, and one line naming the tensor for each missing or malformed one.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/model/llama_weights.hpp>
#include "model/safetensors_writer.hpp"

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#ifndef VKATTN_FIXTURES_DIR
#define VKATTN_FIXTURES_DIR "tests/fixtures"
#endif

using namespace vkattn;
using namespace vkattn::model;
using namespace vkattn::test;
using nlohmann::json;

namespace {

// Uneven sizes: C 20, GQA with 4 query heads on 2 kv heads, head_dim 6 given explicitly (C / H would be 5).
LlamaConfig tiny_config(LlamaFamily family = LlamaFamily::llama) {
    LlamaConfig c;
    c.family = family;
    c.hidden_size = 20;
    c.intermediate_size = 28;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 6;
    c.vocab_size = 33;
    c.max_position_embeddings = 40;
    c.rms_norm_eps = 1e-5;
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    if (family == LlamaFamily::qwen2) c.qkv_bias = true;
    return c;
}

// config.json as transformers writes it for c (what parse_llama_config must read back to c).
json config_json(const LlamaConfig& c) {
    json j = {{"architectures", {std::string(c.family == LlamaFamily::llama     ? "LlamaForCausalLM"
                                             : c.family == LlamaFamily::mistral ? "MistralForCausalLM"
                                                                                : "Qwen2ForCausalLM")}},
              {"model_type", llama_family_name(c.family)},
              {"hidden_size", c.hidden_size},
              {"intermediate_size", c.intermediate_size},
              {"num_hidden_layers", c.num_hidden_layers},
              {"num_attention_heads", c.num_attention_heads},
              {"num_key_value_heads", c.num_key_value_heads},
              {"head_dim", c.head_dim},
              {"vocab_size", c.vocab_size},
              {"max_position_embeddings", c.max_position_embeddings},
              {"rms_norm_eps", c.rms_norm_eps},
              {"rope_theta", c.rope_theta},
              {"rope_scaling", nullptr},
              {"tie_word_embeddings", c.tie_word_embeddings},
              {"hidden_act", "silu"},
              {"bos_token_id", c.bos_token_id ? json(*c.bos_token_id) : json(nullptr)},
              {"eos_token_id", c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids)}};
    if (c.family == LlamaFamily::llama) j["attention_bias"] = c.qkv_bias;
    if (c.family == LlamaFamily::mistral) j["sliding_window"] = nullptr;
    return j;
}

struct WriteOptions {
    StDtype dtype = StDtype::f32;
    int shards = 1;
};

// dir/config.json and the weights as save_pretrained lays them out; `tensors` may be edited first.
void write_checkpoint(const std::filesystem::path& dir, const LlamaConfig& c, const std::vector<StTensor>& tensors,
                      const WriteOptions& options = {}) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << config_json(c).dump(2);
    if (options.shards <= 1) {
        write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
        return;
    }
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    const size_t n = size_t(options.shards);
    for (size_t s = 0; s < n; ++s) {
        const size_t begin = tensors.size() * s / n, end = tensors.size() * (s + 1) / n;
        const std::vector<StTensor> part(tensors.begin() + std::ptrdiff_t(begin), tensors.begin() + std::ptrdiff_t(end));
        const std::string file = shard_name(int(s), int(n));
        write_safetensors(dir / file, part, {{"format", "pt"}});
        for (const StTensor& t : part) index["weight_map"][t.name] = file;
    }
    std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

std::vector<StTensor> tensors_of(const LlamaWeights& w, StDtype dtype = StDtype::f32) {
    std::vector<StTensor> out;
    for (const LlamaTensor& t : llama_tensors(w.config)) out.push_back({t.name, dtype, t.shape, llama_tensor_values(w, t.name)});
    return out;
}

void write_checkpoint(const std::filesystem::path& dir, const LlamaWeights& w, const WriteOptions& options = {}) {
    write_checkpoint(dir, w.config, tensors_of(w, options.dtype), options);
}

StTensor* find(std::vector<StTensor>& tensors, const std::string& name) {
    for (StTensor& t : tensors) {
        if (t.name == name) return &t;
    }
    FAIL("no tensor " << name);
    return nullptr;
}

void remove_tensor(std::vector<StTensor>& tensors, const std::string& name) {
    std::erase_if(tensors, [&](const StTensor& t) { return t.name == name; });
}

// Every listed tensor of got equals want's after rounding to the file's dtype (the loader widens exactly).
void check_same(const LlamaWeights& got, const LlamaWeights& want, StDtype dtype) {
    for (const LlamaTensor& t : llama_tensors(want.config)) {
        INFO(t.name);
        const auto& g = llama_tensor_values(got, t.name);
        const auto& v = llama_tensor_values(want, t.name);
        REQUIRE(g.size() == v.size());
        size_t bad = 0;
        for (size_t i = 0; i < g.size(); ++i) bad += g[i] != st_round(dtype, v[i]);
        CHECK(bad == 0);
    }
}

std::string load_error(const std::filesystem::path& dir) {
    return error_of([&] { load_llama_weights(dir); });
}

void check_one_line(const std::string& message) {
    INFO("message: " << message);
    CHECK_FALSE(message.empty());
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.size() < 400);
}

}  // namespace

TEST_CASE("Llama tensors: the list a config implies, in state-dict order", "[cpu]") {
    LlamaConfig c = tiny_config();
    auto list = llama_tensors(c);
    REQUIRE(list.size() == 1 + 2 * 9 + 2);
    CHECK(list.front().name == "model.embed_tokens.weight");
    CHECK(list.front().shape == std::vector<int64_t>{33, 20});
    CHECK(list[2].name == "model.layers.0.self_attn.q_proj.weight");
    CHECK(list[2].shape == std::vector<int64_t>{24, 20});  // H·D = 4 · 6, not hidden_size
    CHECK(list[3].shape == std::vector<int64_t>{12, 20});  // Hkv·D
    CHECK(list[5].name == "model.layers.0.self_attn.o_proj.weight");
    CHECK(list[5].shape == std::vector<int64_t>{20, 24});
    CHECK(list[8].name == "model.layers.0.mlp.down_proj.weight");
    CHECK(list[8].shape == std::vector<int64_t>{20, 28});
    CHECK(list.back().name == "lm_head.weight");

    c.tie_word_embeddings = true;
    CHECK(llama_tensors(c).back().name == "model.norm.weight");
    c.qkv_bias = true;
    CHECK(llama_tensors(c).size() == 1 + 2 * 12 + 1);
    c.o_bias = true;
    CHECK(llama_tensors(c).size() == 1 + 2 * 13 + 1);

    LlamaWeights w = synthetic_llama(tiny_config(), 1);
    CHECK(&llama_tensor_values(w, "model.layers.1.mlp.up_proj.weight") == &w.layers[1].up_proj);
    VKATTN_REQUIRE_CONTAINS(error_of([&] { llama_tensor_values(w, "model.layers.2.mlp.up_proj.weight"); }),
                            "'model.layers.2.mlp.up_proj.weight' is not a tensor of this llama model with 2 layers");
    VKATTN_REQUIRE_CONTAINS(error_of([&] { llama_tensor_values(w, "model.layers.0.mlp.fc.weight"); }), "is not a tensor");
}

TEST_CASE("synthetic_llama is seeded, shaped by the config, and consistent", "[cpu]") {
    const LlamaConfig c = tiny_config(LlamaFamily::qwen2);
    const LlamaWeights a = synthetic_llama(c, 7, 0.1f);
    const LlamaWeights b = synthetic_llama(c, 7, 0.1f);
    const LlamaWeights other = synthetic_llama(c, 8, 0.1f);
    CHECK_NOTHROW(check_llama_weights(a));
    CHECK(a.embed_tokens == b.embed_tokens);
    CHECK(a.layers[1].q_bias == b.layers[1].q_bias);
    CHECK(a.embed_tokens != other.embed_tokens);
    CHECK(a.layers[0].gate_proj != a.layers[0].up_proj);  // each tensor its own stream
    CHECK(a.layers[0].o_bias.empty());
    double sum = 0, sum_sq = 0;
    for (float v : a.embed_tokens) sum += v, sum_sq += double(v) * v;
    const double n = double(a.embed_tokens.size());
    CHECK(std::abs(sum / n) < 0.02);
    CHECK(std::abs(std::sqrt(sum_sq / n) - 0.1) < 0.02);
    for (float g : a.norm) CHECK(std::abs(g - 1.0f) < 0.18f);  // 1 ± √3 σ
}

TEST_CASE("load_llama_weights reads the golden fixtures", "[cpu]") {
    const std::string dir = VKATTN_FIXTURES_DIR;
    for (const char* name : {"tiny_llama3_gqa", "tiny_llama_tied_bias", "tiny_llama_mqa_bf16", "tiny_llama_head_dim_sharded",
                             "tiny_mistral_window", "tiny_qwen2_window"}) {
        INFO(name);
        const LlamaWeights w = load_llama_weights(dir + "/" + name);
        CHECK_NOTHROW(check_llama_weights(w));
        CHECK(w.lm_head.empty() == w.config.tie_word_embeddings);
    }
    // BF16 widens exactly: every value is a float whose low 16 bits are zero.
    const LlamaWeights bf = load_llama_weights(dir + "/tiny_llama_mqa_bf16");
    size_t wide = 0;
    for (float v : bf.layers[1].q_proj) wide += (std::bit_cast<uint32_t>(v) & 0xffffu) != 0;
    CHECK(wide == 0);
    CHECK(bf.layers[1].k_proj.size() == 8u * 32u);  // MQA: one kv head of 8
}

TEST_CASE("load_llama_weights reads every Hugging Face layout", "[cpu]") {
    const TempDir tmp("llama_loader");
    for (const LlamaFamily family : {LlamaFamily::llama, LlamaFamily::mistral, LlamaFamily::qwen2}) {
        for (const StDtype dtype : {StDtype::f32, StDtype::f16, StDtype::bf16}) {
            for (const int shards : {1, 3}) {
                LlamaConfig c = tiny_config(family);
                c.tie_word_embeddings = shards == 3;
                const LlamaWeights w = synthetic_llama(c, 11, 0.3f);
                const std::string name = std::string(llama_family_name(family)) + st_dtype_name(dtype) + std::to_string(shards);
                INFO(name);
                write_checkpoint(tmp / name, w, {dtype, shards});
                const LlamaWeights got = load_llama_weights(tmp / name);
                CHECK(got.config.family == family);
                CHECK(got.config.head_dim == 6);
                check_same(got, w, dtype);
            }
        }
    }
}

TEST_CASE("load_llama_weights names the missing or malformed tensor", "[cpu]") {
    const TempDir tmp("llama_loader_errors");
    const LlamaConfig c = tiny_config();
    const LlamaWeights w = synthetic_llama(c, 3, 0.1f);
    const auto dir = tmp / "m";
    std::vector<StTensor> tensors = tensors_of(w);

    const auto expect = [&](const std::vector<StTensor>& ts, const std::string& part, const LlamaConfig& cfg) {
        std::filesystem::remove_all(dir);
        write_checkpoint(dir, cfg, ts);
        const std::string e = load_error(dir);
        check_one_line(e);
        VKATTN_REQUIRE_CONTAINS(e, part);
    };

    SECTION("a missing tensor, with its shape") {
        remove_tensor(tensors, "model.layers.1.mlp.up_proj.weight");
        expect(tensors, "missing tensor 'model.layers.1.mlp.up_proj.weight' [28, 20]", c);
    }
    SECTION("an untied model without lm_head") {
        remove_tensor(tensors, "lm_head.weight");
        expect(tensors, "missing tensor 'lm_head.weight' [33, 20] (config.json has tie_word_embeddings false)", c);
    }
    SECTION("a tensor of the wrong shape: q_proj [C, C] where head_dim makes it [H·D, C]") {
        StTensor* q = find(tensors, "model.layers.0.self_attn.q_proj.weight");
        q->shape = {20, 20};
        q->values.resize(400);
        expect(tensors, "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [20, 20], expected [24, 20] from config.json", c);
    }
    SECTION("a transposed tensor") {
        find(tensors, "model.layers.1.mlp.down_proj.weight")->shape = {28, 20};
        expect(tensors, "tensor 'model.layers.1.mlp.down_proj.weight' has shape [28, 20], expected [20, 28]", c);
    }
    SECTION("k_proj sized for MHA where the config says GQA") {
        StTensor* k = find(tensors, "model.layers.0.self_attn.k_proj.weight");
        k->shape = {24, 20};
        k->values.resize(480);
        expect(tensors, "'model.layers.0.self_attn.k_proj.weight' has shape [24, 20], expected [12, 20]", c);
    }
    SECTION("more layers in the weights than in the config") {
        LlamaConfig one = c;
        one.num_hidden_layers = 1;
        expect(tensors, "config.json has num_hidden_layers 1 but the weights hold 2 layers (model.layers.0 .. model.layers.1)", one);
    }
    SECTION("fewer layers in the weights than in the config") {
        LlamaConfig three = c;
        three.num_hidden_layers = 3;
        expect(tensors, "config.json has num_hidden_layers 3 but the weights hold 2 layers", three);
    }
    SECTION("a bias the config does not have") {
        tensors.push_back({"model.layers.1.self_attn.q_proj.bias", StDtype::f32, {24}, std::vector<float>(24, 0.5f)});
        expect(tensors, "tensor 'model.layers.1.self_attn.q_proj.bias' is in the checkpoint, but config.json has attention_bias false", c);
    }
    SECTION("an o_proj bias on Qwen2") {
        const LlamaConfig q = tiny_config(LlamaFamily::qwen2);
        std::vector<StTensor> ts = tensors_of(synthetic_llama(q, 3));
        ts.push_back({"model.layers.0.self_attn.o_proj.bias", StDtype::f32, {20}, std::vector<float>(20, 0.5f)});
        expect(ts, "'model.layers.0.self_attn.o_proj.bias' is in the checkpoint, but a qwen2 model has no such bias", q);
    }
    SECTION("an MLP bias") {
        tensors.push_back({"model.layers.0.mlp.up_proj.bias", StDtype::f32, {28}, std::vector<float>(28, 0.5f)});
        expect(tensors, "'model.layers.0.mlp.up_proj.bias' is in the checkpoint, but the MLP has no biases", c);
    }
    SECTION("an integer tensor") {
        std::filesystem::remove_all(dir);
        write_checkpoint(dir, w);
        // Rewrite one tensor's dtype in the header: I32 has the same item size as F32.
        std::ifstream in(dir / "model.safetensors", std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        in.close();
        const std::string key = "\"model.norm.weight\":{\"data_offsets\":";
        const size_t at = bytes.find(key);
        REQUIRE(at != std::string::npos);
        const size_t dt = bytes.find("\"F32\"", at);
        bytes.replace(dt, 5, "\"I32\"");
        write_bytes(dir / "model.safetensors", bytes);
        const std::string e = load_error(dir);
        check_one_line(e);
        VKATTN_REQUIRE_CONTAINS(e, "tensor 'model.norm.weight' has dtype I32; only F32, F16 and BF16 convert to float");
    }
}

TEST_CASE("load_llama_weights: ties, extra tensors and files", "[cpu]") {
    const TempDir tmp("llama_loader_files");
    LlamaConfig c = tiny_config();
    c.tie_word_embeddings = true;
    const LlamaWeights w = synthetic_llama(c, 4, 0.1f);

    SECTION("a tied checkpoint that stores lm_head anyway: transformers ties it, and so do we") {
        std::vector<StTensor> ts = tensors_of(w);
        ts.push_back({"lm_head.weight", StDtype::f32, {33, 20}, std::vector<float>(33 * 20, 9.0f)});
        // Buffers that old checkpoints carry are not weights.
        ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", StDtype::f32, {3}, {1.0f, 0.1f, 0.01f}});
        write_checkpoint(tmp / "tied", c, ts);
        const LlamaWeights got = load_llama_weights(tmp / "tied");
        CHECK(got.lm_head.empty());
        CHECK(&got.lm_head_weights() == &got.embed_tokens);
        check_same(got, w, StDtype::f32);
    }
    SECTION("files") {
        VKATTN_REQUIRE_CONTAINS(load_error(tmp / "nothing"), "is not a directory, expected a Hugging Face model directory");
        std::filesystem::create_directories(tmp / "empty");
        VKATTN_REQUIRE_CONTAINS(load_error(tmp / "empty"), "config.json: no such file");
        write_checkpoint(tmp / "noweights", w);
        std::filesystem::remove(tmp / "noweights" / "model.safetensors");
        std::ofstream(tmp / "noweights" / "pytorch_model.bin") << "x";
        VKATTN_REQUIRE_CONTAINS(load_error(tmp / "noweights"),
                                "has neither model.safetensors nor model.safetensors.index.json (pytorch_model.bin is not read");
        write_checkpoint(tmp / "dirweights", w);
        std::filesystem::remove(tmp / "dirweights" / "model.safetensors");
        std::filesystem::create_directories(tmp / "dirweights" / "model.safetensors");
        VKATTN_REQUIRE_CONTAINS(load_error(tmp / "dirweights"), "model.safetensors: is a directory, expected a .safetensors file");
    }
    SECTION("shards") {
        const auto dir = tmp / "sharded";
        write_checkpoint(dir, w, {StDtype::f32, 2});
        CHECK_NOTHROW(load_llama_weights(dir));
        const auto index_path = dir / "model.safetensors.index.json";
        json index;
        std::ifstream(index_path) >> index;
        const auto with_index = [&](const json& j) {
            std::ofstream(index_path) << j.dump();
            const std::string e = load_error(dir);
            check_one_line(e);
            return e;
        };
        json outside = index;
        outside["weight_map"]["model.norm.weight"] = "../model-00002-of-00002.safetensors";
        VKATTN_REQUIRE_CONTAINS(with_index(outside), "weight_map['model.norm.weight'] is '../model-00002-of-00002.safetensors', "
                                                     "expected a file name in the same directory");
        json missing = index;
        missing["weight_map"]["model.norm.weight"] = "model-00003-of-00003.safetensors";
        VKATTN_REQUIRE_CONTAINS(with_index(missing), "is missing shard 'model-00003-of-00003.safetensors'");
        json wrong = index;
        wrong["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
        VKATTN_REQUIRE_CONTAINS(with_index(wrong), "has no tensor 'model.norm.weight', which model.safetensors.index.json places there");
        json left_out = index;
        left_out["weight_map"].erase("model.layers.0.mlp.gate_proj.weight");
        VKATTN_REQUIRE_CONTAINS(with_index(left_out), "missing tensor 'model.layers.0.mlp.gate_proj.weight' [28, 20]");
        VKATTN_REQUIRE_CONTAINS(with_index(json::array()), "expected a JSON object with a 'weight_map'");
        // A hostile value is named by its type, never printed: dump() of 100,000 levels overflows the stack.
        const int depth = 100000;
        std::ofstream(index_path) << "{\"weight_map\":{\"model.norm.weight\":" << std::string(depth, '[') << std::string(depth, ']') << "}}";
        const std::string deep = load_error(dir);
        check_one_line(deep);
        VKATTN_REQUIRE_CONTAINS(deep, "weight_map['model.norm.weight'] is an array of 1 elements, expected a file name");
    }
}

TEST_CASE("check_llama_weights names the tensor whose size is wrong", "[cpu]") {
    const LlamaConfig c = tiny_config();
    const LlamaWeights w = synthetic_llama(c, 5);
    auto broken = w;
    broken.layers[1].v_proj.pop_back();
    VKATTN_REQUIRE_CONTAINS(error_of([&] { check_llama_weights(broken); }),
                            "Llama weight 'model.layers.1.self_attn.v_proj.weight' has 239 values, expected [12, 20] = 240");
    broken = w;
    broken.lm_head.clear();
    VKATTN_REQUIRE_CONTAINS(error_of([&] { check_llama_weights(broken); }), "'lm_head.weight' has 0 values, expected [33, 20]");
    broken = w;
    broken.layers[0].k_bias.assign(12, 0.0f);
    VKATTN_REQUIRE_CONTAINS(error_of([&] { check_llama_weights(broken); }), "model.layers.0.self_attn.{q,k,v}_proj biases, but the config has none");
    broken = w;
    broken.layers.pop_back();
    VKATTN_REQUIRE_CONTAINS(error_of([&] { check_llama_weights(broken); }), "Llama weights have 1 layers, config num_hidden_layers is 2");
    broken = w;
    broken.config.num_key_value_heads = 3;
    VKATTN_REQUIRE_CONTAINS(error_of([&] { check_llama_weights(broken); }), "num_key_value_heads 3 does not divide num_attention_heads 4");
}
