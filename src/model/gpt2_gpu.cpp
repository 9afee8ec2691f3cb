// GPT-2 on the GPU: the forward of llm.c's gpt2_forward, recorded as one command buffer per step.
//
// Per layer, with x [T, C] the residual stream:
//   h = ln_1(x);  qkv[pos .. pos+T) = h · W_attn + b          (written straight into the layer's KV cache)
//   a = attention(Q, K, V) over views of that cache            (causal, Lq = T, Lk = pos + T)
//   x += a · W_proj + b;  h = ln_2(x);  m = gelu(h · W_fc + b);  x += m · W_fcproj + b
// then logits = ln_f(x) · wteᵀ. The cache holds each position's fused Q|K|V row [3C], so K and V are strided
// views of it ([H, Lk, D] with row stride 3C) and nothing is copied; the Q third is dead weight once used,
// the price of writing the projection's output in place.
#include "cpu/half.hpp"
#include "ops/attention.hpp"
#include "ops/matmul.hpp"
#include "model/attention_capture.hpp"
#include "model/family.hpp"
#include "model/gpt2_internal.hpp"
#include "model/gpt2_schema.hpp"
#include "ops/runtime.hpp"
#include "ops/transformer.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_gpu.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

namespace vkattn::model {
namespace {

}  // namespace

struct Gpt2Gpu::Impl {
    std::shared_ptr<ops::Runtime> runtime;  // shared with the Context: the model may outlive it
    vk::Device& device;
    Gpt2Config cfg;
    Gpt2GpuOptions options;
    DType wdt;
    uint64_t weight_bytes = 0;

    Gpt2Params<vk::Buffer> params;  // the weights, as gpt2_schema lays them out
    std::vector<vk::Buffer> qkv;    // per layer [P, 3C] f32: the fused projection of every position so far (the KV cache)
    int pos = 0;

    // Activations for up to `capacity` tokens per step, grown on demand.
    uint32_t capacity = 0;
    uint32_t logits_rows = 0;
    vk::Buffer rows, x, h, attn, mlp, logits;

    Impl(Context& c, const Gpt2Weights& w, const Gpt2GpuOptions& o)
        : runtime(ops::shared_runtime(c)), device(runtime->device()), cfg(w.config), options(o), wdt(o.weights) {}

