#include <vkattn/model/gpt2_cpu.hpp>

#include "cpu/add.hpp"
#include "cpu/attention.hpp"
#include "cpu/embedding.hpp"
#include "cpu/gelu.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"
#include "model/attention_capture.hpp"
#include "model/gpt2_schema.hpp"
#include "vkattn/error.hpp"

#include <string>

namespace vkattn::model {

Gpt2Cpu::Gpt2Cpu(const Gpt2Weights& w) : w_(w) {
    const Gpt2Config& cfg = w.config;
    cfg.validate();
    // All three names are the same tanh approximation; the exact erf GELU would silently shift every logit.
    const std::string& act = cfg.activation_function;
    if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast") {
        throw Error("activation_function \"" + act + "\" is not supported by the CPU GPT-2; expected gelu_new");
    }

    gpt2_check_sizes(w);
    const long C = cfg.n_embd, P = cfg.n_positions;

    // [H, P, D] is H · P · D = P · C values per layer.
    k_cache_.assign(cfg.n_layer, std::vector<float>(P * C));
    v_cache_.assign(cfg.n_layer, std::vector<float>(P * C));
}

void Gpt2Cpu::reset() { position_ = 0; }

std::vector<float> Gpt2Cpu::forward(std::span<const int> tokens) { return forward(tokens, {}, nullptr); }

std::vector<float> Gpt2Cpu::forward(std::span<const int> tokens, std::span<const int> layers,
                                    std::vector<LayerAttention>* attention) {
    const Gpt2Config& cfg = w_.config;
    const int T = static_cast<int>(tokens.size());
    const int C = cfg.n_embd, V = cfg.vocab_size, P = cfg.n_positions;
    const int H = cfg.n_head, D = cfg.head_dim();
    const int pos0 = position_;
    const int Lk = pos0 + T;  // keys after this call: the cached ones and the new ones

    // Validate everything before touching the cache, so a bad call leaves the model usable.
    for (int t = 0; t < T; ++t) {
        if (tokens[t] < 0 || tokens[t] >= V) {
            throw Error("token " + std::to_string(tokens[t]) + " at index " + std::to_string(t) +
                        " is out of range: the vocabulary has V = " + std::to_string(V) + " tokens");
        }
    }
    if (static_cast<long>(pos0) + T > P) {
        throw Error("context of " + std::to_string(static_cast<long>(pos0) + T) + " tokens (" +
                    std::to_string(pos0) + " cached + " + std::to_string(T) + " new) exceeds n_positions = " +
                    std::to_string(P));
    }
    CpuAttentionCapture capture(attention ? layers : std::span<const int>{}, cfg.n_layer, H, T, Lk);
    if (T == 0) return {};

    const long TC = static_cast<long>(T) * C;
    std::vector<float> x(TC);                            // [T, C] residual stream
    std::vector<float> ln(TC);                           // [T, C] LayerNorm output
    std::vector<float> qkv(3 * TC);                      // [T, 3C] fused projection, Q | K | V per row
    std::vector<float> q(TC);                            // [H, T, D]
    std::vector<float> att(TC);                          // [H, T, D] attention output per head
    std::vector<float> att_merged(TC);                   // [T, C] heads side by side again
    std::vector<float> proj(TC);                         // [T, C] output of either c_proj
    std::vector<float> fc(4 * TC);                       // [T, 4C] MLP hidden layer
    std::vector<float> logits(static_cast<long>(T) * V); // [T, V]

    std::vector<int> positions(T);  // [T]
    for (int t = 0; t < T; ++t) positions[t] = pos0 + t;
    cpu::embedding(T, C, tokens.data(), positions.data(), w_.wte.data(), w_.wpe.data(), x.data());

    const long PD = static_cast<long>(P) * D;  // stride between heads in the cache
    for (int l = 0; l < cfg.n_layer; ++l) {
        const Gpt2LayerWeights& lw = w_.layers[l];
        float* k_cache = k_cache_[l].data();  // [H, P, D]
        float* v_cache = v_cache_[l].data();  // [H, P, D]

        // Attention block: x += c_proj(attention(ln_1(x))).
        cpu::layernorm(T, C, x.data(), lw.ln_1_w.data(), lw.ln_1_b.data(), cfg.layer_norm_epsilon, ln.data());
        cpu::matmul(T, C, 3 * C, ln.data(), lw.attn_w.data(), lw.attn_b.data(), qkv.data());

        // Split heads: Q into [H, T, D]; K and V appended to the cache at rows pos0 .. pos0 + T - 1.
        for (int t = 0; t < T; ++t) {
            const float* row = qkv.data() + static_cast<long>(t) * 3 * C;  // [3C]
            for (int h = 0; h < H; ++h) {
                for (int d = 0; d < D; ++d) {
                    const int c = h * D + d;
                    q[(static_cast<long>(h) * T + t) * D + d] = row[c];
                    k_cache[h * PD + static_cast<long>(pos0 + t) * D + d] = row[C + c];
                    v_cache[h * PD + static_cast<long>(pos0 + t) * D + d] = row[2 * C + c];
                }
            }
        }

        // One call per head because a head's keys are the first Lk of its P cache rows, not a packed [Lk, D].
        // Bottom-right causal alignment lets new query t see the cached keys and new keys up to pos0 + t.
        cpu::AttentionShape shape;
        shape.B = 1;
        shape.H = 1;
        shape.Hkv = 1;
        shape.Lq = T;
        shape.Lk = Lk;
        shape.D = D;
        cpu::AttentionMask mask;
        mask.causal = true;
        for (int h = 0; h < H; ++h) {
            cpu::attention(shape, mask, q.data() + static_cast<long>(h) * T * D, k_cache + h * PD,
                           v_cache + h * PD, 0.0f /* 1/sqrt(D) */, att.data() + static_cast<long>(h) * T * D);
            capture.record(l, h, shape, mask, q.data() + static_cast<long>(h) * T * D, k_cache + h * PD);
        }

        for (int h = 0; h < H; ++h)
            for (int t = 0; t < T; ++t)
                for (int d = 0; d < D; ++d)
                    att_merged[static_cast<long>(t) * C + h * D + d] = att[(static_cast<long>(h) * T + t) * D + d];

        cpu::matmul(T, C, C, att_merged.data(), lw.attn_proj_w.data(), lw.attn_proj_b.data(), proj.data());
        cpu::add(TC, x.data(), proj.data(), x.data());

        // MLP block: x += c_proj(gelu(c_fc(ln_2(x)))).
        cpu::layernorm(T, C, x.data(), lw.ln_2_w.data(), lw.ln_2_b.data(), cfg.layer_norm_epsilon, ln.data());
        cpu::matmul(T, C, 4 * C, ln.data(), lw.fc_w.data(), lw.fc_b.data(), fc.data());
        cpu::gelu(4 * TC, fc.data(), fc.data());
        cpu::matmul(T, 4 * C, C, fc.data(), lw.fc_proj_w.data(), lw.fc_proj_b.data(), proj.data());
        cpu::add(TC, x.data(), proj.data(), x.data());
    }

    cpu::layernorm(T, C, x.data(), w_.ln_f_w.data(), w_.ln_f_b.data(), cfg.layer_norm_epsilon, ln.data());
    cpu::matmul_transposed_b(T, C, V, ln.data(), w_.lm_head_weights().data(), logits.data());

    position_ = Lk;
    if (attention) *attention = capture.take();
    return logits;
}

}  // namespace vkattn::model
