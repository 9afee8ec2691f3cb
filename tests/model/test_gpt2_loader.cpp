// GPT-2 config parsing, checkpoint loading in every Hugging Face layout, and the synthetic weights.
#include "catch.hpp"

#include <vkattn/model/gpt2_loader.hpp>
#include "model/safetensors_writer.hpp"

#include <bit>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

using namespace vkattn::model;
using namespace vkattn::test;
using nlohmann::json;

namespace {

bool has(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }

// Small and uneven on purpose: C = 8, 2 heads of 4, P = 5, V = 11.
Gpt2Config tiny_config() {
    Gpt2Config c;
    c.n_embd = 8;
    c.n_head = 2;
    c.n_layer = 2;
    c.n_positions = 5;
    c.vocab_size = 11;
    return c;
}

void write_json(const std::filesystem::path& path, const json& j) { std::ofstream(path) << j.dump(2); }

std::string config_error(const TempDir& dir, const json& j) {
    write_json(dir / "config.json", j);
    return error_of([&] { load_gpt2_config(dir / "config.json"); });
}

void check_tensor(const std::vector<float>& got, const std::vector<float>& want, StDtype dtype, const char* what) {
    INFO(what);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        if (got[i] != st_round(dtype, want[i])) {
            INFO("index " << i << " got " << got[i] << " want " << st_round(dtype, want[i]));
            CHECK(got[i] == st_round(dtype, want[i]));
            return;
        }
    }
}

// Every tensor equals the stored one after rounding to the file's dtype (the loader widens exactly).
void check_weights(const Gpt2Weights& got, const Gpt2Weights& want, StDtype dtype) {
    CHECK(got.config.n_embd == want.config.n_embd);
    CHECK(got.config.n_layer == want.config.n_layer);
    check_tensor(got.wte, want.wte, dtype, "wte");
    check_tensor(got.wpe, want.wpe, dtype, "wpe");
    REQUIRE(got.layers.size() == want.layers.size());
    for (size_t l = 0; l < got.layers.size(); ++l) {
        INFO("layer " << l);
        const auto& g = got.layers[l];
        const auto& w = want.layers[l];
        check_tensor(g.ln_1_w, w.ln_1_w, dtype, "ln_1_w");
        check_tensor(g.ln_1_b, w.ln_1_b, dtype, "ln_1_b");
        check_tensor(g.attn_w, w.attn_w, dtype, "attn_w");
        check_tensor(g.attn_b, w.attn_b, dtype, "attn_b");
        check_tensor(g.attn_proj_w, w.attn_proj_w, dtype, "attn_proj_w");
        check_tensor(g.attn_proj_b, w.attn_proj_b, dtype, "attn_proj_b");
        check_tensor(g.ln_2_w, w.ln_2_w, dtype, "ln_2_w");
        check_tensor(g.ln_2_b, w.ln_2_b, dtype, "ln_2_b");
        check_tensor(g.fc_w, w.fc_w, dtype, "fc_w");
        check_tensor(g.fc_b, w.fc_b, dtype, "fc_b");
        check_tensor(g.fc_proj_w, w.fc_proj_w, dtype, "fc_proj_w");
        check_tensor(g.fc_proj_b, w.fc_proj_b, dtype, "fc_proj_b");
    }
    check_tensor(got.ln_f_w, want.ln_f_w, dtype, "ln_f_w");
    check_tensor(got.ln_f_b, want.ln_f_b, dtype, "ln_f_b");
}

// The checkpoint's tensors rewritten into model.safetensors after edit() changes the list.
template <class Edit>
void rewrite_weights(const TempDir& dir, const Gpt2Weights& w, Edit edit) {
    std::vector<StTensor> tensors = gpt2_tensors(w, {});
    edit(tensors);
    write_safetensors(dir / "model.safetensors", tensors);
}

}  // namespace

