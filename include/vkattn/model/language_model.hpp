// Any supported decoder-only language model behind one interface, on the GPU or the CPU reference, and
// open_model(), which reads a Hugging Face directory's config.json and picks the family that runs it.
#pragma once

#include <vkattn/context.hpp>
#include <vkattn/dtype.hpp>
#include <vkattn/export.hpp>
#include <vkattn/model/attention_capture.hpp>
#include <vkattn/model/sampler.hpp>
#include <vkattn/model/tokenizer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vkattn::model {

enum class Backend {
    vulkan,  // the GPU model on a Vulkan device
    cpu,     // the CPU reference (plain loops, f32 weights): the oracle of the GPU model
};

// "vulkan" or "cpu" to a Backend; throws vkattn::Error naming both choices on anything else.
VKATTN_API Backend parse_backend(const std::string& name);

struct ModelOptions {
    // GPU storage of the matmul weights and embeddings: f32, f16 (halves memory), or bf16 (Llama family; what
    // most checkpoints ship, so exact for them). The CPU reference computes in f32 with the weights rounded
    // the same way, so that both backends run the same numbers.
    DType weights = DType::f32;
    bool fused_attention = true;     // GPU attention: fused flash kernel; false: the three inspectable kernels
    // The GPU to run on. Null: open_model creates a Context from context_options, which the model owns.
    Context* context = nullptr;
    ContextOptions context_options;  // device choice, validation, profiling of the model's own Context
};

// The shape of a model as its config gives it (before any weight is read). Letters: C hidden width (n_embd),
// V vocabulary, P the most positions, H query heads, Hkv key/value heads.
struct VKATTN_API ModelInfo {
    std::string family;         // registry name of the family, e.g. "gpt2" or "llama"
    std::string variant;        // the config's model_type within the family: "gpt2", "llama", "mistral", "qwen2"
    std::string source;         // what was opened: a directory, or the synthetic spec
    bool synthetic = false;     // seeded random weights, no tokenizer
    int n_layer = 0;
    int n_head = 0;             // H
    int n_kv_head = 0;          // Hkv (== H without grouped-query attention)
    int head_dim = 0;           // D
    int hidden = 0;             // C
    int intermediate = 0;       // the MLP's inner width
    int vocab_size = 0;         // V
    // P: positions the model can attend over (config.json's; an opened GPU model may lower it to what one
    // layer's KV cache can hold in a storage-buffer binding of its device).
    int context_length = 0;
    int window = 0;             // the widest sliding window of any layer; 0 when every layer sees all positions
    uint64_t parameters = 0;    // number of weights (a tied LM head counted once)
    std::string tokenizer;      // the tokenizer files found: "tokenizer.json", "vocab.json + merges.txt", or ""
    // Device bytes of the weights for each storage dtype the family's GPU model takes.
    struct WeightBytes {
        DType dtype;
        uint64_t bytes;
    };
    std::vector<WeightBytes> weight_bytes;
    uint64_t cache_bytes_per_token = 0;  // KV-cache bytes one position takes on the GPU, all layers
    std::string summary() const;  // "gpt2: 12 layers, 12 heads, C = 768, V = 50257, P = 1024, 124.4M parameters"
};

// The ids the tokenizer and the model agree on, as config.json (or the tokenizer) gives them.
struct SpecialTokens {
    std::optional<int> bos;  // prepended to a prompt by families that expect it
    std::vector<int> eos;    // any of these ends generation
};

// One layer's attention in a sequence-parallel forward (LanguageModel::forward_shard), which the model hands
// out because it needs keys and values that other processes hold: ring attention over MPI ranks implements it
// (vkattn/ring.hpp). Shapes: this rank's `rows` rows, in the order of ShardForward::runs.
struct ShardLayer {
    int layer = 0;
    int heads = 0;       // H
    int kv_heads = 0;    // Hkv (divides H)
    int head_dim = 0;    // D
    int rows = 0;        // this rank's rows
    int window = 0;      // the layer's sliding window; 0: none
    float scale = 0;     // the softmax scale, 1/sqrt(D)
};
class VKATTN_API ShardAttention {
public:
    virtual ~ShardAttention() = default;
    // out [H, rows, D] = causal softmax(scale · q Kᵀ + window) V for this rank's query rows q [H, rows, D],
    // where K and V are the keys and values of every rank (k and v [Hkv, rows, D] are this rank's), the mask
    // taken over the positions of the whole sequence. f32. Collective: every rank calls it for every layer,
    // in order.
    virtual void attend(const ShardLayer& layer, std::span<const float> q, std::span<const float> k,
                        std::span<const float> v, std::span<float> out) = 0;
};

// This rank's part of a forward over a sequence split by position across processes.
struct ShardForward {
    std::span<const int> tokens;               // this rank's tokens: the runs' tokens, concatenated
    std::vector<std::pair<int, int>> runs;     // [begin, end) positions of each run, in order
    ShardAttention* attention = nullptr;       // every layer's attention over the whole sequence
    // Receives this rank's logits in order: rows [row0, row0 + n) as [n, V] f32, in chunks of rows.
    std::function<void(int row0, std::span<const float> logits)> logits;
};

// What forward_with_attention returns.
struct ForwardAttention {
    std::vector<float> logits;              // as forward returns them: [T, V], or [1, V] without all_logits
    std::vector<LayerAttention> attention;  // one per layer asked for, in that order; probs [H, T, pos + T]
};

