// GPT-2 on the GPU: the forward of llm.c's gpt2_forward, recorded as one command buffer per step.
//
// Per layer, with x [T, C] the residual stream:
//   h = ln_1(x);  qkv[pos .. pos+T) = h · W_attn + b          (written straight into the layer's KV cache)
//   a = attention(Q, K, V) over views of that cache            (causal, Lq = T, Lk = pos + T)
//   x += a · W_proj + b;  h = ln_2(x);  m = gelu(h · W_fc + b);  x += m · W_fcproj + b
// then logits = ln_f(x) · wteᵀ. The cache holds each position's fused Q|K|V row [3C], so K and V are strided
// views of it ([H, Lk, D] with row stride 3C) and nothing is copied; the Q third is dead weight once used,
// the price of writing the projection's output in place.
#include "api/context_impl.hpp"
#include "cpu/half.hpp"
#include "ops/attention.hpp"
#include "ops/matmul.hpp"
#include "ops/transformer.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_gpu.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

namespace vkattn::model {
namespace {

struct LayerBuffers {
    vk::Buffer ln_1_w, ln_1_b, attn_w, attn_b, attn_proj_w, attn_proj_b;
    vk::Buffer ln_2_w, ln_2_b, fc_w, fc_b, fc_proj_w, fc_proj_b;
    vk::Buffer qkv;  // [P, 3C] f32: the fused projection of every position so far (the KV cache)
};

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

struct Gpt2Gpu::Impl {
    Context& ctx;
    vk::Device& device;
    Gpt2Config cfg;
    Gpt2GpuOptions options;
    DType wdt;
    uint64_t weight_bytes = 0;

    vk::Buffer wte, wpe, ln_f_w, ln_f_b;
    std::vector<LayerBuffers> layers;
    int pos = 0;

    // Activations for up to `capacity` tokens per step, grown on demand.
    uint32_t capacity = 0;
    uint32_t logits_rows = 0;
    vk::Buffer rows, x, h, attn, mlp, logits;

    Impl(Context& c, const Gpt2Weights& w, const Gpt2GpuOptions& o)
        : ctx(c), device(c.impl().device), cfg(w.config), options(o), wdt(o.weights) {}

    vk::Buffer upload(const std::vector<float>& v, DType t) {
        vk::Buffer b(device, v.size() * dtype_size(t));
        if (t == DType::f32) {
            device.upload(b, 0, v.data(), v.size() * 4);
        } else {
            std::vector<uint16_t> half(v.size());
            for (size_t i = 0; i < v.size(); ++i) half[i] = cpu::float_to_half(v[i]);
            device.upload(b, 0, half.data(), half.size() * 2);
        }
        weight_bytes += b.size();
        return b;
    }

    void ensure_capacity(uint32_t T, uint32_t n_logits) {
        const uint64_t C = uint64_t(cfg.n_embd);
        if (T > capacity) {
            rows = vk::Buffer(device, T * C * dtype_size(wdt));
            x = vk::Buffer(device, T * C * 4);
            h = vk::Buffer(device, T * C * 4);
            attn = vk::Buffer(device, T * C * 4);
            mlp = vk::Buffer(device, T * 4 * C * 4);
            capacity = T;
        }
        if (n_logits > logits_rows) {
            logits = vk::Buffer(device, uint64_t(n_logits) * uint64_t(cfg.vocab_size) * 4);
            logits_rows = n_logits;
        }
    }
};

Gpt2Gpu::Gpt2Gpu(Context& ctx, const Gpt2Weights& w, const Gpt2GpuOptions& options)
    : impl_(std::make_unique<Impl>(ctx, w, options)) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = w.config;
    cfg.validate();
    if (options.weights == DType::f16 && !ctx.device().storage_16bit) {
        throw Error("f16 weights need 16-bit storage buffers, which " + ctx.device().name + " does not have");
    }
    const int D = cfg.head_dim();
    if (D != 32 && D != 64 && D != 80 && D != 96 && D != 128 && D != 256) {
        throw Error("GPT-2 head dim n_embd / n_head = " + std::to_string(D) +
                    " is not one the attention kernels take (32, 64, 80, 96, 128, 256)");
    }
    if (!w.lm_head.empty()) {
        throw Error("this checkpoint has an lm_head different from wte; vkattn runs GPT-2 with the tied head only");
    }

