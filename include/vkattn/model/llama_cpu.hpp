// Llama-family forward pass on the CPU (Llama, Mistral, Qwen2), with a KV cache that holds only the Hkv
// key/value heads: the oracle of the GPU model and the `--backend cpu` path. Loading is separate
// (llama_weights.hpp); this file is only the math.
#pragma once

#include <vkattn/export.hpp>
#include <vkattn/model/attention_capture.hpp>
#include <vkattn/model/llama_weights.hpp>

#include <span>
#include <vector>

namespace vkattn::model {

class VKATTN_API LlamaCpu {
public:
    // Keeps a reference to w, not a copy: the caller keeps the weights alive and unchanged while this object
    // lives. Checks every tensor's size against the config (throws vkattn::Error naming the first bad one).
    // max_context bounds position() + new tokens; 0 means config.max_position_embeddings. The cache grows
    // as tokens come, so a model with a 128k context costs only what is used.
    explicit LlamaCpu(const LlamaWeights& w, int max_context = 0);
    LlamaCpu(LlamaWeights&&, int = 0) = delete;  // a temporary would dangle

    // Appends tokens [T] after the cached ones, at absolute positions position() .. position() + T - 1, and
    // returns their logits [T, V]. Throws vkattn::Error, leaving the cache untouched, on a token id outside
    // [0, V) or when the context would exceed max_context().
    std::vector<float> forward(std::span<const int> tokens);
    // The same, and the attention probabilities of `layers` into *attention (one per layer, in that order,
    // probs [H, T, pos + T]; see attention_capture.hpp), from the reference's own softmax of the queries and
    // keys the layer attends with. Also throws, leaving the cache untouched, on a layer out of range or twice.
    std::vector<float> forward(std::span<const int> tokens, std::span<const int> layers,
                               std::vector<LayerAttention>* attention);

    // Forgets the cached tokens; the next forward starts at position 0.
    void reset() { position_ = 0; }

    // Number of tokens in the KV cache: the position the next token will take.
    int position() const { return position_; }
    int max_context() const { return max_context_; }

private:
    void grow_cache(int needed);

    const LlamaWeights& w_;
    int max_context_ = 0;
    int position_ = 0;
    int capacity_ = 0;                         // rows per kv head allocated in the caches
    std::vector<float> inv_freq_;              // [D/2] rotary frequencies
    std::vector<std::vector<float>> k_cache_;  // L × [Hkv, capacity, D], keys after RoPE
    std::vector<std::vector<float>> v_cache_;  // L × [Hkv, capacity, D]
};

}  // namespace vkattn::model
