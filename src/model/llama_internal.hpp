// Llama-family pieces shared by the family's files (not public): its tensor table, written once, the rotary
// frequency table both forwards use, and the config reader the registry calls on a parsed config.json.
#pragma once

#include "model/schema.hpp"

#include <vkattn/model/llama_config.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vkattn::model {

// Every tensor of the config's *ForCausalLM in state-dict order with its role: embed_tokens, each layer's,
// model.norm, then lm_head.weight unless the embeddings are tied (save_pretrained leaves a tied head out).
// The loader, the synthetic weights, the size checks, the GPU upload and its memory estimate, the parameter
// count and the tests' checkpoint writer all read this one table.
inline std::vector<TensorSpec> llama_tensor_specs(const LlamaConfig& c) {
    const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
    const int64_t HD = int64_t(c.num_attention_heads) * c.head_dim, KD = int64_t(c.num_key_value_heads) * c.head_dim;
    std::vector<TensorSpec> out;
    out.push_back({"model.embed_tokens.weight", {V, C}, Role::embedding, -1});
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        out.push_back({p + "input_layernorm.weight", {C}, Role::norm_gain, l});
        out.push_back({p + "self_attn.q_proj.weight", {HD, C}, Role::weight, l});
        if (c.qkv_bias) out.push_back({p + "self_attn.q_proj.bias", {HD}, Role::bias, l});
        out.push_back({p + "self_attn.k_proj.weight", {KD, C}, Role::weight, l});
        if (c.qkv_bias) out.push_back({p + "self_attn.k_proj.bias", {KD}, Role::bias, l});
        out.push_back({p + "self_attn.v_proj.weight", {KD, C}, Role::weight, l});
        if (c.qkv_bias) out.push_back({p + "self_attn.v_proj.bias", {KD}, Role::bias, l});
        out.push_back({p + "self_attn.o_proj.weight", {C, HD}, Role::weight, l});
        if (c.o_bias) out.push_back({p + "self_attn.o_proj.bias", {C}, Role::bias, l});
        out.push_back({p + "mlp.gate_proj.weight", {I, C}, Role::weight, l});
        out.push_back({p + "mlp.up_proj.weight", {I, C}, Role::weight, l});
        out.push_back({p + "mlp.down_proj.weight", {C, I}, Role::weight, l});
        out.push_back({p + "post_attention_layernorm.weight", {C}, Role::norm_gain, l});
    }
    out.push_back({"model.norm.weight", {C}, Role::norm_gain, -1});
    if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, C}, Role::weight, -1});
    return out;
}

// inv_freq [D/2] from rope_theta and the llama3 rope_scaling, as transformers computes it (cpu/rope.hpp).
std::vector<float> llama_inv_freq(const LlamaConfig& c);

// A parsed config.json object to a checked config; errors start with `source` and name the field.
LlamaConfig llama_config_from_json(const nlohmann::json& doc, const std::string& source);

}  // namespace vkattn::model