    // Say plainly when the model cannot fit, before allocating anything.
    const uint64_t C = uint64_t(cfg.n_embd), V = uint64_t(cfg.vocab_size), P = uint64_t(cfg.n_positions);
    const uint64_t es = dtype_size(options.weights);
    const uint64_t per_layer_w = (C * 3 * C + C * C + C * 4 * C + 4 * C * C) * es + (3 * C + C + 4 * C + C + 4 * C) * 4;
    const uint64_t weights = (V * C + P * C) * es + uint64_t(cfg.n_layer) * per_layer_w + 2 * C * 4;
    const uint64_t cache = uint64_t(cfg.n_layer) * P * 3 * C * 4;
    const DeviceInfo& info = ctx.device();
    if (weights + cache > info.device_heap_bytes) {
        throw Error("this GPT-2 (" + std::to_string(cfg.n_layer) + " layers, " + std::to_string(cfg.n_embd) +
                    " wide) needs " + mib(weights + cache) + " of device memory (" + mib(weights) + " of " +
                    std::string(dtype_name(options.weights)) + " weights, " + mib(cache) + " of KV cache); " +
                    info.name + " has a " + mib(info.device_heap_bytes) + " heap" +
                    (options.weights == DType::f32 ? "; f16 weights would halve the weights" : ""));
    }

