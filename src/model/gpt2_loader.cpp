// GPT-2 weights from a Hugging Face directory (config.json + safetensors, single file or sharded), and
// seeded synthetic weights for tests and benchmarks that must not depend on a download.
#include <vkattn/model/gpt2_loader.hpp>

#include "model/safetensors.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>

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

// "h.12.attn.c_attn.weight" -> 12 for names under h.N. (with or without the prefix), else -1.
int layer_index(const std::string& name) {
    std::string_view s = name;
    if (s.starts_with("transformer.")) s.remove_prefix(12);
    if (!s.starts_with("h.")) return -1;
    s.remove_prefix(2);
    int n = 0;
    size_t digits = 0;
    while (digits < s.size() && digits < 9 && s[digits] >= '0' && s[digits] <= '9') n = n * 10 + (s[digits++] - '0');
    return digits > 0 && digits < s.size() && s[digits] == '.' ? n : -1;
}

// The checkpoint's tensors across one or more files, looked up by their name without "transformer.".
class TensorSource {
public:
    explicit TensorSource(const std::filesystem::path& dir) : dir_(dir) {
        const auto single = dir / "model.safetensors";
        const auto index = dir / "model.safetensors.index.json";
        std::error_code ec;
        if (std::filesystem::exists(single, ec)) {
            files_.push_back(SafetensorsFile::open(single));
            for (const std::string& name : files_[0].names()) where_[name] = 0;
        } else if (std::filesystem::exists(index, ec)) {
            open_shards(index);
        } else {
            std::string hint;
            if (std::filesystem::exists(dir / "pytorch_model.bin", ec)) hint = " (pytorch_model.bin is not read; save with safetensors)";
            fail(dir, "has neither model.safetensors nor model.safetensors.index.json" + hint);
        }
    }

    // The name as stored ("transformer.wte.weight" or "wte.weight"), or nullptr when neither exists.
    const std::string* stored_name(const std::string& name) const {
        for (const std::string& candidate : {"transformer." + name, name}) {
            const auto it = where_.find(candidate);
            if (it != where_.end()) return &it->first;
        }
        return nullptr;
    }

    // The tensor widened to float, after checking its shape against what the config implies.
    std::vector<float> read(const std::string& name, const Shape& expected) const {
        const std::string* stored = stored_name(name);
        if (stored == nullptr) {
            fail(dir_, "missing tensor '" + name + "' " + shape_str(expected) + " (looked for 'transformer." + name +
                           "' and '" + name + "')");
        }
        const SafetensorsFile& file = files_[where_.at(*stored)];
        const TensorInfo* info = file.find(*stored);
        if (info->shape != expected) {
            fail(file.path(), "tensor '" + *stored + "' has shape " + shape_str(info->shape) + ", expected " +
                                  shape_str(expected) + " from config.json");
        }
        return file.read_f32(*stored);
    }

    // One past the highest h.N present, so a config with the wrong n_layer is caught by name.
    int layer_count() const {
        int count = 0;
        for (const auto& [name, file] : where_) count = std::max(count, layer_index(name) + 1);
        return count;
    }

private:
    void open_shards(const std::filesystem::path& index_path) {
        std::map<std::string, size_t> shard_of_file;
        for (const auto& [name, file] : read_safetensors_index(index_path)) {
            auto it = shard_of_file.find(file);
            if (it == shard_of_file.end()) {
                const auto shard_path = dir_ / file;
                std::error_code ec;
                if (!std::filesystem::exists(shard_path, ec)) {
                    fail(dir_, "is missing shard " + file + " listed in model.safetensors.index.json");
                }
                files_.push_back(SafetensorsFile::open(shard_path));
                it = shard_of_file.emplace(file, files_.size() - 1).first;
            }
            if (files_[it->second].find(name) == nullptr) {
                fail(files_[it->second].path(), "has no tensor '" + name + "', which model.safetensors.index.json places there");
            }
            where_[name] = it->second;
        }
    }

    std::filesystem::path dir_;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, size_t> where_;  // stored tensor name -> index into files_
};

// SplitMix64 (Steele, Lea, Flood 2014) indexed by counter, so any element is computable on its own.
uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// values[i] = mean + stddev * z_i. z is the Irwin-Hall sum of twelve 10-bit uniforms, centred and scaled to
// unit variance: close to N(0, 1) (bounded at ±6σ) and, unlike Box-Muller's log and cos whose last bits vary
// between libms, pure integer work plus one correctly rounded multiply, so every platform gets the same bits.
void fill_normal(std::vector<float>& values, size_t n, uint64_t seed, uint64_t stream, float mean, float stddev) {
    values.resize(n);
    const uint64_t base = splitmix64(seed ^ splitmix64(stream));
    // Sum of 12 uniforms on {0..1023}: mean 12 * 1023 / 2, variance 12 * (1024^2 - 1) / 12.
    constexpr int64_t sum_mean = 6138;
    const double scale = double(stddev) / std::sqrt(1048575.0);
    for (size_t i = 0; i < n; ++i) {
        const uint64_t a = splitmix64(base + 2 * i), b = splitmix64(base + 2 * i + 1);
        // Six 10-bit fields per word, added pairwise in 20-bit lanes (at most 4 * 1023 per lane, no carry out).
        constexpr uint64_t even_fields = 0x3ffull | 0x3ffull << 20 | 0x3ffull << 40;
        const uint64_t lanes = (a & even_fields) + ((a >> 10) & even_fields) + (b & even_fields) + ((b >> 10) & even_fields);
        const int64_t sum = int64_t((lanes & 0xfffff) + ((lanes >> 20) & 0xfffff) + (lanes >> 40));
        const float z = float(double(sum - sum_mean) * scale);
        values[i] = mean + z;  // z is rounded to float first, so no FMA contraction can change the sum
    }
}

}  // namespace

