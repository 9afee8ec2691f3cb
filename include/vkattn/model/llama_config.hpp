// Hyper-parameters of the Llama family of decoders (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)
// as Hugging Face's config.json writes them. Letters: C = hidden_size, I = intermediate_size, H = query
// heads, Hkv = key/value heads, D = head_dim, V = vocab_size, L = num_hidden_layers.
#pragma once

#include <vkattn/export.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

// The config.json model_type; the three share one architecture and differ in biases, windows and defaults.
enum class LlamaFamily { llama, mistral, qwen2 };

// "llama", "mistral" or "qwen2".
VKATTN_API const char* llama_family_name(LlamaFamily family);

// rope_scaling {"rope_type": "llama3", ...} of Llama 3.1 and later: frequencies whose wavelength exceeds
// original_max_position_embeddings / low_freq_factor are divided by factor, those below
// original_max_position_embeddings / high_freq_factor are kept, and the band between is interpolated.
struct Llama3RopeScaling {
    double factor = 8.0;
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    int original_max_position_embeddings = 8192;
};

struct VKATTN_API LlamaConfig {
    LlamaFamily family = LlamaFamily::llama;
    int hidden_size = 0;               // C
    int intermediate_size = 0;         // I
    int num_hidden_layers = 0;         // L
    int num_attention_heads = 0;       // H
    int num_key_value_heads = 0;       // Hkv; H % Hkv == 0, query head h reads kv head h / (H / Hkv)
    int head_dim = 0;                  // D; hidden_size / H unless config.json gives it
    int vocab_size = 0;                // V
    int max_position_embeddings = 0;   // the context length the model was trained for
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    std::optional<Llama3RopeScaling> rope_scaling;  // none: plain theta^(-2i/D) frequencies
    bool tie_word_embeddings = false;  // lm_head is embed_tokens
    bool qkv_bias = false;             // bias on q_proj, k_proj, v_proj (Llama attention_bias; always on Qwen2)
    bool o_bias = false;               // bias on o_proj (Llama attention_bias only)
    // Sliding window of each layer, [L], 0 for full causal attention; empty when no layer has one. A query
    // at position i sees the key at position j iff i - W < j <= i.
    std::vector<int> layer_window;
    std::optional<int> bos_token_id;
    std::vector<int> eos_token_ids;    // eos_token_id may be one id or a list; empty when null

    // The window W of layer l, or 0 for full causal attention.
    int window(int layer) const { return layer_window.empty() ? 0 : layer_window[size_t(layer)]; }
    // Throws vkattn::Error naming the first inconsistent field ("num_key_value_heads 3 does not divide ...").
    void validate() const;
};

// Parses config.json text; `source` names it in errors. Fields and defaults are those of transformers'
// LlamaConfig, MistralConfig and Qwen2Config, except that the shape fields (hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, vocab_size) are required: a file without them is not a saved
// model, and HF's 7B-sized defaults would only turn that into a confusing tensor shape error later.
// Anything that would change the math in a way the forward passes do not implement is refused by name
// (hidden_act other than silu, mlp_bias, a rope_type other than llama3). Throws vkattn::Error, one line.
VKATTN_API LlamaConfig parse_llama_config(std::string_view json_text, const std::string& source = "config.json");

// Reads and parses a config.json file (a regular file only); errors start with its path.
VKATTN_API LlamaConfig load_llama_config(const std::filesystem::path& config_json);

}  // namespace vkattn::model
