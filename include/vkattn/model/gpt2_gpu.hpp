// The GPT-2 forward pass on a Vulkan device: weights uploaded once, activations and the KV cache kept on the
// GPU, one submission and one wait per forward step (submit_select: the wait left to the caller, the next step
// recorded meanwhile).
#pragma once

#include <vkattn/context.hpp>
#include <vkattn/dtype.hpp>
#include <vkattn/export.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/attention_capture.hpp>
#include <vkattn/model/gpt2_weights.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vkattn::model {

struct Gpt2GpuOptions {
    DType weights = DType::f32;   // storage of the matmul weights and embeddings (f16 halves memory)
    bool fused_attention = true;  // fused flash attention; false: the three inspectable kernels
};

class VKATTN_API Gpt2Gpu {
public:
    // Uploads the weights; the host copy may be freed afterwards. Throws vkattn::Error as check() does.
    // The model shares the Context's device: it may outlive the Context.
    Gpt2Gpu(Context& ctx, const Gpt2Weights& weights, const Gpt2GpuOptions& options = {});
    // Everything the constructor checks that the weights' values do not matter to, so it can run before any
    // weight is read: the config, the head dim the kernels take, f16 support, and that the weights and the
    // KV cache fit the device (vkattn::Error naming what is needed and what the device has).
    static void check(const DeviceInfo& device, const Gpt2Config& config, const Gpt2GpuOptions& options = {});
    ~Gpt2Gpu();
    Gpt2Gpu(const Gpt2Gpu&) = delete;
    Gpt2Gpu& operator=(const Gpt2Gpu&) = delete;

    // Appends tokens [T] after the cached ones (prefill, or one token at a time for decode) and returns
    // logits [T, V] for every new position, or [1, V] for the last one when all_logits is false.
    // Throws vkattn::Error, leaving the cache untouched, on a token id outside [0, V) or a context beyond
    // n_positions.
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

    void reset();               // empties the KV cache
    int position() const;       // tokens in the KV cache
    const Gpt2Config& config() const;
    uint64_t weight_bytes() const;  // device bytes held by the weights

private:
    // forward, or forward_select when request is given (then *selection is the answer and no logits return).
    VKATTN_LOCAL std::vector<float> step(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                         std::vector<LayerAttention>* attention, const LogitRequest* request,
                                         LogitSelection* selection);
    struct VKATTN_LOCAL Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vkattn::model
