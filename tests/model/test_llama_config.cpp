// Llama-family config.json: every field, its Hugging Face default per family, and one clear line for each
// malformed case (never a dump of the offending value).
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/model/llama_config.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#endif

#ifndef VKATTN_FIXTURES_DIR
#define VKATTN_FIXTURES_DIR "tests/fixtures"
#endif

using namespace vkattn;
using namespace vkattn::model;
using nlohmann::json;
using vkattn::test::error_of;

namespace {

// The smallest config that names every required field.
json minimal(const char* model_type) {
    return {{"model_type", model_type}, {"hidden_size", 64}, {"intermediate_size", 96}, {"num_hidden_layers", 3},
            {"num_attention_heads", 8},  {"vocab_size", 100}};
}

LlamaConfig parse(const json& j) { return parse_llama_config(j.dump(), "cfg.json"); }

// The error of parsing j; it must be one line starting with the source name.
std::string error_for(const json& j) { return error_of([&] { parse(j); }); }
std::string error_for_text(const std::string& text) { return error_of([&] { parse_llama_config(text, "cfg.json"); }); }

void check_one_line(const std::string& message) {
    INFO("message: " << message);
    CHECK(message.rfind("cfg.json: ", 0) == 0);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.size() < 300);
}

#define CHECK_ERROR(json_value, part)                          \
    do {                                                       \
        const std::string message_ = error_for(json_value);    \
        check_one_line(message_);                              \
        VKATTN_REQUIRE_CONTAINS(message_, part);               \
    } while (0)

json with(json j, const char* key, json value) {
    j[key] = std::move(value);
    return j;
}

json without(json j, const char* key) {
    j.erase(key);
    return j;
}

}  // namespace

TEST_CASE("Llama config: the fixtures' config.json files parse to what the golden script wrote", "[cpu]") {
    const std::string dir = VKATTN_FIXTURES_DIR;

    const LlamaConfig a = load_llama_config(dir + "/tiny_llama3_gqa/config.json");
    CHECK(a.family == LlamaFamily::llama);
    CHECK(a.hidden_size == 32);
    CHECK(a.intermediate_size == 64);
    CHECK(a.num_hidden_layers == 2);
    CHECK(a.num_attention_heads == 4);
    CHECK(a.num_key_value_heads == 2);
    CHECK(a.head_dim == 8);
    CHECK(a.vocab_size == 80);
    CHECK(a.max_position_embeddings == 128);
    CHECK(a.rms_norm_eps == 1e-5);
    CHECK(a.rope_theta == 10000.0);
    REQUIRE(a.rope_scaling.has_value());
    CHECK(a.rope_scaling->factor == 8.0);
    CHECK(a.rope_scaling->low_freq_factor == 0.5);
    CHECK(a.rope_scaling->high_freq_factor == 2.0);
    CHECK(a.rope_scaling->original_max_position_embeddings == 64);
    CHECK_FALSE(a.tie_word_embeddings);
    CHECK_FALSE(a.qkv_bias);
    CHECK_FALSE(a.o_bias);
    CHECK(a.layer_window.empty());
    CHECK(a.bos_token_id == 76);
    CHECK(a.eos_token_ids == std::vector<int>{77, 78, 79});

    // Written as transformers 4.40 did: no head_dim, no mlp_bias.
    const LlamaConfig b = load_llama_config(dir + "/tiny_llama_tied_bias/config.json");
    CHECK(b.head_dim == 16);
    CHECK(b.num_key_value_heads == 2);
    CHECK(b.tie_word_embeddings);
    CHECK(b.qkv_bias);
    CHECK(b.o_bias);
    CHECK(b.rms_norm_eps == 1e-6);
    CHECK_FALSE(b.rope_scaling.has_value());

    CHECK(load_llama_config(dir + "/tiny_llama_mqa_bf16/config.json").num_key_value_heads == 1);
    CHECK(load_llama_config(dir + "/tiny_llama_mqa_bf16/config.json").rope_theta == 500000.0);

    const LlamaConfig h = load_llama_config(dir + "/tiny_llama_head_dim_sharded/config.json");
    CHECK(h.hidden_size == 24);
    CHECK(h.head_dim == 12);

    const LlamaConfig m = load_llama_config(dir + "/tiny_mistral_window/config.json");
    CHECK(m.family == LlamaFamily::mistral);
    CHECK(m.layer_window == std::vector<int>{6, 6});
    CHECK_FALSE(m.qkv_bias);

    const LlamaConfig q = load_llama_config(dir + "/tiny_qwen2_window/config.json");
    CHECK(q.family == LlamaFamily::qwen2);
    CHECK(q.layer_window == std::vector<int>{0, 5, 5});
    CHECK(q.window(0) == 0);
    CHECK(q.window(2) == 5);
    CHECK(q.qkv_bias);
    CHECK_FALSE(q.o_bias);
    CHECK(q.tie_word_embeddings);
    CHECK_FALSE(q.bos_token_id.has_value());
    CHECK(q.eos_token_ids == std::vector<int>{63});
    CHECK(q.rope_theta == 1000000.0);
}