    const DType wdt = options.weights;
    m.wte = m.upload(w.wte, wdt);
    m.wpe = m.upload(w.wpe, wdt);
    m.ln_f_w = m.upload(w.ln_f_w, DType::f32);
    m.ln_f_b = m.upload(w.ln_f_b, DType::f32);
    for (const Gpt2LayerWeights& l : w.layers) {
        LayerBuffers b;
        b.ln_1_w = m.upload(l.ln_1_w, DType::f32);
        b.ln_1_b = m.upload(l.ln_1_b, DType::f32);
        b.attn_w = m.upload(l.attn_w, wdt);
        b.attn_b = m.upload(l.attn_b, DType::f32);
        b.attn_proj_w = m.upload(l.attn_proj_w, wdt);
        b.attn_proj_b = m.upload(l.attn_proj_b, DType::f32);
        b.ln_2_w = m.upload(l.ln_2_w, DType::f32);
        b.ln_2_b = m.upload(l.ln_2_b, DType::f32);
        b.fc_w = m.upload(l.fc_w, wdt);
        b.fc_b = m.upload(l.fc_b, DType::f32);
        b.fc_proj_w = m.upload(l.fc_proj_w, wdt);
        b.fc_proj_b = m.upload(l.fc_proj_b, DType::f32);
        b.qkv = vk::Buffer(m.device, P * 3 * C * 4);
        m.layers.push_back(std::move(b));
    }
}

Gpt2Gpu::~Gpt2Gpu() = default;

void Gpt2Gpu::reset() { impl_->pos = 0; }
int Gpt2Gpu::position() const { return impl_->pos; }
const Gpt2Config& Gpt2Gpu::config() const { return impl_->cfg; }
uint64_t Gpt2Gpu::weight_bytes() const { return impl_->weight_bytes; }

std::vector<float> Gpt2Gpu::forward(std::span<const int> tokens, bool all_logits) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = m.cfg;
    const uint32_t T = uint32_t(tokens.size());
    if (T == 0) return {};
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= cfg.vocab_size) {
            throw Error("token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is out of range: the vocabulary has V = " + std::to_string(cfg.vocab_size) + " tokens");
        }
    }
    if (uint64_t(m.pos) + T > uint64_t(cfg.n_positions)) {
        throw Error("context of " + std::to_string(m.pos + T) + " tokens (" + std::to_string(m.pos) + " cached + " +
                    std::to_string(T) + " new) exceeds n_positions = " + std::to_string(cfg.n_positions));
    }
    const uint32_t C = uint32_t(cfg.n_embd), H = uint32_t(cfg.n_head), D = uint32_t(cfg.head_dim());
    const uint32_t V = uint32_t(cfg.vocab_size);
    const uint32_t pos = uint32_t(m.pos);
    const uint32_t Lk = pos + T;
    const uint32_t n_logits = all_logits ? T : 1;
    m.ensure_capacity(T, n_logits);

    const ops::AttentionDims dims{1, H, H, T, Lk, D};
    std::optional<vk::Buffer> scores;  // the three-kernel path's [H, T, Lk] scores
    if (!m.options.fused_attention) scores.emplace(m.device, uint64_t(H) * T * Lk * 4);

    const uint64_t max_range = m.device.info().max_storage_buffer_range;
    const uint32_t logit_chunk = uint32_t(std::max<uint64_t>(1, (max_range - 256) / (uint64_t(V) * 4)));
    const DType wdt = m.wdt;
    const float eps = cfg.layer_norm_epsilon;
    using ops::matrix;

    m.ctx.impl().run([&](ops::Encoder& enc) {
        ops::record_embedding(enc, tokens, int(pos), C, wdt, m.wte, m.wpe, m.rows, m.x);
        for (LayerBuffers& l : m.layers) {
            ops::record_layernorm(enc, T, C, {&m.x, 0, C}, l.ln_1_w, l.ln_1_b, {&m.h, 0, C}, eps);
            const ops::MatrixRef qkv_rows{&l.qkv, DType::f32, uint64_t(pos) * 3 * C, T, 3 * C, 3 * C};
            ops::record_matmul(enc, matrix(m.h, DType::f32, T, C), matrix(l.attn_w, wdt, C, 3 * C), false, qkv_rows,
                               {.bias = &l.attn_b});

            const int64_t row = 3 * int64_t(C);
            const ops::TensorRef q{&l.qkv, DType::f32, uint64_t(pos) * 3 * C, {1, H, T, D}, {0, D, row, 1}};
            const ops::TensorRef k{&l.qkv, DType::f32, C, {1, H, Lk, D}, {0, D, row, 1}};
            const ops::TensorRef v{&l.qkv, DType::f32, 2 * uint64_t(C), {1, H, Lk, D}, {0, D, row, 1}};
            const ops::TensorRef o{&m.attn, DType::f32, 0, {1, H, T, D}, {0, D, C, 1}};
            const ops::MaskArgs mask{.causal = true};
            const float scale = float(1.0 / std::sqrt(double(D)));
            if (m.options.fused_attention) {
                ops::record_flash(enc, dims, q, k, v, o, mask, scale);
            } else {
                ops::record_qk(enc, dims, q, k, *scores, scale);
                ops::record_softmax(enc, dims, *scores, *scores, mask);
                ops::record_pv(enc, dims, *scores, v, o);
            }

            ops::record_matmul(enc, matrix(m.attn, DType::f32, T, C), matrix(l.attn_proj_w, wdt, C, C), false,
                               matrix(m.x, DType::f32, T, C), {.bias = &l.attn_proj_b, .accumulate = true});
            ops::record_layernorm(enc, T, C, {&m.x, 0, C}, l.ln_2_w, l.ln_2_b, {&m.h, 0, C}, eps);
            ops::record_matmul(enc, matrix(m.h, DType::f32, T, C), matrix(l.fc_w, wdt, C, 4 * C), false,
                               matrix(m.mlp, DType::f32, T, 4 * C), {.bias = &l.fc_b, .gelu = true});
            ops::record_matmul(enc, matrix(m.mlp, DType::f32, T, 4 * C), matrix(l.fc_proj_w, wdt, 4 * C, C), false,
                               matrix(m.x, DType::f32, T, C), {.bias = &l.fc_proj_b, .accumulate = true});
        }
        // Only the rows whose logits are wanted go through ln_f and the LM head.
        const uint32_t first = T - n_logits;
        ops::record_layernorm(enc, n_logits, C, {&m.x, first * C, C}, m.ln_f_w, m.ln_f_b, {&m.h, 0, C}, eps);
        for (uint32_t r0 = 0; r0 < n_logits; r0 += logit_chunk) {  // [rows, V] of logits per binding
            const uint32_t rc = std::min(logit_chunk, n_logits - r0);
            ops::record_matmul(enc, matrix(m.h, DType::f32, rc, C, uint64_t(r0) * C), matrix(m.wte, wdt, V, C), true,
                               matrix(m.logits, DType::f32, rc, V, uint64_t(r0) * V));
        }
    });
    m.pos += int(T);

    std::vector<float> out(size_t(n_logits) * V);
    m.device.download(m.logits, 0, out.data(), out.size() * 4);
    return out;
}

}  // namespace vkattn::model
