#include <vkattn/model/llama_cpu.hpp>

#include "model/llama_internal.hpp"
#include "model/attention_capture.hpp"
#include "cpu/add.hpp"
#include "cpu/attention.hpp"
#include "cpu/matmul.hpp"
#include "cpu/rmsnorm.hpp"
#include "cpu/rope.hpp"
#include "cpu/swiglu.hpp"
#include "vkattn/error.hpp"

#include <algorithm>
#include <optional>
#include <string>

namespace vkattn::model {
namespace {

// out [M, N] = x [M, K] · wᵀ + bias, w [N, K] as nn.Linear stores it, bias [N] or empty.
void linear(int M, int K, int N, const float* x, const std::vector<float>& w, const std::vector<float>& bias, float* out) {
    cpu::matmul_transposed_b(M, K, N, x, w.data(), out);
    if (bias.empty()) return;
    for (int m = 0; m < M; ++m) cpu::add(N, out + static_cast<long>(m) * N, bias.data(), out + static_cast<long>(m) * N);
}

}  // namespace

std::vector<float> llama_inv_freq(const LlamaConfig& c) {
    std::optional<cpu::Llama3RopeScaling> scaling;
    if (const auto& s = c.rope_scaling) {
        scaling = cpu::Llama3RopeScaling{s->factor, s->low_freq_factor, s->high_freq_factor,
                                         s->original_max_position_embeddings};
    }
    return cpu::rope_inv_freq(c.head_dim, c.rope_theta, scaling);
}

LlamaCpu::LlamaCpu(const LlamaWeights& w, int max_context) : w_(w) {
    check_llama_weights(w);
    const LlamaConfig& c = w.config;
    if (max_context < 0) throw Error("max_context is " + std::to_string(max_context) + ", expected 0 (the model's) or more");
    max_context_ = max_context > 0 ? max_context : c.max_position_embeddings;
    inv_freq_ = llama_inv_freq(c);
    k_cache_.resize(size_t(c.num_hidden_layers));
    v_cache_.resize(size_t(c.num_hidden_layers));
}

void LlamaCpu::grow_cache(int needed) {
    if (needed <= capacity_) return;
    // Doubling keeps token-by-token decoding linear overall; each kv head's rows stay contiguous, the layout
    // cpu::attention reads.
    const int capacity = std::min(max_context_, std::max({needed, 2 * capacity_, 64}));
    const long Hkv = w_.config.num_key_value_heads, D = w_.config.head_dim;
    for (auto* caches : {&k_cache_, &v_cache_}) {
        for (std::vector<float>& old : *caches) {
            std::vector<float> grown(size_t(Hkv * capacity * D));  // [Hkv, capacity, D]
            for (long g = 0; g < Hkv && !old.empty(); ++g) {
                std::copy_n(old.begin() + g * capacity_ * D, long(position_) * D, grown.begin() + g * capacity * D);
            }
            old = std::move(grown);
        }
    }
    capacity_ = capacity;
}

std::vector<float> LlamaCpu::forward(std::span<const int> tokens) { return forward(tokens, {}, nullptr); }

std::vector<float> LlamaCpu::forward(std::span<const int> tokens, std::span<const int> layers,
                                     std::vector<LayerAttention>* attention) {
    const LlamaConfig& cfg = w_.config;
    const int T = static_cast<int>(tokens.size());
    const int C = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
    const int H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, D = cfg.head_dim;
    const int HD = H * D, KD = Hkv * D;
    const int group = H / Hkv;  // query heads per kv head
    const float eps = static_cast<float>(cfg.rms_norm_eps);
    const int pos0 = position_;

    // Validate everything before touching the cache, so a bad call leaves the model usable.
    for (int t = 0; t < T; ++t) {
        if (tokens[t] < 0 || tokens[t] >= V) {
            throw Error("token " + std::to_string(tokens[t]) + " at index " + std::to_string(t) +
                        " is out of range: the vocabulary has V = " + std::to_string(V) + " tokens");
        }
    }
    if (static_cast<long>(pos0) + T > max_context_) {
        throw Error("context of " + std::to_string(static_cast<long>(pos0) + T) + " tokens (" + std::to_string(pos0) +
                    " cached + " + std::to_string(T) + " new) exceeds the maximum context of " + std::to_string(max_context_));
    }
    CpuAttentionCapture capture(attention ? layers : std::span<const int>{}, cfg.num_hidden_layers, H, T, pos0 + T);
    if (T == 0) return {};
    grow_cache(pos0 + T);
    const int Lk = pos0 + T;  // keys after this call: the cached ones and the new ones
    const long P = capacity_;

    const long TC = static_cast<long>(T) * C;
    std::vector<float> x(TC);                               // [T, C] residual stream
    std::vector<float> h(TC);                               // [T, C] RMSNorm output
    std::vector<float> q(static_cast<long>(T) * HD);        // [T, H, D], then RoPE
    std::vector<float> k(static_cast<long>(T) * KD);        // [T, Hkv, D], then RoPE
    std::vector<float> v(static_cast<long>(T) * KD);        // [T, Hkv, D]
    std::vector<float> q_heads(q.size());                   // [H, T, D]
    std::vector<float> att_heads(q.size());                 // [H, T, D] attention output per head
    std::vector<float> att(q.size());                       // [T, H·D] heads side by side again
    std::vector<float> proj(TC);                            // [T, C] o_proj or down_proj output
    std::vector<float> gate(static_cast<long>(T) * I);      // [T, I] gate_proj, then silu(gate) · up
    std::vector<float> up(static_cast<long>(T) * I);        // [T, I]
    std::vector<float> logits(static_cast<long>(T) * V);    // [T, V]

    for (int t = 0; t < T; ++t) {
        std::copy_n(w_.embed_tokens.begin() + static_cast<long>(tokens[t]) * C, C, x.begin() + static_cast<long>(t) * C);
    }

    for (int l = 0; l < cfg.num_hidden_layers; ++l) {
        const LlamaLayerWeights& lw = w_.layers[size_t(l)];
        float* k_cache = k_cache_[size_t(l)].data();  // [Hkv, P, D]
        float* v_cache = v_cache_[size_t(l)].data();  // [Hkv, P, D]

        // Attention block: x += o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h))), h = RMSNorm(x).
        cpu::rmsnorm(T, C, x.data(), lw.input_layernorm.data(), eps, h.data());
        linear(T, C, HD, h.data(), lw.q_proj, lw.q_bias, q.data());
        linear(T, C, KD, h.data(), lw.k_proj, lw.k_bias, k.data());
        linear(T, C, KD, h.data(), lw.v_proj, lw.v_bias, v.data());
        cpu::rope(T, H, D, pos0, inv_freq_.data(), q.data());  // absolute positions pos0 .. pos0 + T - 1
        cpu::rope(T, Hkv, D, pos0, inv_freq_.data(), k.data());

        // Q into [H, T, D]; K and V appended to the cache at rows pos0 .. pos0 + T - 1 of each kv head.
        for (int t = 0; t < T; ++t) {
            for (int hh = 0; hh < H; ++hh) {
                std::copy_n(q.begin() + (static_cast<long>(t) * H + hh) * D, D, q_heads.begin() + (static_cast<long>(hh) * T + t) * D);
            }
            for (int g = 0; g < Hkv; ++g) {
                const long src = (static_cast<long>(t) * Hkv + g) * D, dst = (g * P + pos0 + t) * D;
                std::copy_n(k.begin() + src, D, k_cache + dst);
                std::copy_n(v.begin() + src, D, v_cache + dst);
            }
        }

        // One call per kv head: its `group` query heads are contiguous in q_heads and read the same first Lk
        // cache rows (GQA). Bottom-right causal alignment lets new query t see keys up to pos0 + t, and the
        // window keeps keys j > pos0 + t - W: a query at position i sees j iff i - W < j <= i.
        cpu::AttentionShape shape;
        shape.B = 1;
        shape.H = group;
        shape.Hkv = 1;
        shape.Lq = T;
        shape.Lk = Lk;
        shape.D = D;
        cpu::AttentionMask mask;
        mask.causal = true;
        mask.window = cfg.window(l);
        const long group_block = static_cast<long>(group) * T * D;  // [group, T, D]
        for (int g = 0; g < Hkv; ++g) {
            cpu::attention(shape, mask, q_heads.data() + g * group_block, k_cache + g * P * D, v_cache + g * P * D,
                           0.0f /* 1/sqrt(D) */, att_heads.data() + g * group_block);
            capture.record(l, g * group, shape, mask, q_heads.data() + g * group_block, k_cache + g * P * D);
        }
        for (int hh = 0; hh < H; ++hh) {
            for (int t = 0; t < T; ++t) {
                std::copy_n(att_heads.begin() + (static_cast<long>(hh) * T + t) * D, D, att.begin() + (static_cast<long>(t) * H + hh) * D);
            }
        }
        linear(T, HD, C, att.data(), lw.o_proj, lw.o_bias, proj.data());
        cpu::add(TC, x.data(), proj.data(), x.data());

        // MLP block: x += down_proj(silu(gate_proj(h)) · up_proj(h)), h = RMSNorm(x).
        cpu::rmsnorm(T, C, x.data(), lw.post_attention_layernorm.data(), eps, h.data());
        linear(T, C, I, h.data(), lw.gate_proj, {}, gate.data());
        linear(T, C, I, h.data(), lw.up_proj, {}, up.data());
        cpu::swiglu(static_cast<long>(T) * I, gate.data(), up.data(), gate.data());
        linear(T, I, C, gate.data(), lw.down_proj, {}, proj.data());
        cpu::add(TC, x.data(), proj.data(), x.data());
    }

    cpu::rmsnorm(T, C, x.data(), w_.norm.data(), eps, h.data());
    linear(T, C, V, h.data(), w_.lm_head_weights(), {}, logits.data());

    position_ = Lk;
    if (attention) *attention = capture.take();
    return logits;
}

}  // namespace vkattn::model
