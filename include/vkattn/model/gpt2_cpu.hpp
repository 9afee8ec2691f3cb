// GPT-2 forward pass on the CPU from the cpu:: reference ops, with a KV cache: the oracle of the GPU model
// and the `--backend cpu` path. Layout and order follow llm.c's train_gpt2.c gpt2_forward.
#pragma once

#include <vkattn/export.hpp>
#include <vkattn/model/attention_capture.hpp>
#include <vkattn/model/gpt2_weights.hpp>

#include <span>
#include <vector>

namespace vkattn::model {

class VKATTN_API Gpt2Cpu {
public:
    // Keeps a reference to w, not a copy (GPT-2 small is 500 MB): the caller keeps the weights alive and
    // unchanged while this object lives. Allocates the KV cache for n_positions tokens up front.
    explicit Gpt2Cpu(const Gpt2Weights& w);
    Gpt2Cpu(Gpt2Weights&&) = delete;  // a temporary would dangle

    // Appends tokens [T] after the cached ones and returns their logits [T, V]. Throws vkattn::Error, leaving
    // the cache untouched, on a token id outside [0, V) or when the context would exceed n_positions.
    std::vector<float> forward(std::span<const int> tokens);
    // The same, and the attention probabilities of `layers` into *attention (one per layer, in that order,
    // probs [H, T, pos + T]; see attention_capture.hpp), from the reference's own softmax of the queries and
    // keys the layer attends with. Also throws, leaving the cache untouched, on a layer out of range or twice.
    std::vector<float> forward(std::span<const int> tokens, std::span<const int> layers,
                               std::vector<LayerAttention>* attention);

    // Forgets the cached tokens; the next forward starts at position 0.
    void reset();

    // Number of tokens in the KV cache: the position the next token will take.
    int position() const { return position_; }

private:
    const Gpt2Weights& w_;
    int position_ = 0;
    std::vector<std::vector<float>> k_cache_;  // n_layer × [H, P, D]
    std::vector<std::vector<float>> v_cache_;  // n_layer × [H, P, D]
};

}  // namespace vkattn::model
