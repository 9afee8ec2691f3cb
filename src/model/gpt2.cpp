// GPT-2 as a model family: which configs it takes, its synthetic shapes, and the LanguageModel on both
// backends (Gpt2Gpu on vulkan, Gpt2Cpu on the CPU reference).
#include "model/family.hpp"
#include "model/gpt2_internal.hpp"
#include "model/gpt2_schema.hpp"
#include "model/json_file.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_cpu.hpp>
#include <vkattn/model/gpt2_gpu.hpp>
#include <vkattn/model/gpt2_loader.hpp>

#include <charconv>

namespace vkattn::model {
namespace {

// Synthetic GPT-2s: weights ~ N(0, 0.02) as GPT-2's initialisation, from a fixed seed so that every run of
// the same shape is the same model.
constexpr uint64_t kSyntheticSeed = 124;
constexpr float kSyntheticStddev = 0.02f;

uint64_t gpt2_parameters(const Gpt2Config& c) { return parameter_count(gpt2_tensor_specs(c)); }

class Gpt2Checkpoint final : public Checkpoint {
public:
    Gpt2Checkpoint(Gpt2Config config, std::filesystem::path dir) : config_(std::move(config)), dir_(std::move(dir)) {}

    std::vector<int> bos_, eos_;  // from config.json

    ModelInfo info() const override {
        ModelInfo i;
        i.n_layer = config_.n_layer;
        i.n_head = config_.n_head;
        i.n_kv_head = config_.n_head;
        i.head_dim = config_.head_dim();
        i.hidden = config_.n_embd;
        i.intermediate = 4 * config_.n_embd;
        i.vocab_size = config_.vocab_size;
        i.context_length = config_.n_positions;
        i.variant = "gpt2";
        const std::vector<TensorSpec> schema = gpt2_tensor_specs(config_);
        i.parameters = parameter_count(schema);
        for (const DType t : {DType::f32, DType::f16}) i.weight_bytes.push_back({t, device_bytes(schema, t)});
        i.cache_bytes_per_token = gpt2_cache_bytes_per_token(config_);
        return i;
    }

    // GPT-2's <|endoftext|> is both: config.json says 50256, the tokenizer knows it, and a model without
    // either (synthetic) uses the last id of its vocabulary, where GPT-2 keeps it.
    SpecialTokens special_tokens(const Tokenizer* tokenizer) const override {
        SpecialTokens s;
        s.eos = !eos_.empty() ? eos_ : std::vector<int>{tokenizer ? tokenizer->eos_id() : config_.vocab_size - 1};
        s.bos = !bos_.empty() ? bos_[0] : s.eos[0];
        return s;
    }

    std::unique_ptr<LanguageModel> load(Backend backend, const ModelOptions& options) const override {
        if (options.weights != DType::f32 && options.weights != DType::f16) {
            throw Error("GPT-2 weights are stored on the GPU as f32 or f16, not " +
                        std::string(dtype_name(options.weights)));
        }
        if (backend == Backend::cpu) {
            Gpt2Weights w = weights();
            gpt2_schema(config_, static_cast<Gpt2Params<std::vector<float>>&>(w),
                        [&](std::vector<float>& t, const TensorSpec& spec) { round_to_storage(t, spec, options.weights); });
            auto m = std::make_unique<CpuModel<Gpt2Cpu, Gpt2Weights>>(std::move(w), gpt2_parameters(config_));
            ModelAccess::describe(*m, cpu_description(options.weights));
            return m;
        }
        auto [own, ctx] = model_context(options);
        const Gpt2GpuOptions gpu{options.weights, options.fused_attention};
        Gpt2Gpu::check(ctx->device(), config_, gpu);  // before gigabytes of weights are read or made
        const std::string description = gpu_description(*ctx, options);
        auto m = std::make_unique<GpuModel<Gpt2Gpu>>(std::move(own), *ctx, weights(), gpu);
        ModelAccess::describe(*m, description);
        return m;
    }

private:
    Gpt2Weights weights() const {
        return dir_.empty() ? synthetic_gpt2(config_, kSyntheticSeed, kSyntheticStddev) : load_gpt2_weights(dir_);
    }

    Gpt2Config config_;
    std::filesystem::path dir_;  // empty: synthetic
};

std::unique_ptr<Checkpoint> from_config(const nlohmann::json& json, const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / "config.json";
    auto c = std::make_unique<Gpt2Checkpoint>(gpt2_config_from_json(json, path), dir);
    const int V = c->info().vocab_size;
    c->bos_ = read_token_ids(json, "bos_token_id", V, path);
    c->eos_ = read_token_ids(json, "eos_token_id", V, path);
    return c;
}

// "" (GPT-2 small) or "LAYERS,HEADS,EMBD"; anything that is not digits and commas is another family's.
std::unique_ptr<Checkpoint> synthetic(std::string_view args) {
    Gpt2Config config;
    if (!args.empty()) {
        if (args.find_first_not_of("0123456789,+- ") != std::string_view::npos) return nullptr;
        int dims[3] = {0, 0, 0};
        int n = 0;
        bool ok = true;
        size_t start = 0;
        while (ok && start <= args.size()) {
            const size_t end = std::min(args.find(',', start), args.size());
            const char* first = args.data() + start;
            const char* last = args.data() + end;
            int value = 0;
            const auto [ptr, ec] = std::from_chars(first, last, value);
            ok = n < 3 && first != last && ec == std::errc() && ptr == last && value > 0;
            if (ok) dims[n++] = value;
            start = end + 1;
        }
        if (!ok || n != 3) {
            throw Error("--model 'synthetic:" + std::string(args.substr(0, 40)) +
                        "': expected synthetic:LAYERS,HEADS,EMBD with three positive integers, e.g. synthetic:12,12,768");
        }
        config.n_layer = dims[0];
        config.n_head = dims[1];
        config.n_embd = dims[2];
    }
    config.validate();
    return std::make_unique<Gpt2Checkpoint>(config, std::filesystem::path());
}

}  // namespace

const Family& gpt2_family() {
    static const Family family{
        .name = "gpt2",
        .architectures = {"GPT2LMHeadModel", "GPT2Model"},
        .model_types = {"gpt2"},
        .from_config = from_config,
        .synthetic = synthetic,
        .synthetic_help = "synthetic:LAYERS,HEADS,EMBD (a GPT-2 of that shape)",
    };
    return family;
}

}  // namespace vkattn::model
