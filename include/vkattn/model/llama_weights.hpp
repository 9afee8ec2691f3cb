// Llama-family weights as plain host arrays in Hugging Face's layout (nn.Linear weights [out, in]), the
// list of tensors a config implies, and loading them from a model directory.
#pragma once

#include <vkattn/export.hpp>
#include <vkattn/model/llama_config.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vkattn::model {

// Letters as in llama_config.hpp. A bias is empty when the config has none.
struct LlamaLayerWeights {
    std::vector<float> input_layernorm;            // [C]
    std::vector<float> q_proj, q_bias;             // [H·D, C], [H·D]
    std::vector<float> k_proj, k_bias;             // [Hkv·D, C], [Hkv·D]
    std::vector<float> v_proj, v_bias;             // [Hkv·D, C], [Hkv·D]
    std::vector<float> o_proj, o_bias;             // [C, H·D], [C]
    std::vector<float> post_attention_layernorm;   // [C]
    std::vector<float> gate_proj, up_proj;         // [I, C], [I, C]
    std::vector<float> down_proj;                  // [C, I]
};

struct LlamaWeights {
    LlamaConfig config;
    std::vector<float> embed_tokens;               // [V, C]
    std::vector<LlamaLayerWeights> layers;         // L entries
    std::vector<float> norm;                       // [C] the final RMSNorm
    std::vector<float> lm_head;                    // [V, C]; empty when tied to embed_tokens

    const std::vector<float>& lm_head_weights() const { return config.tie_word_embeddings ? embed_tokens : lm_head; }
};

// One tensor of a checkpoint: its Hugging Face name and its shape as the config implies it.
struct LlamaTensor {
    std::string name;            // "model.layers.3.self_attn.k_proj.weight"
    std::vector<int64_t> shape;  // [Hkv·D, C]
};

// Every tensor of the config's *ForCausalLM in state-dict order: embed_tokens, each layer's, model.norm,
// then lm_head.weight unless the embeddings are tied (save_pretrained leaves a tied head out).
VKATTN_API std::vector<LlamaTensor> llama_tensors(const LlamaConfig& config);

// The array inside w that holds the listed tensor `name`. Throws vkattn::Error for a name not of this family.
VKATTN_API std::vector<float>& llama_tensor_values(LlamaWeights& w, const std::string& name);
VKATTN_API const std::vector<float>& llama_tensor_values(const LlamaWeights& w, const std::string& name);

// Throws vkattn::Error naming the first tensor whose size differs from its listed shape, or a bias the
// config does not have.
VKATTN_API void check_llama_weights(const LlamaWeights& w);

// Reads config.json and model.safetensors (or the shards that model.safetensors.index.json lists) from dir.
// F32, F16 and BF16 tensors are widened to float. Each error is one line naming the file and the tensor:
// a missing tensor, a shape other than the config's, layers beyond num_hidden_layers, a bias the config
// does not have. A tied checkpoint's lm_head.weight, if stored, is ignored as transformers ignores it.
VKATTN_API LlamaWeights load_llama_weights(const std::filesystem::path& dir);

// Weights of any Llama-family shape, uniform with standard deviation stddev (norm gains 1 + that),
// reproducible bit for bit from the seed on every platform; each tensor draws from its own stream.
VKATTN_API LlamaWeights synthetic_llama(const LlamaConfig& config, uint64_t seed, float stddev = 0.02f);

}  // namespace vkattn::model
