// What a model family gives the registry (src/model/registry.cpp): how to recognise its config.json, the
// shape it implies, and how to build the model on each backend.
//
// Adding a family (say Llama): write src/model/llama*.cpp (config, schema, GPU forward via ops/, CPU forward
// via cpu/) with a `const Family& llama_family()` in namespace vkattn::model, and add FAMILY(llama) to
// VKATTN_MODEL_FAMILIES in registry.cpp. Nothing else (CLI, open_model, generate) names a family.
#pragma once

#include <vkattn/model/language_model.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

// One model as its config describes it, before any weight is read or made.
class Checkpoint {
public:
    virtual ~Checkpoint() = default;
    // The shape; `family`, `source` and `synthetic` are filled in by the registry.
    virtual ModelInfo info() const = 0;
    // Special tokens from config.json (bos_token_id, eos_token_id) or the family's convention.
    virtual SpecialTokens special_tokens(const Tokenizer* tokenizer) const = 0;
    // Builds the model: on vulkan first checks that its weights and KV cache fit the device (from the schema,
    // before reading or generating a weight), then reads or makes the weights and uploads them.
    virtual std::unique_ptr<LanguageModel> load(Backend backend, const ModelOptions& options) const = 0;
};

struct Family {
    std::string_view name;                        // "gpt2": ModelInfo::family and error messages
    std::vector<std::string_view> architectures;  // config.json `architectures` entries it runs
    std::vector<std::string_view> model_types;    // config.json `model_type` values it runs
    // config.json, already parsed into an object; dir is the model directory (for the weights). Throws
    // vkattn::Error naming the file and the field on anything it does not support.
    std::unique_ptr<Checkpoint> (*from_config)(const nlohmann::json& config, const std::filesystem::path& dir);
    // `synthetic` (args empty) or `synthetic:ARGS`: a checkpoint with seeded weights, or null when ARGS is not
    // this family's syntax (the registry then asks the next family). Throws when ARGS is its syntax but wrong.
    std::unique_ptr<Checkpoint> (*synthetic)(std::string_view args);
    std::string_view synthetic_help;              // e.g. "synthetic:LAYERS,HEADS,EMBD (a GPT-2 of that shape)"
};

// Sets the fields every LanguageModel carries (the friend of LanguageModel).
struct ModelAccess {
    // What a family says about how its model runs: "on vulkan (<device>), f16 weights, fused attention".
    static void describe(LanguageModel& m, std::string description) { m.description_ = std::move(description); }
    // A loaded model that attends over fewer positions than its config says (a device limit).
    static void limit_context(LanguageModel& m, int positions) { m.info_.context_length = positions; }
    static void finish(LanguageModel& m, ModelInfo info, SpecialTokens special, std::string description,
                       std::optional<Tokenizer> tokenizer) {
        m.info_ = std::move(info);
        m.special_ = std::move(special);
        m.description_ = std::move(description);
        m.tokenizer_ = std::move(tokenizer);
    }
};

// A family's GPU forward (Gpt2Gpu, LlamaGpu: a constructor from (Context&, weights, options), forward,
// forward_select, forward_shard, reset, position, weight_bytes) as a LanguageModel, holding the Context open_model made when the caller gave none.
template <typename Gpu>
class GpuModel final : public LanguageModel {
public:
    template <typename Weights, typename Options>
    GpuModel(std::unique_ptr<Context> own, Context& ctx, const Weights& w, const Options& o)
        : own_(std::move(own)), ctx_(&ctx), gpu_(ctx, w, o) {}

    std::vector<float> forward(std::span<const int> tokens, bool all_logits) override {
        return gpu_.forward(tokens, all_logits);
    }
    LogitSelection forward_select(std::span<const int> tokens, const LogitRequest& request) override {
        return gpu_.forward_select(tokens, request);
    }
    std::unique_ptr<PendingSelection> submit_select(int token, const LogitRequest& request) override {
        return gpu_.submit_select(token, request);
    }
    ForwardAttention forward_with_attention(std::span<const int> tokens, std::span<const int> layers,
                                            bool all_logits) override {
        ForwardAttention out;
        out.logits = gpu_.forward(tokens, all_logits, layers, &out.attention);
        return out;
    }
    void reset() override { gpu_.reset(); }
    int position() const override { return gpu_.position(); }
    void forward_shard(const ShardForward& shard) override { gpu_.forward_shard(shard); }
    Context* context() override { return ctx_; }
    uint64_t weight_bytes() const override { return gpu_.weight_bytes(); }

private:
    std::unique_ptr<Context> own_;  // declared first: destroyed after the model that runs on it
    Context* ctx_;
    Gpu gpu_;
};

// A family's CPU reference (Gpt2Cpu, LlamaCpu: built on a reference to weights whose config has vocab_size;
// forward returns logits for every new position) as a LanguageModel that owns its f32 weights.
template <typename Cpu, typename Weights>
class CpuModel final : public LanguageModel {
public:
    CpuModel(Weights w, uint64_t parameters) : w_(std::move(w)), cpu_(w_), parameters_(parameters) {}

    std::vector<float> forward(std::span<const int> tokens, bool all_logits) override {
        return last_rows(cpu_.forward(tokens), tokens.size(), all_logits);
    }
    ForwardAttention forward_with_attention(std::span<const int> tokens, std::span<const int> layers,
                                            bool all_logits) override {
        ForwardAttention out;
        out.logits = last_rows(cpu_.forward(tokens, layers, &out.attention), tokens.size(), all_logits);
        return out;
    }
    void reset() override { cpu_.reset(); }
    int position() const override { return cpu_.position(); }
    uint64_t weight_bytes() const override { return parameters_ * sizeof(float); }

private:
    // logits [T, V], or its last row alone unless all_logits.
    std::vector<float> last_rows(std::vector<float> logits, size_t T, bool all_logits) const {
        if (!all_logits && T > 1) logits.erase(logits.begin(), logits.end() - std::ptrdiff_t(w_.config.vocab_size));
        return logits;
    }

    Weights w_;  // the CPU forward keeps a reference to these
    Cpu cpu_;
    uint64_t parameters_;
};

// The Context a GPU model runs on: options.context, or a new one from options.context_options that the
// model will own (first) and that the family must hand to GpuModel.
inline std::pair<std::unique_ptr<Context>, Context*> model_context(const ModelOptions& options) {
    if (options.context != nullptr) return {nullptr, options.context};
    auto own = std::make_unique<Context>(options.context_options);
    Context* ctx = own.get();
    return {std::move(own), ctx};
}

// "on vulkan (<device>), bf16 weights, fused attention"
inline std::string gpu_description(const Context& ctx, const ModelOptions& options) {
    return "on vulkan (" + ctx.device().name + "), " + std::string(dtype_name(options.weights)) + " weights, " +
           (options.fused_attention ? "fused" : "naive") + " attention";
}

// "on the cpu reference, f32 weights", or "..., bf16-rounded weights in f32 arithmetic".
inline std::string cpu_description(DType weights) {
    if (weights == DType::f32) return "on the cpu reference, f32 weights";
    return "on the cpu reference, " + std::string(dtype_name(weights)) + "-rounded weights in f32 arithmetic";
}

// Refuses, before anything is allocated, a model whose device bytes exceed the device heap: names the model,
// the bytes needed (weights and KV cache) and what the device has.
void check_fits_device(const DeviceInfo& device, const std::string& what, uint64_t weight_bytes, DType weights,
                       uint64_t cache_bytes);

}  // namespace vkattn::model
