// Llama-family weights: the tensor list a config implies, loading it from a Hugging Face directory
// (model.safetensors or shards), and seeded synthetic weights for tests and benchmarks.
#include <vkattn/model/llama_weights.hpp>

#include "model/llama_internal.hpp"
#include "model/llama_json.hpp"
#include "model/safetensors.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <string_view>

namespace vkattn::model {
namespace {

using json = nlohmann::json;
using Shape = std::vector<int64_t>;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
    throw Error(path.string() + ": " + what);
}

int64_t numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

// "model.layers.12.mlp.up_proj.weight" -> {12, "mlp.up_proj.weight"}; {-1, name} for names outside a layer.
std::pair<int, std::string_view> split_layer(std::string_view name) {
    constexpr std::string_view prefix = "model.layers.";
    if (!name.starts_with(prefix)) return {-1, name};
    std::string_view rest = name.substr(prefix.size());
    int n = 0;
    size_t digits = 0;
    while (digits < rest.size() && digits < 9 && rest[digits] >= '0' && rest[digits] <= '9') n = n * 10 + (rest[digits++] - '0');
    if (digits == 0 || digits >= rest.size() || rest[digits] != '.') return {-1, name};
    return {n, rest.substr(digits + 1)};
}

template <typename W>
auto& slot(W& w, const std::string& name) {
    const auto [layer, field] = split_layer(name);
    if (layer < 0) {
        if (name == "model.embed_tokens.weight") return w.embed_tokens;
        if (name == "model.norm.weight") return w.norm;
        if (name == "lm_head.weight") return w.lm_head;
    } else if (size_t(layer) < w.layers.size()) {
        auto& l = w.layers[size_t(layer)];
        if (field == "input_layernorm.weight") return l.input_layernorm;
        if (field == "self_attn.q_proj.weight") return l.q_proj;
        if (field == "self_attn.q_proj.bias") return l.q_bias;
        if (field == "self_attn.k_proj.weight") return l.k_proj;
        if (field == "self_attn.k_proj.bias") return l.k_bias;
        if (field == "self_attn.v_proj.weight") return l.v_proj;
        if (field == "self_attn.v_proj.bias") return l.v_bias;
        if (field == "self_attn.o_proj.weight") return l.o_proj;
        if (field == "self_attn.o_proj.bias") return l.o_bias;
        if (field == "post_attention_layernorm.weight") return l.post_attention_layernorm;
        if (field == "mlp.gate_proj.weight") return l.gate_proj;
        if (field == "mlp.up_proj.weight") return l.up_proj;
        if (field == "mlp.down_proj.weight") return l.down_proj;
    }
    throw Error("'" + llama_detail::short_text(name) + "' is not a tensor of this " + llama_family_name(w.config.family) +
                " model with " + std::to_string(w.layers.size()) + " layers");
}

// The bias tensors a config may lack: present in a checkpoint whose config says otherwise, they would be
// silently dropped (transformers drops them with a warning), so the loader refuses them.
constexpr std::string_view k_optional_biases[] = {"self_attn.q_proj.bias", "self_attn.k_proj.bias",
                                                  "self_attn.v_proj.bias", "self_attn.o_proj.bias",
                                                  "mlp.gate_proj.bias",    "mlp.up_proj.bias",
                                                  "mlp.down_proj.bias"};

// SplitMix64 (Steele, Lea, Flood 2014), indexed by counter so every element is computable on its own.
uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// values[i] = mean + stddev · u_i, u uniform on [-√3, √3) (unit variance) from 24 random bits: integer work
// and one correctly rounded multiply, so every platform gets the same bits.
void fill_uniform(std::vector<float>& values, size_t n, uint64_t seed, uint64_t stream, float mean, float stddev) {
    values.resize(n);
    const uint64_t base = splitmix64(seed ^ splitmix64(stream));
    const double scale = double(stddev) * std::sqrt(3.0) / double(1 << 23);
    for (size_t i = 0; i < n; ++i) {
        const int64_t r = int64_t(splitmix64(base + i) >> 40) - (int64_t(1) << 23);  // [-2^23, 2^23)
        values[i] = mean + float(double(r) * scale);
    }
}

}  // namespace

std::vector<LlamaTensor> llama_tensors(const LlamaConfig& c) {
    std::vector<LlamaTensor> out;
    for (TensorSpec& t : llama_tensor_specs(c)) out.push_back({std::move(t.name), std::move(t.shape)});
    return out;
}