    // A value past f16's range is refused naming the tensor, never stored as inf.
    vk::Buffer upload(const std::vector<float>& v, DType t, const std::string& name) {
        vk::Buffer b(device, v.size() * dtype_size(t));
        if (t == DType::f32) {
            device.upload(b, 0, v.data(), v.size() * 4);
        } else {
            std::vector<uint16_t> half(v.size());
            cpu::floats_to_half(v, half.data(), "weight " + name);
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

namespace {

// The per-layer fused Q|K|V rows of every position: n_layer × [P, 3C] f32.
uint64_t kv_cache_bytes(const Gpt2Config& c) { return uint64_t(c.n_positions) * gpt2_cache_bytes_per_token(c); }

}  // namespace

uint64_t gpt2_cache_bytes_per_token(const Gpt2Config& c) { return uint64_t(c.n_layer) * 3 * uint64_t(c.n_embd) * 4; }

void Gpt2Gpu::check(const DeviceInfo& info, const Gpt2Config& cfg, const Gpt2GpuOptions& options) {
    cfg.validate();
    if (options.weights != DType::f32 && options.weights != DType::f16) {
        throw Error("GPT-2 weights are stored on the GPU as f32 or f16, not " + std::string(dtype_name(options.weights)));
    }
    if (options.weights == DType::f16 && !info.storage_16bit) {
        throw Error("f16 weights need 16-bit storage buffers, which " + info.name + " does not have");
    }
    const int D = cfg.head_dim();
    if (D < 1 || D > ops::kMaxHeadDim) {
        throw Error("GPT-2 head dim n_embd / n_head = " + std::to_string(D) + " is not one the attention kernels take (1 to " +
                    std::to_string(ops::kMaxHeadDim) + ")");
    }
    const uint64_t weights = device_bytes(gpt2_tensor_specs(cfg), options.weights);
    const uint64_t cache = kv_cache_bytes(cfg);
    check_fits_device(info, "this GPT-2 (" + std::to_string(cfg.n_layer) + " layers, " + std::to_string(cfg.n_embd) +
                                " wide)", weights, options.weights, cache);
}

Gpt2Gpu::Gpt2Gpu(Context& ctx, const Gpt2Weights& w, const Gpt2GpuOptions& options)
    : impl_(std::make_unique<Impl>(ctx, w, options)) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = w.config;
    check(ctx.device(), cfg, options);  // before allocating anything
    gpt2_check_sizes(w);
    if (!w.lm_head.empty()) {
        throw Error("this checkpoint has an lm_head different from wte; vkattn runs GPT-2 with the tied head only");
    }
    // Both walks visit the same table in the same order: the i-th host tensor goes to the i-th buffer.
    std::vector<const std::vector<float>*> host;
    gpt2_schema(cfg, static_cast<const Gpt2Params<std::vector<float>>&>(w),
                [&](const std::vector<float>& t, const TensorSpec&) { host.push_back(&t); });
    size_t i = 0;
    gpt2_schema(cfg, m.params, [&](vk::Buffer& b, const TensorSpec& spec) {
        b = m.upload(*host[i++], spec.device_dtype(options.weights), spec.name);
    });
    const uint64_t row_bytes = uint64_t(cfg.n_positions) * 3 * uint64_t(cfg.n_embd) * 4;
    for (int l = 0; l < cfg.n_layer; ++l) m.qkv.emplace_back(m.device, row_bytes);
}

Gpt2Gpu::~Gpt2Gpu() = default;

void Gpt2Gpu::reset() { impl_->pos = 0; }
int Gpt2Gpu::position() const { return impl_->pos; }
const Gpt2Config& Gpt2Gpu::config() const { return impl_->cfg; }
uint64_t Gpt2Gpu::weight_bytes() const { return impl_->weight_bytes; }

std::vector<float> Gpt2Gpu::forward(std::span<const int> tokens, bool all_logits) {
    return forward(tokens, all_logits, {}, nullptr);
}

std::vector<float> Gpt2Gpu::forward(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                    std::vector<LayerAttention>* attention) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = m.cfg;
    check_capture_layers(layers, cfg.n_layer);
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
    const uint64_t scores_bytes = uint64_t(H) * T * Lk * 4;
    GpuAttentionCapture capture(m.device, attention ? layers : std::span<const int>{}, cfg.n_layer, H, T, Lk,
                                m.weight_bytes + kv_cache_bytes(cfg) + scores_bytes);
    std::optional<vk::Buffer> scores;  // the three-kernel path's [H, T, Lk] scores
    if (!m.options.fused_attention || capture.any()) scores.emplace(m.device, scores_bytes);

    const uint64_t max_range = m.device.info().max_storage_buffer_range;
    const uint32_t logit_chunk = uint32_t(std::max<uint64_t>(1, (max_range - 256) / (uint64_t(V) * 4)));
    const DType wdt = m.wdt;
    const float eps = cfg.layer_norm_epsilon;
    using ops::matrix;

    m.runtime->run([&](ops::Encoder& enc) {
        ops::record_embedding(enc, tokens, int(pos), C, wdt, m.params.wte, m.params.wpe, m.rows, m.x);
        for (size_t li = 0; li < m.params.layers.size(); ++li) {
            const Gpt2LayerParams<vk::Buffer>& l = m.params.layers[li];
            vk::Buffer& qkv = m.qkv[li];
            ops::record_layernorm(enc, T, C, {&m.x, 0, C}, l.ln_1_w, l.ln_1_b, {&m.h, 0, C}, eps);
            const ops::MatrixRef qkv_rows{&qkv, DType::f32, uint64_t(pos) * 3 * C, T, 3 * C, 3 * C};
            ops::record_matmul(enc, matrix(m.h, DType::f32, T, C), matrix(l.attn_w, wdt, C, 3 * C), false, qkv_rows,
                               {.bias = &l.attn_b});

            const int64_t row = 3 * int64_t(C);
            const ops::TensorRef q{&qkv, DType::f32, uint64_t(pos) * 3 * C, {1, H, T, D}, {0, D, row, 1}};
            const ops::TensorRef k{&qkv, DType::f32, C, {1, H, Lk, D}, {0, D, row, 1}};
            const ops::TensorRef v{&qkv, DType::f32, 2 * uint64_t(C), {1, H, Lk, D}, {0, D, row, 1}};
            const ops::TensorRef o{&m.attn, DType::f32, 0, {1, H, T, D}, {0, D, C, 1}};
            const ops::MaskArgs mask{.causal = true};
            const float scale = float(1.0 / std::sqrt(double(D)));
            if (m.options.fused_attention && !capture.wants(li)) {
                ops::record_flash(enc, dims, q, k, v, o, mask, scale);
            } else {
                ops::record_qk(enc, dims, q, k, *scores, scale);
                ops::record_softmax(enc, dims, *scores, *scores, mask);
                capture.record(enc, li, *scores);  // the probabilities, before the next layer's scores replace them
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
        ops::record_layernorm(enc, n_logits, C, {&m.x, first * C, C}, m.params.ln_f_w, m.params.ln_f_b, {&m.h, 0, C}, eps);
        for (uint32_t r0 = 0; r0 < n_logits; r0 += logit_chunk) {  // [rows, V] of logits per binding
            const uint32_t rc = std::min(logit_chunk, n_logits - r0);
            ops::record_matmul(enc, matrix(m.h, DType::f32, rc, C, uint64_t(r0) * C), matrix(m.params.wte, wdt, V, C), true,
                               matrix(m.logits, DType::f32, rc, V, uint64_t(r0) * V));
        }
    });
    m.pos += int(T);

    std::vector<float> out(size_t(n_logits) * V);
    m.device.download(m.logits, 0, out.data(), out.size() * 4);
    if (attention) *attention = capture.download();
    return out;
}

}  // namespace vkattn::model