Gpt2Weights load_gpt2_weights(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) fail(dir, "is not a directory, expected a Hugging Face GPT-2 model directory");
    if (!std::filesystem::exists(dir / "config.json", ec)) fail(dir, "has no config.json");
    Gpt2Weights w;
    w.config = load_gpt2_config(dir / "config.json");
    const Gpt2Config& c = w.config;
    const int64_t C = c.n_embd, V = c.vocab_size, P = c.n_positions;

    const TensorSource source(dir);
    const int layers_found = source.layer_count();
    if (layers_found != c.n_layer) {
        const std::string held = layers_found == 0 ? "no h.N layers"
                                                   : std::to_string(layers_found) + " layers (h.0 .. h." +
                                                         std::to_string(layers_found - 1) + ")";
        fail(dir, "config.json has n_layer " + std::to_string(c.n_layer) + " but the weights hold " + held);
    }

    w.wte = source.read("wte.weight", {V, C});
    w.wpe = source.read("wpe.weight", {P, C});
    w.layers.resize(size_t(c.n_layer));
    for (int l = 0; l < c.n_layer; ++l) {
        const std::string h = "h." + std::to_string(l) + ".";
        Gpt2LayerWeights& layer = w.layers[size_t(l)];
        layer.ln_1_w = source.read(h + "ln_1.weight", {C});
        layer.ln_1_b = source.read(h + "ln_1.bias", {C});
        layer.attn_w = source.read(h + "attn.c_attn.weight", {C, 3 * C});
        layer.attn_b = source.read(h + "attn.c_attn.bias", {3 * C});
        layer.attn_proj_w = source.read(h + "attn.c_proj.weight", {C, C});
        layer.attn_proj_b = source.read(h + "attn.c_proj.bias", {C});
        layer.ln_2_w = source.read(h + "ln_2.weight", {C});
        layer.ln_2_b = source.read(h + "ln_2.bias", {C});
        layer.fc_w = source.read(h + "mlp.c_fc.weight", {C, 4 * C});
        layer.fc_b = source.read(h + "mlp.c_fc.bias", {4 * C});
        layer.fc_proj_w = source.read(h + "mlp.c_proj.weight", {4 * C, C});
        layer.fc_proj_b = source.read(h + "mlp.c_proj.bias", {C});
        // h.N.attn.bias (the causal mask) and h.N.attn.masked_bias are buffers, not weights: never read.
    }
    w.ln_f_w = source.read("ln_f.weight", {C});
    w.ln_f_b = source.read("ln_f.bias", {C});

    // Saved heads are usually a copy of wte (tied); keeping one copy halves the largest allocation.
    if (source.stored_name("lm_head.weight") != nullptr) {
        std::vector<float> head = source.read("lm_head.weight", {V, C});
        if (std::memcmp(head.data(), w.wte.data(), head.size() * sizeof(float)) != 0) w.lm_head = std::move(head);
    }
    return w;
}

Gpt2Weights synthetic_gpt2(const Gpt2Config& config, uint64_t seed, float stddev) {
    config.validate();
    Gpt2Weights w;
    w.config = config;
    const size_t C = size_t(config.n_embd), V = size_t(config.vocab_size), P = size_t(config.n_positions);
    // Each tensor draws from its own stream, so changing n_layer leaves the embeddings' values alone.
    fill_normal(w.wte, V * C, seed, 0, 0.0f, stddev);
    fill_normal(w.wpe, P * C, seed, 1, 0.0f, stddev);
    fill_normal(w.ln_f_w, C, seed, 2, 1.0f, stddev);
    fill_normal(w.ln_f_b, C, seed, 3, 0.0f, stddev);
    w.layers.resize(size_t(config.n_layer));
    for (size_t l = 0; l < w.layers.size(); ++l) {
        Gpt2LayerWeights& layer = w.layers[l];
        const uint64_t s = 16 + 12 * uint64_t(l);
        fill_normal(layer.ln_1_w, C, seed, s + 0, 1.0f, stddev);
        fill_normal(layer.ln_1_b, C, seed, s + 1, 0.0f, stddev);
        fill_normal(layer.attn_w, C * 3 * C, seed, s + 2, 0.0f, stddev);
        fill_normal(layer.attn_b, 3 * C, seed, s + 3, 0.0f, stddev);
        fill_normal(layer.attn_proj_w, C * C, seed, s + 4, 0.0f, stddev);
        fill_normal(layer.attn_proj_b, C, seed, s + 5, 0.0f, stddev);
        fill_normal(layer.ln_2_w, C, seed, s + 6, 1.0f, stddev);
        fill_normal(layer.ln_2_b, C, seed, s + 7, 0.0f, stddev);
        fill_normal(layer.fc_w, C * 4 * C, seed, s + 8, 0.0f, stddev);
        fill_normal(layer.fc_b, 4 * C, seed, s + 9, 0.0f, stddev);
        fill_normal(layer.fc_proj_w, 4 * C * C, seed, s + 10, 0.0f, stddev);
        fill_normal(layer.fc_proj_b, C, seed, s + 11, 0.0f, stddev);
    }
    return w;
}

}  // namespace vkattn::model