// A decode step on its way through the device (LanguageModel::submit_select).
class VKATTN_API PendingSelection {
public:
    virtual ~PendingSelection() = default;  // completes the step if wait() was not called
    // The step's selection, waiting for the device if it has not finished. Throws vkattn::Error on a device error.
    virtual LogitSelection wait() = 0;
};

class VKATTN_API LanguageModel {
public:
    virtual ~LanguageModel() = default;

    // Appends tokens [T] after the cached ones (prefill, or one token at a time for decode) and returns
    // logits [T, V] for every new position, or [1, V] for the last one when all_logits is false. Throws
    // vkattn::Error, leaving the cache untouched, on a token id outside [0, V) or a context beyond P.
    virtual std::vector<float> forward(std::span<const int> tokens, bool all_logits = true) = 0;
    // forward, and the attention probabilities of each of `layers` (indices in [0, n_layer), any order, each at
    // most once; empty: none) for the step's T queries over all pos + T keys, cached ones included (see
    // attention_capture.hpp for the shape and the memory it takes). On vulkan the captured layers run the three
    // inspectable kernels, whatever ModelOptions::fused_attention says; the other layers are unchanged. Throws
    // vkattn::Error, leaving the cache untouched, on what forward refuses, a layer out of range or given twice,
    // or a capture that does not fit the device; and on a model type that cannot capture (the base class).
    // forward(tokens, false), returning only what `request` asks of the last position's logits [V]
    // (Sampler::request): on vulkan a kernel selects it on the device, so that a decode step reads back a few
    // hundred bytes instead of V floats. Throws vkattn::Error as forward does, and, leaving the cache untouched,
    // on a request out of range (k outside [1, Sampler::kMaxCandidates], more than Sampler::kMaxSkipped skip
    // ids, or skip ids not ascending, distinct and in [0, V)). An empty tokens span is refused.
    virtual LogitSelection forward_select(std::span<const int> tokens, const LogitRequest& request);
    // forward_select({token}, request) started and returned from before it completes: a decode loop samples step
    // n from wait() while the device runs it. On the GPU families the step's ~200-300 dispatches are recorded once
    // and replayed at each position (recorded again, during the step before, only when the attention's plan or
    // the cache's size changes), so the host's part of a step is a few commands (generate() decodes this way). position() counts the token on return. Throws vkattn::Error, leaving the
    // cache untouched, as forward_select does. Any other call on the model completes the step first (its
    // wait() then returns at once). The base class runs forward_select before returning.
    virtual std::unique_ptr<PendingSelection> submit_select(int token, const LogitRequest& request);
    virtual ForwardAttention forward_with_attention(std::span<const int> tokens, std::span<const int> layers,
                                                    bool all_logits = true);
    virtual void reset() = 0;          // empties the KV cache
    virtual int position() const = 0;  // tokens in the KV cache: the position of the next token

    // Sequence parallelism: runs this rank's rows of a longer sequence through every layer, the attention
    // computed by shard.attention (which sees the other ranks' keys and values), and hands the logits of its
    // rows to shard.logits. Empties the KV cache first and leaves it empty. The runs must be non-empty,
    // ascending, disjoint and within the context length. Throws vkattn::Error on bad input, and on the cpu
    // backend (sequence-parallel runs are for devices).
    virtual void forward_shard(const ShardForward& shard);

    const ModelInfo& info() const { return info_; }
    int vocab_size() const { return info_.vocab_size; }
    int context_length() const { return info_.context_length; }
    // The model directory's tokenizer; null for synthetic models and directories without tokenizer files.
    const Tokenizer* tokenizer() const { return tokenizer_ ? &*tokenizer_ : nullptr; }
    const SpecialTokens& special_tokens() const { return special_; }
    // "gpt2 on vulkan (<device>), f32 weights, fused attention", or "gpt2 on the cpu reference, f32 weights".
    const std::string& description() const { return description_; }
    // The Context the GPU model runs on (for profiling timings and memory); null on the CPU backend.
    virtual Context* context() { return nullptr; }
    // Bytes the weights take where they are stored (device memory on vulkan, host memory on cpu).
    virtual uint64_t weight_bytes() const = 0;

protected:
    ModelInfo info_;
    SpecialTokens special_;
    std::string description_;
    std::optional<Tokenizer> tokenizer_;

    friend struct ModelAccess;  // the family code that fills the fields above (src/model/family.hpp)
};

// The shape of what spec names, reading only config.json: a Hugging Face model directory, or
// `synthetic[:ARGS]` (see open_model). Throws vkattn::Error naming the file and field on anything wrong.
VKATTN_API ModelInfo inspect_model(const std::string& spec);

// Opens a model for inference.
//   spec: a Hugging Face directory (config.json, model.safetensors or its sharded index, and the
//         tokenizer files when present), the family picked by config.json's `architectures`, then
//         `model_type`; or `synthetic` (GPT-2 small's shape), `synthetic:LAYERS,HEADS,EMBD` (a GPT-2 of
//         that shape) or `synthetic:NAME` (a published model's shape: smollm2-135m, qwen2.5-0.5b,
//         llama-3.2-1b, ...; model_families() and the error for an unknown name list them), with weights
//         from a fixed seed (standard deviation 0.02) so that every run is the same model.
// On vulkan, checks that the weights and the KV cache fit the device before any weight is read or made.
// Throws vkattn::Error with one line naming what was expected and what came.
VKATTN_API std::unique_ptr<LanguageModel> open_model(const std::string& spec, Backend backend, const ModelOptions& options = {});

// The registered families, e.g. {"gpt2", "llama"}.
VKATTN_API std::vector<std::string> model_families();

}  // namespace vkattn::model