TEST_CASE("Llama config: absent fields take each family's Hugging Face default", "[cpu]") {
    SECTION("llama") {
        const LlamaConfig c = parse(minimal("llama"));
        CHECK(c.family == LlamaFamily::llama);
        CHECK(c.num_key_value_heads == 8);  // num_attention_heads
        CHECK(c.head_dim == 8);             // hidden_size / num_attention_heads
        CHECK(c.max_position_embeddings == 2048);
        CHECK(c.rms_norm_eps == 1e-6);
        CHECK(c.rope_theta == 10000.0);
        CHECK_FALSE(c.rope_scaling.has_value());
        CHECK_FALSE(c.tie_word_embeddings);
        CHECK_FALSE(c.qkv_bias);
        CHECK_FALSE(c.o_bias);
        CHECK(c.layer_window.empty());
        CHECK(c.bos_token_id == 1);
        CHECK(c.eos_token_ids == std::vector<int>{2});
        // LlamaAttention has no window, whatever the file says.
        CHECK(parse(with(minimal("llama"), "sliding_window", 4)).layer_window.empty());
    }
    SECTION("mistral: 8 kv heads and a 4096 window unless the file says otherwise") {
        const LlamaConfig c = parse(minimal("mistral"));
        CHECK(c.family == LlamaFamily::mistral);
        CHECK(c.num_key_value_heads == 8);
        CHECK(c.max_position_embeddings == 131072);
        CHECK(c.layer_window == std::vector<int>{4096, 4096, 4096});
        CHECK(c.bos_token_id == 1);
        CHECK(c.eos_token_ids == std::vector<int>{2});
        CHECK(parse(with(minimal("mistral"), "sliding_window", nullptr)).layer_window.empty());
        CHECK(parse(with(minimal("mistral"), "sliding_window", 7)).layer_window == std::vector<int>{7, 7, 7});
        // MistralConfig's default is 8 kv heads, not num_attention_heads: 4 heads cannot share 8.
        CHECK_ERROR(with(minimal("mistral"), "num_attention_heads", 4), "num_key_value_heads 8 does not divide num_attention_heads 4");
    }
    SECTION("qwen2: bias on q, k, v; no window without use_sliding_window; no bos or eos") {
        json j = with(minimal("qwen2"), "num_attention_heads", 32);
        j["hidden_size"] = 128;
        const LlamaConfig c = parse(j);
        CHECK(c.family == LlamaFamily::qwen2);
        CHECK(c.num_key_value_heads == 32);
        CHECK(c.head_dim == 4);
        CHECK(c.max_position_embeddings == 32768);
        CHECK(c.qkv_bias);
        CHECK_FALSE(c.o_bias);
        CHECK(c.layer_window.empty());  // sliding_window 4096 by default, but use_sliding_window is false
        CHECK_FALSE(c.bos_token_id.has_value());
        CHECK(c.eos_token_ids.empty());
        // attention_bias is a Llama field; Qwen2Attention ignores it.
        CHECK_FALSE(parse(with(j, "attention_bias", true)).o_bias);
        // With use_sliding_window the default max_window_layers is 28: none of these 3 layers.
        CHECK(parse(with(j, "use_sliding_window", true)).layer_window == std::vector<int>{0, 0, 0});
        j["use_sliding_window"] = true;
        j["max_window_layers"] = 2;
        j["sliding_window"] = 9;
        CHECK(parse(j).layer_window == std::vector<int>{0, 0, 9});
        CHECK(parse(with(j, "sliding_window", nullptr)).layer_window.empty());
        // transformers >= 4.53 lists each layer's kind; it decides over max_window_layers.
        CHECK(parse(with(j, "layer_types", {"sliding_attention", "full_attention", "sliding_attention"})).layer_window ==
              std::vector<int>{9, 0, 9});
        j["use_sliding_window"] = false;
        CHECK(parse(with(j, "layer_types", {"sliding_attention", "full_attention", "sliding_attention"})).layer_window.empty());
    }
    SECTION("the family from architectures when model_type is absent") {
        const json j = with(without(minimal("llama"), "model_type"), "architectures", {"MistralForCausalLM"});
        CHECK(parse(j).family == LlamaFamily::mistral);
    }
}

