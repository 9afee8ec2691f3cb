// The Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM: Llama 2/3, TinyLlama, SmolLM,
// SmolLM2, Mistral, Qwen2, Qwen2.5) as a model family: which configs it takes, its synthetic presets with the
// real shapes, and the LanguageModel on both backends (LlamaGpu on vulkan, LlamaCpu on the CPU reference).
#include "model/family.hpp"
#include "model/llama_internal.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/llama_cpu.hpp>
#include <vkattn/model/llama_gpu.hpp>
#include <vkattn/model/llama_weights.hpp>

#include <algorithm>

namespace vkattn::model {
namespace {

// Synthetic models: uniform weights of standard deviation 0.02 (norm gains around 1) from a fixed seed, so
// that every run of a preset is the same model.
constexpr uint64_t kSyntheticSeed = 124;
constexpr float kSyntheticStddev = 0.02f;

uint64_t llama_parameters(const LlamaConfig& c) { return parameter_count(llama_tensor_specs(c)); }

class LlamaCheckpoint final : public Checkpoint {
public:
    LlamaCheckpoint(LlamaConfig config, std::filesystem::path dir) : config_(std::move(config)), dir_(std::move(dir)) {}

    ModelInfo info() const override {
        ModelInfo i;
        i.n_layer = config_.num_hidden_layers;
        i.n_head = config_.num_attention_heads;
        i.n_kv_head = config_.num_key_value_heads;
        i.head_dim = config_.head_dim;
        i.hidden = config_.hidden_size;
        i.intermediate = config_.intermediate_size;
        i.vocab_size = config_.vocab_size;
        i.context_length = config_.max_position_embeddings;
        i.variant = llama_family_name(config_.family);
        for (int l = 0; l < config_.num_hidden_layers; ++l) i.window = std::max(i.window, config_.window(l));
        const std::vector<TensorSpec> schema = llama_tensor_specs(config_);
        i.parameters = parameter_count(schema);
        for (const DType t : {DType::f32, DType::f16, DType::bf16}) i.weight_bytes.push_back({t, device_bytes(schema, t)});
        i.cache_bytes_per_token = uint64_t(config_.num_hidden_layers) * 2 * uint64_t(config_.num_key_value_heads) *
                                  uint64_t(config_.head_dim) * 4;
        return i;
    }

    // config.json's ids first (Llama 3 lists several eos ids there), then the tokenizer's.
    SpecialTokens special_tokens(const Tokenizer* tokenizer) const override {
        SpecialTokens s;
        s.bos = config_.bos_token_id;
        if (!s.bos && tokenizer) s.bos = tokenizer->bos_id();
        s.eos = config_.eos_token_ids;
        if (tokenizer) {
            for (const int id : tokenizer->eos_ids()) {
                if (std::find(s.eos.begin(), s.eos.end(), id) == s.eos.end()) s.eos.push_back(id);
            }
        }
        return s;
    }

    std::unique_ptr<LanguageModel> load(Backend backend, const ModelOptions& options) const override {
        if (backend == Backend::cpu) {
            LlamaWeights w = weights();
            for (const TensorSpec& t : llama_tensor_specs(config_)) {
                round_to_storage(llama_tensor_values(w, t.name), t, options.weights);
            }
            auto m = std::make_unique<CpuModel<LlamaCpu, LlamaWeights>>(std::move(w), llama_parameters(config_));
            ModelAccess::describe(*m, cpu_description(options.weights));
            return m;
        }
        auto [own, ctx] = model_context(options);
        const LlamaGpuOptions gpu{options.weights, options.fused_attention, 0};
        LlamaGpu::check(ctx->device(), config_, gpu);  // before gigabytes of weights are read or made
        const int limit = LlamaGpu::context_limit(ctx->device(), config_, gpu);
        const std::string description = gpu_description(*ctx, options);
        auto m = std::make_unique<GpuModel<LlamaGpu>>(std::move(own), *ctx, weights(), gpu);
        ModelAccess::describe(*m, description);
        ModelAccess::limit_context(*m, limit);
        return m;
    }

private:
    LlamaWeights weights() const {
        return dir_.empty() ? synthetic_llama(config_, kSyntheticSeed, kSyntheticStddev) : load_llama_weights(dir_);
    }

