// The Llama-family forward pass (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) on a Vulkan device:
// weights uploaded once, activations and a KV cache of the Hkv key/value heads kept on the GPU, one submission and
// one wait per forward step (submit_select: the wait left to the caller, the next step recorded meanwhile).
// LlamaCpu (llama_cpu.hpp) is its oracle.
#pragma once

#include <vkattn/context.hpp>
#include <vkattn/device_info.hpp>
#include <vkattn/dtype.hpp>
#include <vkattn/export.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/attention_capture.hpp>
#include <vkattn/model/llama_weights.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vkattn::model {

struct LlamaGpuOptions {
    // Storage of the projection weights, the embeddings and the LM head. bf16 and f16 halve memory; bf16
    // (what most checkpoints ship) is kept as bf16 and widened exactly in the shader; f16 refuses a weight
    // past 65504 by name (it would become inf). Norm gains and biases stay f32.
    DType weights = DType::f32;
    bool fused_attention = true;  // fused flash attention; false: the three inspectable kernels
    // Most positions the KV cache holds (cached + new tokens); 0: config.max_position_embeddings. Either is
    // lowered to what one layer's cache can hold in a storage-buffer binding of the device. The cache starts
    // small and doubles as the context grows, so a 128k-context model costs only the positions it uses.
    int max_context = 0;
};

class VKATTN_API LlamaGpu {
public:
    // Throws vkattn::Error, before anything is read or allocated, when the config cannot run on the device:
    // a dtype it cannot store, a head dim the kernels do not take, or weights (with the first KV-cache
    // allocation) past the device heap, naming the bytes needed and available.
    static void check(const DeviceInfo& device, const LlamaConfig& config, const LlamaGpuOptions& options = {});
    // The positions the model can attend over on the device: options.max_context (or the config's), lowered
    // to what one layer's KV cache can hold in one storage-buffer binding.
    static int context_limit(const DeviceInfo& device, const LlamaConfig& config, const LlamaGpuOptions& options = {});

    // Checks the weights against the config, then that the model fits the device (throws vkattn::Error
    // naming the bytes needed and available before anything is uploaded), then uploads; the host copy may
    // be freed afterwards.
    LlamaGpu(Context& ctx, const LlamaWeights& weights, const LlamaGpuOptions& options = {});
    ~LlamaGpu();
    LlamaGpu(const LlamaGpu&) = delete;
    LlamaGpu& operator=(const LlamaGpu&) = delete;

    // Appends tokens [T] after the cached ones, at absolute positions position() .. position() + T - 1
    // (prefill, or one token at a time for decode), and returns logits [T, V] for every new position, or
    // [1, V] for the last one when all_logits is false. Throws vkattn::Error, leaving the cache untouched,
    // on a token id outside [0, V) or a context beyond max_context().
    std::vector<float> forward(std::span<const int> tokens, bool all_logits = true);
    // This rank's rows of a sequence split across processes, every layer's attention done by
    // shard.attention (LanguageModel::forward_shard). Uses the KV cache as scratch: empties it first and
    // leaves it empty.
    void forward_shard(const ShardForward& shard);
    // The same, and the attention probabilities of `layers` into *attention (one per layer, in that order,
    // probs [H, T, pos + T]; see attention_capture.hpp): those layers run the three inspectable kernels and
    // their softmax output is copied out within the step's command buffer. Also throws, leaving the cache
    // untouched, on a layer out of range or given twice, or a capture that does not fit the device.
    std::vector<float> forward(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                               std::vector<LayerAttention>* attention);
    // forward(tokens, false), returning only what `request` asks of the last position's logits, selected on the
    // device (LanguageModel::forward_select): the logits themselves never leave it.
    LogitSelection forward_select(std::span<const int> tokens, const LogitRequest& request);
    // forward_select({token}, request) submitted, and the next step recorded while the device runs it
    // (LanguageModel::submit_select). With the three-kernel attention it completes before returning.
    std::unique_ptr<PendingSelection> submit_select(int token, const LogitRequest& request);

    void reset();               // empties the KV cache; the next forward starts at position 0
    int position() const;       // tokens in the KV cache: the position the next token takes
    int max_context() const;
    const LlamaConfig& config() const;
    uint64_t weight_bytes() const;  // device bytes held by the weights
    uint64_t cache_bytes() const;   // device bytes held by the KV cache now (it grows with the context)

private:
    // forward, or forward_select when request is given (then *selection is the answer and no logits return).
    VKATTN_LOCAL std::vector<float> step(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                         std::vector<LayerAttention>* attention, const LogitRequest* request,
                                         LogitSelection* selection);
    struct VKATTN_LOCAL Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vkattn::model