std::vector<float>& llama_tensor_values(LlamaWeights& w, const std::string& name) { return slot(w, name); }
const std::vector<float>& llama_tensor_values(const LlamaWeights& w, const std::string& name) { return slot(w, name); }

void check_llama_weights(const LlamaWeights& w) {
    const LlamaConfig& c = w.config;
    c.validate();
    if (w.layers.size() != size_t(c.num_hidden_layers)) {
        throw Error("Llama weights have " + std::to_string(w.layers.size()) + " layers, config num_hidden_layers is " +
                    std::to_string(c.num_hidden_layers));
    }
    for (const LlamaTensor& t : llama_tensors(c)) {
        const std::vector<float>& v = llama_tensor_values(w, t.name);
        if (int64_t(v.size()) != numel(t.shape)) {
            throw Error("Llama weight '" + t.name + "' has " + std::to_string(v.size()) + " values, expected " +
                        shape_text(t.shape) + " = " + std::to_string(numel(t.shape)));
        }
    }
    for (size_t l = 0; l < w.layers.size(); ++l) {
        const LlamaLayerWeights& lw = w.layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
        if (!c.qkv_bias && !(lw.q_bias.empty() && lw.k_bias.empty() && lw.v_bias.empty())) {
            throw Error("Llama weights hold " + p + "{q,k,v}_proj biases, but the config has none");
        }
        if (!c.o_bias && !lw.o_bias.empty()) throw Error("Llama weights hold " + p + "o_proj.bias, but the config has none");
    }
    if (c.tie_word_embeddings && !w.lm_head.empty()) {
        throw Error("Llama weights hold lm_head.weight, but the config ties it to embed_tokens");
    }
}

LlamaWeights load_llama_weights(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) fail(dir, "is not a directory, expected a Hugging Face model directory");
    LlamaWeights w;
    w.config = load_llama_config(dir / "config.json");
    const LlamaConfig& c = w.config;
    w.layers.resize(size_t(c.num_hidden_layers));
    const CheckpointFiles files(dir);

    // Tensors the config does not account for: layers past num_hidden_layers, biases it does not have.
    int layers_found = 0;
    for (const auto& [name, file] : files.names()) {
        const auto [layer, field] = split_layer(name);
        layers_found = std::max(layers_found, layer + 1);
        if (layer < 0 || layer >= c.num_hidden_layers) continue;
        for (std::string_view bias : k_optional_biases) {
            if (field != bias) continue;
            const bool expected = bias.starts_with("self_attn.o_proj") ? c.o_bias : bias.starts_with("self_attn.") && c.qkv_bias;
            if (!expected) {
                const std::string why = bias.starts_with("mlp.")                    ? "the MLP has no biases"
                                        : c.family == LlamaFamily::llama ? "config.json has attention_bias false"
                                                                         : std::string("a ") + llama_family_name(c.family) +
                                                                               " model has no such bias";
                fail(dir, "tensor '" + name + "' is in the checkpoint, but " + why);
            }
        }
    }
    if (layers_found != c.num_hidden_layers) {
        const std::string held = layers_found == 0 ? "no model.layers.N tensors"
                                                   : std::to_string(layers_found) + " layers (model.layers.0 .. model.layers." +
                                                         std::to_string(layers_found - 1) + ")";
        fail(dir, "config.json has num_hidden_layers " + std::to_string(c.num_hidden_layers) + " but the weights hold " + held);
    }

    for (const LlamaTensor& t : llama_tensors(c)) {
        const char* why = t.name == "lm_head.weight" ? " (config.json has tie_word_embeddings false)" : "";
        llama_tensor_values(w, t.name) = files.read(t.name, t.shape, why);
    }
    check_llama_weights(w);
    return w;
}

LlamaWeights synthetic_llama(const LlamaConfig& config, uint64_t seed, float stddev) {
    config.validate();
    LlamaWeights w;
    w.config = config;
    w.layers.resize(size_t(config.num_hidden_layers));
    for (const TensorSpec& t : llama_tensor_specs(config)) {
        // The stream is the name's FNV-1a hash, so a tensor's values do not depend on the others' shapes.
        uint64_t stream = 1469598103934665603ull;
        for (unsigned char ch : t.name) stream = (stream ^ ch) * 1099511628211ull;
        const bool gain = t.role == Role::norm_gain;
        fill_uniform(llama_tensor_values(w, t.name), size_t(t.numel()), seed, stream, gain ? 1.0f : 0.0f, stddev);
    }
    return w;
}

}  // namespace vkattn::model
