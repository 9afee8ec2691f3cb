// Llama-family weights: the tensor list a config implies, loading it from a Hugging Face directory
// (model.safetensors or shards), and seeded synthetic weights for tests and benchmarks.
#include <vkattn/model/llama_weights.hpp>

#include "model/json_file.hpp"
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

std::string shape_str(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
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

// The checkpoint's tensors across one or more safetensors files.
class TensorFiles {
public:
    explicit TensorFiles(const std::filesystem::path& dir) : dir_(dir) {
        const auto single = dir / "model.safetensors";
        const auto index = dir / "model.safetensors.index.json";
        std::error_code ec;
        if (std::filesystem::exists(single, ec)) {
            files_.push_back(open_file(single));
            for (const std::string& name : files_[0].names()) where_[name] = 0;
        } else if (std::filesystem::exists(index, ec)) {
            open_shards(index);
        } else {
            std::string hint;
            if (std::filesystem::exists(dir / "pytorch_model.bin", ec)) hint = " (pytorch_model.bin is not read; save with safetensors)";
            fail(dir, "has neither model.safetensors nor model.safetensors.index.json" + hint);
        }
    }

    bool contains(const std::string& name) const { return where_.count(name) != 0; }
    const std::map<std::string, size_t>& names() const { return where_; }

    // The tensor widened to float, after checking its shape against the config's.
    std::vector<float> read(const LlamaTensor& t, const char* why) const {
        const auto it = where_.find(t.name);
        if (it == where_.end()) fail(dir_, "missing tensor '" + t.name + "' " + shape_str(t.shape) + why);
        const SafetensorsFile& file = files_[it->second];
        const TensorInfo* info = file.find(t.name);
        if (info->shape != t.shape) {
            fail(file.path(), "tensor '" + t.name + "' has shape " + shape_str(info->shape) + ", expected " +
                                  shape_str(t.shape) + " from config.json");
        }
        return file.read_f32(t.name);
    }

private:
    static SafetensorsFile open_file(const std::filesystem::path& path) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
            fail(path, "is not a regular file, expected a .safetensors file");
        }
        return SafetensorsFile::open(path);
    }

    void open_shards(const std::filesystem::path& index_path) {
        const std::string text = llama_detail::read_small_file(index_path, "model.safetensors.index.json", 64u << 20);
        json index;
        try {
            index = json::parse(text);
        } catch (const json::parse_error& e) {
            fail(index_path, json_error(e));
        }
        if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object()) {
            fail(index_path, "has no 'weight_map' object mapping tensor names to shard files");
        }
        std::map<std::string, size_t> shard_of_file;
        for (const auto& [name, shard] : index.at("weight_map").items()) {
            const std::string where = "weight_map['" + llama_detail::short_text(name) + "']";
            if (!shard.is_string()) fail(index_path, where + " is " + llama_detail::describe(shard) + ", expected a file name");
            const std::string& file = shard.get_ref<const std::string&>();
            // Shards sit beside the index; a path could reach outside the model directory.
            if (file.empty() || file == "." || file == ".." || std::filesystem::path(file).filename().string() != file) {
                fail(index_path, where + " is \"" + llama_detail::short_text(file) +
                                     "\", expected a file name in the same directory");
            }
            auto it = shard_of_file.find(file);
            if (it == shard_of_file.end()) {
                std::error_code ec;
                if (!std::filesystem::exists(dir_ / file, ec)) {
                    fail(dir_, "is missing shard " + llama_detail::short_text(file) + " listed in model.safetensors.index.json");
                }
                files_.push_back(open_file(dir_ / file));
                it = shard_of_file.emplace(file, files_.size() - 1).first;
            }
            if (files_[it->second].find(name) == nullptr) {
                fail(files_[it->second].path(), "has no tensor '" + llama_detail::short_text(name) +
                                                    "', which model.safetensors.index.json places there");
            }
            where_[name] = it->second;
        }
    }

    std::filesystem::path dir_;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

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
    const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
    const int64_t HD = int64_t(c.num_attention_heads) * c.head_dim, KD = int64_t(c.num_key_value_heads) * c.head_dim;
    std::vector<LlamaTensor> out;
    out.push_back({"model.embed_tokens.weight", {V, C}});
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        out.push_back({p + "input_layernorm.weight", {C}});
        out.push_back({p + "self_attn.q_proj.weight", {HD, C}});
        if (c.qkv_bias) out.push_back({p + "self_attn.q_proj.bias", {HD}});
        out.push_back({p + "self_attn.k_proj.weight", {KD, C}});
        if (c.qkv_bias) out.push_back({p + "self_attn.k_proj.bias", {KD}});
        out.push_back({p + "self_attn.v_proj.weight", {KD, C}});
        if (c.qkv_bias) out.push_back({p + "self_attn.v_proj.bias", {KD}});
        out.push_back({p + "self_attn.o_proj.weight", {C, HD}});
        if (c.o_bias) out.push_back({p + "self_attn.o_proj.bias", {C}});
        out.push_back({p + "mlp.gate_proj.weight", {I, C}});
        out.push_back({p + "mlp.up_proj.weight", {I, C}});
        out.push_back({p + "mlp.down_proj.weight", {C, I}});
        out.push_back({p + "post_attention_layernorm.weight", {C}});
    }
    out.push_back({"model.norm.weight", {C}});
    if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, C}});
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
                        shape_str(t.shape) + " = " + std::to_string(numel(t.shape)));
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
    const TensorFiles files(dir);

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
        llama_tensor_values(w, t.name) = files.read(t, why);
    }
    check_llama_weights(w);
    return w;
}

LlamaWeights synthetic_llama(const LlamaConfig& config, uint64_t seed, float stddev) {
    config.validate();
    LlamaWeights w;
    w.config = config;
    w.layers.resize(size_t(config.num_hidden_layers));
    for (const LlamaTensor& t : llama_tensors(config)) {
        // The stream is the name's FNV-1a hash, so a tensor's values do not depend on the others' shapes.
        uint64_t stream = 1469598103934665603ull;
        for (unsigned char ch : t.name) stream = (stream ^ ch) * 1099511628211ull;
        const bool gain = t.name.ends_with("layernorm.weight") || t.name == "model.norm.weight";
        fill_uniform(llama_tensor_values(w, t.name), size_t(numel(t.shape)), seed, stream, gain ? 1.0f : 0.0f, stddev);
    }
    return w;
}

}  // namespace vkattn::model