TEST_CASE("Llama config: each field as Hugging Face writes it", "[cpu]") {
    const json base = minimal("llama");
    CHECK(parse(with(base, "num_key_value_heads", 2)).num_key_value_heads == 2);
    CHECK(parse(with(base, "num_key_value_heads", nullptr)).num_key_value_heads == 8);
    CHECK(parse(with(base, "head_dim", 6)).head_dim == 6);  // may differ from hidden_size / heads
    CHECK(parse(with(base, "head_dim", nullptr)).head_dim == 8);
    CHECK(parse(with(base, "max_position_embeddings", 77)).max_position_embeddings == 77);
    CHECK(parse(with(base, "rms_norm_eps", 1e-5)).rms_norm_eps == 1e-5);
    CHECK(parse(with(base, "rope_theta", 500000.0)).rope_theta == 500000.0);
    CHECK(parse(with(base, "rope_theta", 500000)).rope_theta == 500000.0);  // an integer is a number too
    CHECK(parse(with(base, "tie_word_embeddings", true)).tie_word_embeddings);
    CHECK(parse(with(base, "attention_bias", true)).qkv_bias);
    CHECK(parse(with(base, "attention_bias", true)).o_bias);
    CHECK(parse(with(base, "hidden_act", "silu")).family == LlamaFamily::llama);
    CHECK_FALSE(parse(with(base, "mlp_bias", false)).o_bias);
    CHECK(parse(with(base, "partial_rotary_factor", 1.0)).head_dim == 8);

    const json llama3 = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    const auto rs = parse(with(base, "rope_scaling", llama3)).rope_scaling;
    REQUIRE(rs.has_value());
    CHECK(rs->factor == 32.0);
    CHECK(rs->low_freq_factor == 1.0);
    CHECK(rs->high_freq_factor == 4.0);
    CHECK(rs->original_max_position_embeddings == 8192);
    // Configs written before transformers 4.43 say "type".
    json legacy = llama3;
    legacy.erase("rope_type");
    legacy["type"] = "llama3";
    CHECK(parse(with(base, "rope_scaling", legacy)).rope_scaling.has_value());
    CHECK_FALSE(parse(with(base, "rope_scaling", {{"rope_type", "default"}})).rope_scaling.has_value());
    CHECK_FALSE(parse(with(base, "rope_scaling", nullptr)).rope_scaling.has_value());

    CHECK(parse(with(base, "bos_token_id", 5)).bos_token_id == 5);
    CHECK_FALSE(parse(with(base, "bos_token_id", nullptr)).bos_token_id.has_value());
    CHECK(parse(with(base, "eos_token_id", 7)).eos_token_ids == std::vector<int>{7});
    CHECK(parse(with(base, "eos_token_id", {7, 8, 9})).eos_token_ids == std::vector<int>{7, 8, 9});
    CHECK(parse(with(base, "eos_token_id", nullptr)).eos_token_ids.empty());
    CHECK(parse(with(base, "eos_token_id", json::array())).eos_token_ids.empty());
    // Fields the math does not depend on are ignored.
    json extra = base;
    extra["torch_dtype"] = "bfloat16";
    extra["pretraining_tp"] = 1;
    extra["attention_dropout"] = 0.0;
    extra["pad_token_id"] = nullptr;
    extra["transformers_version"] = "4.45.2";
    CHECK(parse(extra).hidden_size == 64);
}

