// GPT-2 weights from a Hugging Face directory (config.json + safetensors, single file or sharded), and
// seeded synthetic weights for tests and benchmarks that must not depend on a download.
#include <vkattn/model/gpt2_loader.hpp>

#include "model/gpt2_schema.hpp"
#include "model/json_file.hpp"
#include "model/safetensors.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
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

// The checkpoint's tensors, looked up by their name without "transformer." (saved with or without it).
class TensorSource {
public:
    explicit TensorSource(const std::filesystem::path& dir) : files_(dir) {}

    // The name as stored ("transformer.wte.weight" or "wte.weight"), or nullptr when neither exists.
    const std::string* stored_name(const std::string& name) const {
        for (const std::string& candidate : {"transformer." + name, name}) {
            const auto it = files_.names().find(candidate);
            if (it != files_.names().end()) return &it->first;
        }
        return nullptr;
    }

    // The tensor widened to float, after checking its shape against what the config implies.
    std::vector<float> read(const std::string& name, const Shape& expected) const {
        const std::string* stored = stored_name(name);
        return files_.read(stored ? *stored : name, expected,
                           stored ? "" : " (looked for 'transformer." + name + "' and '" + name + "')");
    }

    // One past the highest h.N present, so a config with the wrong n_layer is caught by name.
    int layer_count() const {
        int count = 0;
        for (const auto& [name, file] : files_.names()) count = std::max(count, layer_index(name) + 1);
        return count;
    }

private:
    CheckpointFiles files_;
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

void gpt2_check_sizes(const Gpt2Weights& w) {
    const Gpt2Config& c = w.config;
    c.validate();
    if (int64_t(w.layers.size()) != c.n_layer) {
        throw Error("GPT-2 weights have " + std::to_string(w.layers.size()) + " layers, config n_layer is " +
                    std::to_string(c.n_layer));
    }
    const auto check = [](const std::vector<float>& t, const TensorSpec& spec) {
        if (int64_t(t.size()) != spec.numel()) {
            throw Error("GPT-2 weight " + spec.name + " has " + std::to_string(t.size()) + " values, expected " +
                        std::to_string(spec.numel()) + " for " + shape_text(spec.shape));
        }
    };
    gpt2_schema(c, static_cast<const Gpt2Params<std::vector<float>>&>(w), check);
    if (!w.lm_head.empty()) check(w.lm_head, gpt2_lm_head_spec(c));
}

Gpt2Weights load_gpt2_weights(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) fail(dir, "is not a directory, expected a Hugging Face GPT-2 model directory");
    if (!std::filesystem::exists(dir / "config.json", ec)) fail(dir, "has no config.json");
    Gpt2Weights w;
    w.config = load_gpt2_config(dir / "config.json");
    const Gpt2Config& c = w.config;

    const TensorSource source(dir);
    const int layers_found = source.layer_count();
    if (layers_found != c.n_layer) {
        const std::string held = layers_found == 0 ? "no h.N layers"
                                                   : std::to_string(layers_found) + " layers (h.0 .. h." +
                                                         std::to_string(layers_found - 1) + ")";
        fail(dir, "config.json has n_layer " + std::to_string(c.n_layer) + " but the weights hold " + held);
    }

    gpt2_schema(c, static_cast<Gpt2Params<std::vector<float>>&>(w),
                [&](std::vector<float>& t, const TensorSpec& spec) { t = source.read(spec.name, spec.shape); });

    // Saved heads are usually a copy of wte (tied); keeping one copy halves the largest allocation.
    if (source.stored_name("lm_head.weight") != nullptr) {
        const TensorSpec head_spec = gpt2_lm_head_spec(c);
        std::vector<float> head = source.read(head_spec.name, head_spec.shape);
        if (std::memcmp(head.data(), w.wte.data(), head.size() * sizeof(float)) != 0) w.lm_head = std::move(head);
    }
    return w;
}

Gpt2Weights synthetic_gpt2(const Gpt2Config& config, uint64_t seed, float stddev) {
    config.validate();
    Gpt2Weights w;
    w.config = config;
    // Each tensor draws from its own stream (outside the blocks 0, 1, ...; block l's k-th tensor 16 + 12 l + k),
    // so changing n_layer leaves the other tensors' values alone.
    uint64_t outside = 0;
    std::vector<uint64_t> in_block(size_t(config.n_layer), 0);
    gpt2_schema(config, static_cast<Gpt2Params<std::vector<float>>&>(w), [&](std::vector<float>& t, const TensorSpec& spec) {
        const uint64_t stream = spec.layer < 0 ? outside++ : 16 + 12 * uint64_t(spec.layer) + in_block[size_t(spec.layer)]++;
        fill_normal(t, size_t(spec.numel()), seed, stream, spec.role == Role::norm_gain ? 1.0f : 0.0f, stddev);
    });
    return w;
}

}  // namespace vkattn::model