TEST_CASE("load_gpt2_config reads Hugging Face config.json", "[cpu][gpt2_loader]") {
    TempDir dir("cfg");
    json j = {{"model_type", "gpt2"}, {"n_embd", 768}, {"n_head", 12}, {"n_layer", 12}, {"n_positions", 1024},
              {"vocab_size", 50257}, {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"},
              {"n_inner", nullptr}, {"scale_attn_weights", true}, {"architectures", {"GPT2LMHeadModel"}}};

    SECTION("the GPT-2 small config") {
        write_json(dir / "config.json", j);
        const Gpt2Config c = load_gpt2_config(dir / "config.json");
        CHECK(c.n_embd == 768);
        CHECK(c.n_head == 12);
        CHECK(c.head_dim() == 64);
        CHECK(c.n_layer == 12);
        CHECK(c.n_positions == 1024);
        CHECK(c.vocab_size == 50257);
        CHECK(c.layer_norm_epsilon == 1e-5f);
        CHECK(c.activation_function == "gelu_new");
    }
    SECTION("n_ctx stands in for n_positions, defaults for the optional fields") {
        j.erase("n_positions");
        j.erase("layer_norm_epsilon");
        j.erase("activation_function");
        j["n_ctx"] = 256;
        write_json(dir / "config.json", j);
        const Gpt2Config c = load_gpt2_config(dir / "config.json");
        CHECK(c.n_positions == 256);
        CHECK(c.layer_norm_epsilon == 1e-5f);
        CHECK(c.activation_function == "gelu_new");
    }
    SECTION("gelu_pytorch_tanh is the same tanh approximation") {
        j["activation_function"] = "gelu_pytorch_tanh";
        write_json(dir / "config.json", j);
        CHECK(load_gpt2_config(dir / "config.json").activation_function == "gelu_pytorch_tanh");
    }
    SECTION("errors name the file and the field") {
        const std::string missing = error_of([&] { load_gpt2_config(dir / "config.json"); });
        CHECK(has(missing, "config.json"));
        CHECK(has(missing, "no such file"));

        write_json(dir / "config.json", j);
        std::ofstream(dir / "config.json") << "{\"model_type\": \"gpt2\",";
        CHECK(has(error_of([&] { load_gpt2_config(dir / "config.json"); }), "not valid JSON"));

        CHECK(has(config_error(dir, json::array()), "expected an object"));
        json wrong = j;
        wrong["model_type"] = "llama";
        CHECK(has(config_error(dir, wrong), "'model_type' is \"llama\", expected \"gpt2\""));
        wrong.erase("model_type");
        CHECK(has(config_error(dir, wrong), "has no 'model_type'"));
        for (const char* field : {"n_embd", "n_head", "n_layer", "vocab_size"}) {
            INFO(field);
            json c = j;
            c.erase(field);
            CHECK(has(config_error(dir, c), std::string("has no '") + field + "'"));
            c[field] = 0;
            CHECK(has(config_error(dir, c), std::string("'") + field + "' is 0, expected a positive integer"));
            c[field] = -3;
            CHECK(has(config_error(dir, c), "is -3, expected a positive integer"));
            c[field] = "12";
            CHECK(has(config_error(dir, c), "is \"12\", expected a positive integer"));
        }
        json no_positions = j;
        no_positions.erase("n_positions");
        CHECK(has(config_error(dir, no_positions), "neither 'n_positions' nor 'n_ctx'"));
        json indivisible = j;
        indivisible["n_head"] = 7;
        const std::string e = config_error(dir, indivisible);
        CHECK(has(e, "config.json"));
        CHECK(has(e, "n_embd 768 is not divisible by n_head 7"));
        json erf = j;
        erf["activation_function"] = "gelu";
        CHECK(has(config_error(dir, erf), "\"gelu\" (exact erf GELU) is not supported"));
        erf["activation_function"] = "relu";
        CHECK(has(config_error(dir, erf), "\"relu\" is not supported; expected \"gelu_new\" or \"gelu_pytorch_tanh\""));
        json inner = j;
        inner["n_inner"] = 1024;
        CHECK(has(config_error(dir, inner), "'n_inner' is 1024; only null or 4 * n_embd = 3072"));
        json eps = j;
        eps["layer_norm_epsilon"] = 0;
        CHECK(has(config_error(dir, eps), "layer_norm_epsilon is 0, expected a positive finite number"));
        json scaled = j;
        scaled["scale_attn_by_inverse_layer_idx"] = true;
        CHECK(has(config_error(dir, scaled), "'scale_attn_by_inverse_layer_idx' true is not supported"));
    }
}

TEST_CASE("Gpt2Config::validate names the inconsistent field", "[cpu][gpt2_loader]") {
    Gpt2Config c = tiny_config();
    CHECK_NOTHROW(c.validate());
    c.n_head = 3;
    CHECK(has(error_of([&] { c.validate(); }), "n_embd 8 is not divisible by n_head 3"));
    c = tiny_config();
    c.vocab_size = 0;
    CHECK(has(error_of([&] { c.validate(); }), "vocab_size is 0"));
    c = tiny_config();
    c.activation_function = "gelu";
    CHECK(has(error_of([&] { c.validate(); }), "exact erf"));
}

TEST_CASE("synthetic_gpt2 is seeded and shaped like GPT-2", "[cpu][gpt2_loader]") {
    const Gpt2Config c = tiny_config();
    const Gpt2Weights a = synthetic_gpt2(c, 42);
    const Gpt2Weights b = synthetic_gpt2(c, 42);
    const Gpt2Weights other = synthetic_gpt2(c, 43);
    CHECK(a.wte.size() == 11 * 8);
    CHECK(a.wpe.size() == 5 * 8);
    REQUIRE(a.layers.size() == 2);
    CHECK(a.layers[1].attn_w.size() == 8 * 24);
    CHECK(a.layers[1].fc_proj_w.size() == 32 * 8);
    CHECK(a.lm_head.empty());
    CHECK(&a.lm_head_weights() == &a.wte);
    CHECK(a.wte == b.wte);
    CHECK(a.layers[1].fc_w == b.layers[1].fc_w);
    CHECK(a.wte != other.wte);
    CHECK(a.layers[0].attn_w != a.layers[1].attn_w);

    // Pinned bits (also reproduced by an independent Python transcription of the generator): the sampling
    // is integer-only, so every compiler and platform must give exactly these.
    CHECK(std::bit_cast<uint32_t>(a.wte[0]) == 0x3d07eb89u);
    CHECK(std::bit_cast<uint32_t>(a.wte[1]) == 0xbd060004u);
    CHECK(std::bit_cast<uint32_t>(a.layers[1].ln_2_w[3]) == 0x3f7b570au);

    // Moments of a large tensor: 40960 samples put the mean within ~4 standard errors of 0 and the
    // standard deviation within 2% of the target; gains centre on 1.
    Gpt2Config big = c;
    big.n_embd = 64;
    big.n_head = 4;
    big.n_layer = 1;
    const float stddev = 0.05f;
    const Gpt2Weights w = synthetic_gpt2(big, 7, stddev);
    const std::vector<float>& x = w.layers[0].fc_w;  // [64, 256]
    double sum = 0, sq = 0, max_abs = 0;
    for (float v : x) {
        sum += v;
        sq += double(v) * v;
        max_abs = std::max(max_abs, double(std::abs(v)));
    }
    const double mean = sum / double(x.size());
    const double sd = std::sqrt(sq / double(x.size()) - mean * mean);
    CHECK(std::abs(mean) < 4 * stddev / std::sqrt(double(x.size())));
    CHECK(std::abs(sd - stddev) < 0.02 * stddev);
    CHECK(max_abs <= 6 * stddev * 1.0001);
    double gain = 0;
    for (float v : w.layers[0].ln_1_w) gain += v;
    CHECK(std::abs(gain / 64 - 1.0) < 0.05);

    Gpt2Config bad = c;
    bad.n_head = 3;
    CHECK(has(error_of([&] { synthetic_gpt2(bad, 1); }), "not divisible"));
}

TEST_CASE("load_gpt2_weights reads every Hugging Face layout", "[cpu][gpt2_loader]") {
    const Gpt2Weights want = synthetic_gpt2(tiny_config(), 1234, 0.3f);
    CheckpointOptions options;
    options.dtype = GENERATE(StDtype::f32, StDtype::f16, StDtype::bf16);
    options.prefix = GENERATE(false, true);
    options.attn_buffers = GENERATE(false, true);
    options.shards = GENERATE(1, 3);
    INFO("dtype " << st_dtype_name(options.dtype) << " prefix " << options.prefix << " buffers " << options.attn_buffers
                  << " shards " << options.shards);
    TempDir dir("ckpt");
    write_gpt2_checkpoint(dir.path(), want, options);
    CHECK(std::filesystem::exists(dir / (options.shards > 1 ? "model.safetensors.index.json" : "model.safetensors")));

    const Gpt2Weights got = load_gpt2_weights(dir.path());
    check_weights(got, want, options.dtype);
    CHECK(got.lm_head.empty());
}

TEST_CASE("load_gpt2_weights keeps an untied lm_head and drops a tied one", "[cpu][gpt2_loader]") {
    TempDir dir("head");
    Gpt2Weights want = synthetic_gpt2(tiny_config(), 5);
    CheckpointOptions options;
    options.lm_head = true;
    options.prefix = true;

    SECTION("a head equal to wte is tied") {
        write_gpt2_checkpoint(dir.path(), want, options);
        const Gpt2Weights got = load_gpt2_weights(dir.path());
        CHECK(got.lm_head.empty());
        CHECK(got.lm_head_weights() == want.wte);
    }
    SECTION("a different head is kept") {
        want.lm_head = synthetic_gpt2(tiny_config(), 6).wte;
        write_gpt2_checkpoint(dir.path(), want, options);
        const Gpt2Weights got = load_gpt2_weights(dir.path());
        CHECK(got.lm_head == want.lm_head);
        CHECK(got.wte == want.wte);
    }
    SECTION("a head of the wrong shape") {
        write_gpt2_checkpoint(dir.path(), want, options);
        rewrite_weights(dir, want, [](std::vector<StTensor>& t) { t.push_back({"lm_head.weight", StDtype::f32, {11, 4}, std::vector<float>(44)}); });
        CHECK(has(error_of([&] { load_gpt2_weights(dir.path()); }), "'lm_head.weight' has shape [11, 4], expected [11, 8]"));
    }
}

TEST_CASE("load_gpt2_weights reports what is missing or inconsistent", "[cpu][gpt2_loader]") {
    TempDir dir("ckpt-bad");
    const Gpt2Weights w = synthetic_gpt2(tiny_config(), 9);
    write_gpt2_checkpoint(dir.path(), w);
    REQUIRE_NOTHROW(load_gpt2_weights(dir.path()));
    const auto load_error = [&] { return error_of([&] { load_gpt2_weights(dir.path()); }); };

    SECTION("not a directory") {
        CHECK(has(error_of([&] { load_gpt2_weights(dir / "nowhere"); }), "is not a directory"));
    }
    SECTION("no config.json") {
        std::filesystem::remove(dir / "config.json");
        CHECK(has(load_error(), "has no config.json"));
    }
    SECTION("no weights file") {
        std::filesystem::remove(dir / "model.safetensors");
        CHECK(has(load_error(), "has neither model.safetensors nor model.safetensors.index.json"));
    }
    SECTION("a missing tensor is named with its shape") {
        rewrite_weights(dir, w, [](std::vector<StTensor>& t) { std::erase_if(t, [](const StTensor& x) { return x.name == "h.1.mlp.c_fc.weight"; }); });
        CHECK(has(load_error(), "missing tensor 'h.1.mlp.c_fc.weight' [8, 32]"));
    }
    SECTION("a tensor of the wrong shape") {
        rewrite_weights(dir, w, [](std::vector<StTensor>& t) {
            for (StTensor& x : t) {
                if (x.name == "h.0.attn.c_attn.weight") x.shape = {24, 8};  // transposed, as nn.Linear would store it
            }
        });
        const std::string e = load_error();
        CHECK(has(e, "model.safetensors"));
        CHECK(has(e, "'h.0.attn.c_attn.weight' has shape [24, 8], expected [8, 24]"));
    }
    SECTION("an integer tensor") {
        // wpe stored as I32, built by hand: the writer only emits float dtypes.
        std::vector<StTensor> tensors = gpt2_tensors(w, {});
        tensors.erase(tensors.begin() + 1);
        nlohmann::json h = nlohmann::json::object();
        std::string data(160, '\0');
        h["wpe.weight"] = {{"dtype", "I32"}, {"shape", {5, 8}}, {"data_offsets", {0, 160}}};
        for (const StTensor& t : tensors) {
            const size_t begin = data.size();
            data += st_encode(StDtype::f32, t.values);
            h[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
        }
        write_bytes(dir / "model.safetensors", st_raw(h.dump(), data));
        CHECK(has(load_error(), "tensor 'wpe.weight' has dtype I32; only F32, F16 and BF16 convert to float"));
    }
    SECTION("config n_layer disagrees with the weights") {
        Gpt2Config c = tiny_config();
        c.n_layer = 1;
        write_json(dir / "config.json", gpt2_config_json(c));
        CHECK(has(load_error(), "config.json has n_layer 1 but the weights hold 2 layers (h.0 .. h.1)"));
        c.n_layer = 3;
        write_json(dir / "config.json", gpt2_config_json(c));
        CHECK(has(load_error(), "n_layer 3 but the weights hold 2 layers"));
    }
    SECTION("config n_embd disagrees with the weights") {
        Gpt2Config c = tiny_config();
        c.n_embd = 12;
        c.n_head = 3;
        write_json(dir / "config.json", gpt2_config_json(c));
        CHECK(has(load_error(), "'wte.weight' has shape [11, 8], expected [11, 12]"));
    }
    SECTION("an inconsistent config") {
        Gpt2Config c = tiny_config();
        json j = gpt2_config_json(c);
        j["n_head"] = 3;
        write_json(dir / "config.json", j);
        CHECK(has(load_error(), "n_embd 8 is not divisible by n_head 3"));
    }
}

TEST_CASE("load_gpt2_weights checks sharded checkpoints", "[cpu][gpt2_loader]") {
    TempDir dir("shards");
    const Gpt2Weights w = synthetic_gpt2(tiny_config(), 11);
    CheckpointOptions options;
    options.shards = 3;
    write_gpt2_checkpoint(dir.path(), w, options);
    const auto load_error = [&] { return error_of([&] { load_gpt2_weights(dir.path()); }); };
    const auto index_path = dir / "model.safetensors.index.json";
    json index;
    std::ifstream(index_path) >> index;

    SECTION("a missing shard is named") {
        std::filesystem::remove(dir / shard_name(1, 3));
        CHECK(has(load_error(), "is missing shard 'model-00002-of-00003.safetensors'"));
    }
    SECTION("the index places a tensor in the wrong shard") {
        index["weight_map"]["wte.weight"] = shard_name(2, 3);
        write_json(index_path, index);
        CHECK(has(load_error(), "has no tensor 'wte.weight', which model.safetensors.index.json places there"));
    }
    SECTION("a shard path outside the directory") {
        index["weight_map"]["wte.weight"] = "../elsewhere.safetensors";
        write_json(index_path, index);
        CHECK(has(load_error(), "expected a file name in the same directory"));
    }
    SECTION("an index without weight_map") {
        write_json(index_path, json{{"metadata", json::object()}});
        CHECK(has(load_error(), "has no 'weight_map' object"));
    }
    SECTION("a tensor left out of the index") {
        index["weight_map"].erase("ln_f.bias");
        write_json(index_path, index);
        CHECK(has(load_error(), "missing tensor 'ln_f.bias' [8]"));
    }
}