TEST_CASE("Llama config: each malformed field gets one line naming it", "[cpu]") {
    const json base = minimal("llama");

    SECTION("the document and the family") {
        const std::string not_json = error_for_text("{\"model_type\": \"llama\",");
        check_one_line(not_json);
        VKATTN_REQUIRE_CONTAINS(not_json, "not valid JSON");
        CHECK_ERROR(json::array({1, 2}), "is an array of 2 values, expected a JSON object");
        CHECK_ERROR(with(base, "model_type", "gpt2"), "'model_type' is the string \"gpt2\", expected \"llama\", \"mistral\" or \"qwen2\"");
        CHECK_ERROR(with(base, "model_type", 3), "'model_type' is 3, expected \"llama\"");
        CHECK_ERROR(without(base, "model_type"), "has neither 'model_type' nor 'architectures'");
        CHECK_ERROR(with(without(base, "model_type"), "architectures", {"LlamaForSequenceClassification"}),
                    "'architectures' names none of LlamaForCausalLM");
        CHECK_ERROR(with(without(base, "model_type"), "architectures", "LlamaForCausalLM"),
                    "'architectures' is the string \"LlamaForCausalLM\", expected an array");
    }
    SECTION("shapes") {
        CHECK_ERROR(without(base, "hidden_size"), "has no 'hidden_size', expected a positive integer");
        CHECK_ERROR(without(base, "vocab_size"), "has no 'vocab_size'");
        CHECK_ERROR(with(base, "hidden_size", "64"), "'hidden_size' is the string \"64\", expected a positive integer");
        CHECK_ERROR(with(base, "hidden_size", 64.0), "'hidden_size' is 64.0, expected a positive integer");
        CHECK_ERROR(with(base, "hidden_size", 0), "'hidden_size' is 0, expected a positive integer");
        CHECK_ERROR(with(base, "intermediate_size", -3), "'intermediate_size' is -3, expected a positive integer");
        CHECK_ERROR(with(base, "num_hidden_layers", 1ll << 40), "'num_hidden_layers' is 1099511627776, too large");
        CHECK_ERROR(with(base, "vocab_size", 18446744073709551615ull), "'vocab_size' is 18446744073709551615, too large");
        CHECK_ERROR(with(base, "num_attention_heads", nullptr), "'num_attention_heads' is null, expected a positive integer");
        CHECK_ERROR(with(base, "num_key_value_heads", 3), "num_key_value_heads 3 does not divide num_attention_heads 8");
        CHECK_ERROR(with(base, "num_key_value_heads", 0), "'num_key_value_heads' is 0, expected a positive integer");
        CHECK_ERROR(with(base, "head_dim", 7), "head_dim 7 is odd");
        CHECK_ERROR(with(base, "head_dim", true), "'head_dim' is true, expected a positive integer");
        CHECK_ERROR(with(base, "hidden_size", 60), "hidden_size 60 is not divisible by num_attention_heads 8, and there is no 'head_dim'");
        CHECK_ERROR(with(base, "max_position_embeddings", 0), "'max_position_embeddings' is 0");
    }
    SECTION("numerics") {
        CHECK_ERROR(with(base, "rms_norm_eps", 0), "rms_norm_eps is 0, expected a positive number");
        CHECK_ERROR(with(base, "rms_norm_eps", -1e-6), "rms_norm_eps is -1e-06, expected a positive number");
        CHECK_ERROR(with(base, "rms_norm_eps", "1e-6"), "'rms_norm_eps' is the string \"1e-6\", expected a number");
        CHECK_ERROR(with(base, "rope_theta", nullptr), "'rope_theta' is null, expected a number");
        CHECK_ERROR(with(base, "rope_theta", 0), "rope_theta is 0, expected a positive number");
        CHECK_ERROR(with(base, "hidden_act", "gelu"), "'hidden_act' is \"gelu\"; the llama MLP supports only \"silu\"");
        CHECK_ERROR(with(base, "mlp_bias", true), "'mlp_bias' true");
        CHECK_ERROR(with(base, "attention_bias", "no"), "'attention_bias' is the string \"no\", expected true or false");
        CHECK_ERROR(with(base, "tie_word_embeddings", 1), "'tie_word_embeddings' is 1, expected true or false");
        CHECK_ERROR(with(base, "partial_rotary_factor", 0.5), "'partial_rotary_factor' is 0.5");
    }
    SECTION("rope_scaling") {
        const json llama3 = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
        CHECK_ERROR(with(base, "rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}}),
                    "rope_scaling type \"linear\" is not supported; expected null, \"default\" or \"llama3\"");
        CHECK_ERROR(with(base, "rope_scaling", {{"type", "yarn"}, {"factor", 4.0}}), "rope_scaling type \"yarn\" is not supported");
        CHECK_ERROR(with(base, "rope_scaling", {{"type", "dynamic"}}), "rope_scaling type \"dynamic\"");
        CHECK_ERROR(with(base, "rope_scaling", json::array({1})), "'rope_scaling' is an array of 1 values, expected null or an object");
        CHECK_ERROR(with(base, "rope_scaling", {{"factor", 8.0}}), "'rope_scaling' has no 'rope_type'");
        CHECK_ERROR(with(base, "rope_scaling", {{"rope_type", 3}}), "'rope_scaling.rope_type' is 3, expected a string");
        CHECK_ERROR(with(base, "rope_scaling", without(llama3, "factor")), "'rope_scaling' of type llama3 has no 'factor'");
        CHECK_ERROR(with(base, "rope_scaling", with(llama3, "low_freq_factor", "1")),
                    "'rope_scaling.low_freq_factor' is the string \"1\", expected a number");
        CHECK_ERROR(with(base, "rope_scaling", with(llama3, "original_max_position_embeddings", 8192.5)),
                    "'rope_scaling.original_max_position_embeddings' is 8192.5, expected a positive integer");
        CHECK_ERROR(with(base, "rope_scaling", with(llama3, "factor", 0)), "rope_scaling.factor is 0, expected a positive number");
        CHECK_ERROR(with(base, "rope_scaling", with(llama3, "high_freq_factor", 1.0)),
                    "rope_scaling.high_freq_factor is 1, expected a number above low_freq_factor 1");
    }
    SECTION("windows") {
        CHECK_ERROR(with(minimal("mistral"), "sliding_window", 0), "'sliding_window' is 0, expected a positive integer");
        CHECK_ERROR(with(minimal("mistral"), "sliding_window", "4096"), "'sliding_window' is the string \"4096\"");
        json q = with(minimal("qwen2"), "num_key_value_heads", 4);
        CHECK_ERROR(with(q, "use_sliding_window", "yes"), "'use_sliding_window' is the string \"yes\", expected true or false");
        CHECK_ERROR(with(q, "max_window_layers", -1), "'max_window_layers' is -1, expected a non-negative layer count");
        CHECK_ERROR(with(q, "layer_types", {"full_attention"}),
                    "'layer_types' is an array of 1 values, expected an array of num_hidden_layers = 3 strings");
        CHECK_ERROR(with(q, "layer_types", {"full_attention", "chunked_attention", "full_attention"}),
                    "'layer_types[1]' is the string \"chunked_attention\", expected \"full_attention\" or \"sliding_attention\"");
    }
    SECTION("special tokens") {
        CHECK_ERROR(with(base, "bos_token_id", -1), "'bos_token_id' is -1, expected a non-negative token id");
        CHECK_ERROR(with(base, "bos_token_id", 100), "bos_token_id 100 is outside the vocabulary [0, 100)");
        CHECK_ERROR(with(base, "eos_token_id", {2, 100}), "eos_token_id 100 is outside the vocabulary [0, 100)");
        CHECK_ERROR(with(base, "eos_token_id", {2, "</s>"}), "'eos_token_id[1]' is the string \"</s>\", expected a non-negative token id");
        CHECK_ERROR(with(base, "eos_token_id", {{"id", 2}}), "'eos_token_id' is an object, expected a non-negative token id");
    }
}

TEST_CASE("Llama config: hostile values are named by their type, never printed whole", "[cpu]") {
    const json base = minimal("llama");
    // nlohmann's dump() recurses once per level: printing this value would overflow the stack.
    const int depth = 100000;
    const std::string deep = std::string(depth, '[') + std::string(depth, ']');
    const std::string text = base.dump();
    const std::string with_deep = text.substr(0, text.size() - 1) + ",\"hidden_act\":" + deep + "}";
    const std::string e1 = error_for_text(with_deep);
    check_one_line(e1);
    VKATTN_REQUIRE_CONTAINS(e1, "'hidden_act' is an array of 1 values, expected a string");
    // The same value where nothing reads it is ignored, and the top level as a whole is named by its type.
    const LlamaConfig ignored = parse_llama_config(text.substr(0, text.size() - 1) + ",\"unknown\":" + deep + "}", "cfg.json");
    CHECK(ignored.hidden_size == 64);
    const std::string e2 = error_for_text(deep);
    check_one_line(e2);
    VKATTN_REQUIRE_CONTAINS(e2, "is an array of 1 values, expected a JSON object");

    // A long string is cut to a short prefix; control characters and quotes are escaped, keeping one line.
    const std::string e3 = error_for(with(base, "model_type", std::string(100000, 'x')));
    check_one_line(e3);
    VKATTN_REQUIRE_CONTAINS(e3, "xxxx...\"");
    const std::string e4 = error_for(with(base, "hidden_act", "ge\nlu\"\x01"));
    check_one_line(e4);
    VKATTN_REQUIRE_CONTAINS(e4, "'hidden_act' is \"ge\\x0alu\\x22\\x01\"");
}

TEST_CASE("Llama config: validate() names the first bad field of a hand-built config", "[cpu]") {
    LlamaConfig c = parse(minimal("llama"));
    CHECK_NOTHROW(c.validate());
    const auto message = [&](auto change) {
        LlamaConfig bad = c;
        change(bad);
        return error_of([&] { bad.validate(); });
    };
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.hidden_size = 0; }), "Llama-family config: hidden_size is 0");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.num_key_value_heads = 3; }), "num_key_value_heads 3 does not divide");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.head_dim = 5; }), "head_dim 5 is odd");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.rms_norm_eps = std::nan(""); }), "rms_norm_eps is nan");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.layer_window = {4}; }),
                            "layer_window has 1 entries, expected num_hidden_layers = 3");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.layer_window = {4, -1, 0}; }), "sliding window of layer 1 is -1");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.bos_token_id = 100; }), "bos_token_id 100 is outside");
    VKATTN_REQUIRE_CONTAINS(message([](LlamaConfig& b) { b.rope_scaling = Llama3RopeScaling{1.0, 2.0, 2.0, 8}; }),
                            "rope_scaling.high_freq_factor is 2, expected a number above low_freq_factor 2");
}

