// GPT-2 hyper-parameters and weights as plain host arrays (the layout of Hugging Face's GPT2LMHeadModel).
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vkattn::model {

// config.json of model_type "gpt2". Letters: C = n_embd, V = vocab_size, P = n_positions.
struct VKATTN_API Gpt2Config {
    int n_embd = 768;
    int n_head = 12;
    int n_layer = 12;
    int n_positions = 1024;
    int vocab_size = 50257;
    float layer_norm_epsilon = 1e-5f;
    std::string activation_function = "gelu_new";

    int head_dim() const { return n_embd / n_head; }
    // Throws vkattn::Error naming the first inconsistent field (n_embd not divisible by n_head, ...).
    void validate() const;
};

// GPT-2's parameters, generic over what holds one tensor: host floats here (Gpt2Weights), device buffers in
// the GPU model. Names, shapes and roles are in one table, src/model/gpt2_schema.hpp.
// Conv1D layout as stored by Hugging Face: y = x · W + b with W [in, out].
template <typename T>
struct Gpt2LayerParams {
    T ln_1_w, ln_1_b;            // [C], [C]
    T attn_w, attn_b;            // [C, 3C], [3C]   fused Q|K|V projection
    T attn_proj_w, attn_proj_b;  // [C, C], [C]
    T ln_2_w, ln_2_b;            // [C], [C]
    T fc_w, fc_b;                // [C, 4C], [4C]
    T fc_proj_w, fc_proj_b;      // [4C, C], [C]
};

template <typename T>
struct Gpt2Params {
    T wte;                                   // [V, C] token embedding, also the tied LM head
    T wpe;                                   // [P, C] position embedding
    std::vector<Gpt2LayerParams<T>> layers;  // n_layer entries
    T ln_f_w, ln_f_b;                        // [C], [C]
};

using Gpt2LayerWeights = Gpt2LayerParams<std::vector<float>>;

struct Gpt2Weights : Gpt2Params<std::vector<float>> {
    Gpt2Config config;
    std::vector<float> lm_head;  // [V, C]; empty when tied to wte (the usual case)

    const std::vector<float>& lm_head_weights() const { return lm_head.empty() ? wte : lm_head; }
};

}  // namespace vkattn::model