    LlamaConfig config_;
    std::filesystem::path dir_;  // empty: synthetic
};

std::unique_ptr<Checkpoint> from_config(const nlohmann::json& json, const std::filesystem::path& dir) {
    return std::make_unique<LlamaCheckpoint>(llama_config_from_json(json, (dir / "config.json").string()), dir);
}

// The shapes of the published checkpoints (their config.json files), so that benchmarks need no download.
struct Preset {
    std::string_view name;
    LlamaConfig config;
};

LlamaConfig shape(LlamaFamily family, int hidden, int intermediate, int layers, int heads, int kv_heads, int vocab,
                  int positions, double theta, double eps, bool tied) {
    LlamaConfig c;
    c.family = family;
    c.hidden_size = hidden;
    c.intermediate_size = intermediate;
    c.num_hidden_layers = layers;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.head_dim = hidden / heads;
    c.vocab_size = vocab;
    c.max_position_embeddings = positions;
    c.rope_theta = theta;
    c.rms_norm_eps = eps;
    c.tie_word_embeddings = tied;
    c.qkv_bias = family == LlamaFamily::qwen2;
    return c;
}

const std::vector<Preset>& presets() {
    static const std::vector<Preset> all = [] {
        using F = LlamaFamily;
        std::vector<Preset> p = {
            {"smollm2-135m", shape(F::llama, 576, 1536, 30, 9, 3, 49152, 8192, 100000, 1e-5, true)},
            {"smollm2-360m", shape(F::llama, 960, 2560, 32, 15, 5, 49152, 8192, 100000, 1e-5, true)},
            {"smollm2-1.7b", shape(F::llama, 2048, 8192, 24, 32, 32, 49152, 8192, 130000, 1e-5, true)},
            {"qwen2.5-0.5b", shape(F::qwen2, 896, 4864, 24, 14, 2, 151936, 32768, 1000000, 1e-6, true)},
            {"qwen2.5-1.5b", shape(F::qwen2, 1536, 8960, 28, 12, 2, 151936, 32768, 1000000, 1e-6, true)},
            {"tinyllama-1.1b", shape(F::llama, 2048, 5632, 22, 32, 4, 32000, 2048, 10000, 1e-5, false)},
            {"llama-3.2-1b", shape(F::llama, 2048, 8192, 16, 32, 8, 128256, 131072, 500000, 1e-5, true)},
            {"llama-3.2-3b", shape(F::llama, 3072, 8192, 28, 24, 8, 128256, 131072, 500000, 1e-5, true)},
            {"mistral-7b", shape(F::mistral, 4096, 14336, 32, 32, 8, 32000, 32768, 10000, 1e-5, false)},
        };
        for (Preset& x : p) {
            if (x.name.starts_with("llama-3.2")) x.config.rope_scaling = Llama3RopeScaling{32.0, 1.0, 4.0, 8192};
            if (x.name == "mistral-7b") x.config.layer_window.assign(32, 4096);  // Mistral 7B v0.1
            x.config.validate();
        }
        return p;
    }();
    return all;
}

// A preset's name; null for anything else, which the registry then reports with every family's syntax.
std::unique_ptr<Checkpoint> synthetic(std::string_view args) {
    for (const Preset& p : presets()) {
        if (p.name == args) return std::make_unique<LlamaCheckpoint>(p.config, std::filesystem::path());
    }
    return nullptr;
}

const std::string& synthetic_help() {
    static const std::string help = [] {
        std::string names;
        for (const Preset& p : presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
        return "synthetic:NAME (the shape of a published Llama-family model: " + names + ")";
    }();
    return help;
}

}  // namespace

const Family& llama_family() {
    static const Family family{
        .name = "llama",
        .architectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"},
        .model_types = {"llama", "mistral", "qwen2"},
        .from_config = from_config,
        .synthetic = synthetic,
        .synthetic_help = synthetic_help(),
    };
    return family;
}

}  // namespace vkattn::model