TEST_CASE("Llama config: only a regular config.json file is read", "[cpu]") {
    const vkattn::test::TempDir dir("llama_config");
    VKATTN_REQUIRE_CONTAINS(error_of([&] { load_llama_config(dir / "config.json"); }), "config.json: no such file");
    VKATTN_REQUIRE_CONTAINS(error_of([&] { load_llama_config(dir.path()); }), "is a directory, expected config.json");

    const auto good = dir.write("config.json", minimal("llama").dump());
    CHECK(load_llama_config(good).hidden_size == 64);
    const auto bad = dir.write("bad.json", with(minimal("llama"), "head_dim", 7).dump());
    const std::string e = error_of([&] { load_llama_config(bad); });
    CHECK(e.rfind(bad.string() + ": ", 0) == 0);
    VKATTN_REQUIRE_CONTAINS(e, "head_dim 7 is odd");

    // A sparse file past the size limit is refused before anything is read.
    const auto big = dir / "big.json";
    std::ofstream(big) << "{";
    std::filesystem::resize_file(big, 17u << 20);
    VKATTN_REQUIRE_CONTAINS(error_of([&] { load_llama_config(big); }), "is 17825792 bytes, more than the 16777216");
#if defined(__unix__) || defined(__APPLE__)
    // A FIFO would block a reader forever, a device never ends.
    const auto fifo = dir / "fifo.json";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    VKATTN_REQUIRE_CONTAINS(error_of([&] { load_llama_config(fifo); }), "is not a regular file");
    VKATTN_REQUIRE_CONTAINS(error_of([&] { load_llama_config("/dev/zero"); }), "/dev/zero: is not a regular file");
#endif
}
