// GPT-2 on the GPU: the forward of llm.c's gpt2_forward, recorded as one command buffer per step.
//
// Per layer, with x [T, C] the residual stream:
//   h = ln_1(x);  qkv[pos .. pos+T) = h · W_attn + b          (written straight into the layer's KV cache)
//   a = attention(Q, K, V) over views of that cache            (causal, Lq = T, Lk = pos + T)
//   x += a · W_proj + b;  h = ln_2(x);  m = gelu(h · W_fc + b);  x += m · W_fcproj + b
// then logits = ln_f(x) · wteᵀ. The cache holds each position's fused Q|K|V row [3C], so K and V are strided
// views of it ([H, Lk, D] with row stride 3C) and nothing is copied; the Q third is dead weight once used,
// the price of writing the projection's output in place.
// The steps are Impl's record_* pieces over a GpuPass (model/shard.hpp): forward records them all in one
// command buffer; forward_shard (sequence parallelism over MPI ranks) submits up to each layer's attention,
// hands q, k and v to a ShardAttention on the host, and goes on with its output.
#include "cpu/half.hpp"
#include "ops/attention.hpp"
#include "ops/matmul.hpp"
#include "model/attention_capture.hpp"
#include "model/family.hpp"
#include "model/logit_select.hpp"
#include "model/gpt2_internal.hpp"
#include "model/gpt2_schema.hpp"
#include "model/shard.hpp"
#include "model/step_ahead.hpp"
#include "ops/runtime.hpp"
#include "ops/transformer.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/gpt2_gpu.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

namespace vkattn::model {

struct Gpt2Gpu::Impl {
    std::shared_ptr<ops::Runtime> runtime;  // shared with the Context: the model may outlive it
    vk::Device& device;
    Gpt2Config cfg;
    Gpt2GpuOptions options;
    DType wdt;
    uint64_t weight_bytes = 0;

    Gpt2Params<vk::Buffer> params;  // the weights, as gpt2_schema lays them out ...
    bool nk = false;                // ... except the matmul weights [K, N], stored [N, K] where Tuning::weights_nk
    std::vector<vk::Buffer> qkv;    // per layer [P, 3C] f32: the fused projection of every position so far (the KV cache)
    int pos = 0;

    // Activations for up to `capacity` tokens per step, grown on demand.
    uint32_t capacity = 0;
    uint32_t logits_rows = 0;
    vk::Buffer rows, x, h, attn, mlp;
    vk::ReadbackBuffer logits;
    std::optional<DeviceSelection> selection;  // forward_select's kernel state, made on first use
    StepAhead ahead;  // submit_select's steps; last, so that a step in flight completes before the buffers go

    Impl(Context& c, const Gpt2Weights& w, const Gpt2GpuOptions& o)
        : runtime(ops::shared_runtime(c)), device(runtime->device()), cfg(w.config), options(o), wdt(o.weights),
          nk(ops::tuning_for(device.info()).weights_nk), ahead(*runtime) {}

    void check_context(uint32_t T) const {
        if (uint64_t(pos) + T > uint64_t(cfg.n_positions)) {
            throw Error("context of " + std::to_string(pos + T) + " tokens (" + std::to_string(pos) + " cached + " +
                        std::to_string(T) + " new) exceeds n_positions = " + std::to_string(cfg.n_positions));
        }
    }

    // The step of one token at position p (StepAhead): its shape and lengths.
    StepAhead::Step step_at(uint32_t p) const {
        const uint32_t H = uint32_t(cfg.n_head);
        return StepAhead::step_at(device.info(), {1, H, H, 1, 1, uint32_t(cfg.head_dim())}, p,
                                  uint64_t(cfg.n_positions));
    }

    // The body of a one-token step of this step's shape (StepAhead): everything but the token's row, the
    // position read from the StepParams buffer, so that it is replayed at every position of the shape.
    void prepare_step(const StepAhead::Step& step) {
        ensure_capacity(1, 1);
        const uint32_t p0 = step.params.pos;
        const GpuPass p{.T = 1, .pos = p0, .runs = {{0, p0, 1}}, .scores = {}, .capture = nullptr,
                        .step = &ahead.params()};
        ahead.prepare(step.shape, [&](ops::Encoder& enc) {
            ops::record_position_add(enc, 1, int(p0), uint32_t(cfg.n_embd), wdt, params.wpe, rows, x, 0, p.step);
            record_layers(enc, p);
            record_head(enc, 0, 1, false);
        });
    }

    // y (+)= x [M, K] · W [K, N] (+ epilogue), W as stored.
    void matmul(ops::Encoder& enc, const ops::MatrixRef& x, const vk::Buffer& w, uint32_t K, uint32_t N,
                const ops::MatrixRef& y, const ops::MatmulEpilogue& ep) const {
        ops::record_matmul(enc, x, nk ? ops::matrix(w, wdt, N, K) : ops::matrix(w, wdt, K, N), nk, y, ep);
    }

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
            logits = vk::ReadbackBuffer(device, uint64_t(n_logits) * uint64_t(cfg.vocab_size) * 4);
            logits_rows = n_logits;
        }
    }


    void record_embed(ops::Encoder& enc, const GpuPass& p, std::span<const int> tokens) {
        for (const GpuPass::Run& r : p.runs) {
            ops::record_embedding(enc, tokens.subspan(r.row0, r.count), int(r.position), uint32_t(cfg.n_embd), wdt,
                                  params.wte, params.wpe, rows, x, r.row0);
        }
    }

    // h = ln_1(x); qkv rows [pos, pos + T) = h · W_attn + b (a replayed step: the row of the position its
    // StepParams give).
    void record_pre_attention(ops::Encoder& enc, const GpuPass& p, size_t li) {
        const Gpt2LayerParams<vk::Buffer>& l = params.layers[li];
        const uint32_t C = uint32_t(cfg.n_embd);
        ops::record_layernorm(enc, p.T, C, {&x, 0, C}, l.ln_1_w, l.ln_1_b, {&h, 0, C}, cfg.layer_norm_epsilon);
        const uint64_t first_row = p.step != nullptr ? 0 : p.pos;
        const ops::MatrixRef qkv_rows{&qkv[li], DType::f32, first_row * 3 * C, p.T, 3 * C, 3 * C};
        matmul(enc, ops::matrix(h, DType::f32, p.T, C), l.attn_w, C, 3 * C, qkv_rows,
               {.bias = &l.attn_b, .step = p.step});
    }

    // attn = causal attention(Q, K, V) over cache rows [0, pos + T). A replayed step binds every row of the
    // cache and reads its key count, and its query's row, from the StepParams.
    void record_attention(ops::Encoder& enc, const GpuPass& p, size_t li) {
        const uint32_t C = uint32_t(cfg.n_embd), H = uint32_t(cfg.n_head), D = uint32_t(cfg.head_dim());
        const uint32_t Lk = p.pos + p.T;
        const ops::AttentionDims dims{1, H, H, p.T, Lk, D};
        const int64_t row = 3 * int64_t(C);
        const int64_t rows_bound = p.step != nullptr ? int64_t(cfg.n_positions) : int64_t(Lk);
        const ops::TensorRef q = p.step != nullptr
                                     ? ops::TensorRef{&qkv[li], DType::f32, 0, {1, H, rows_bound, D}, {0, D, row, 1}}
                                     : ops::TensorRef{&qkv[li], DType::f32, uint64_t(p.pos) * 3 * C, {1, H, p.T, D}, {0, D, row, 1}};
        const ops::TensorRef k{&qkv[li], DType::f32, C, {1, H, rows_bound, D}, {0, D, row, 1}};
        const ops::TensorRef v{&qkv[li], DType::f32, 2 * uint64_t(C), {1, H, rows_bound, D}, {0, D, row, 1}};
        const ops::TensorRef o{&attn, DType::f32, 0, {1, H, p.T, D}, {0, D, C, 1}};
        const ops::MaskArgs mask{.causal = true};
        const float scale = float(1.0 / std::sqrt(double(D)));
        record_layer_attention(enc, dims, q, k, v, o, mask, scale, options.fused_attention,
                               p.scores ? &*p.scores : nullptr, p.capture, li,
                               {.step = p.step, .q_at_step = p.step != nullptr});
    }

    // x += attn · W_proj + b; h = ln_2(x); x += gelu(h · W_fc + b) · W_fcproj + b.
    void record_post_attention(ops::Encoder& enc, const GpuPass& p, size_t li) {
        const Gpt2LayerParams<vk::Buffer>& l = params.layers[li];
        const uint32_t C = uint32_t(cfg.n_embd);
        using ops::matrix;
        matmul(enc, matrix(attn, DType::f32, p.T, C), l.attn_proj_w, C, C, matrix(x, DType::f32, p.T, C),
               {.bias = &l.attn_proj_b, .accumulate = true});
        ops::record_layernorm(enc, p.T, C, {&x, 0, C}, l.ln_2_w, l.ln_2_b, {&h, 0, C}, cfg.layer_norm_epsilon);
        matmul(enc, matrix(h, DType::f32, p.T, C), l.fc_w, C, 4 * C, matrix(mlp, DType::f32, p.T, 4 * C),
               {.bias = &l.fc_b, .gelu = true});
        matmul(enc, matrix(mlp, DType::f32, p.T, 4 * C), l.fc_proj_w, 4 * C, C, matrix(x, DType::f32, p.T, C),
               {.bias = &l.fc_proj_b, .accumulate = true});
    }

    // Every layer, embedding done (x) to the input of the final LayerNorm.
    void record_layers(ops::Encoder& enc, const GpuPass& p) {
        for (size_t l = 0; l < params.layers.size(); ++l) {
            record_pre_attention(enc, p, l);
            record_attention(enc, p, l);
            record_post_attention(enc, p, l);
        }
    }

    // logits rows [0, n) = ln_f(x rows [first, first + n)) · wteᵀ, in chunks that fit one binding.
    void record_head(ops::Encoder& enc, uint32_t first, uint32_t n, bool read_back = true) {
        const uint32_t C = uint32_t(cfg.n_embd), V = uint32_t(cfg.vocab_size);
        const uint64_t max_range = device.info().max_storage_buffer_range;
        const uint32_t chunk = uint32_t(std::max<uint64_t>(1, (max_range - 256) / (uint64_t(V) * 4)));
        using ops::matrix;
        ops::record_layernorm(enc, n, C, {&x, first * C, C}, params.ln_f_w, params.ln_f_b, {&h, 0, C},
                              cfg.layer_norm_epsilon);
        for (uint32_t r0 = 0; r0 < n; r0 += chunk) {  // [rows, V] of logits per binding
            const uint32_t rc = std::min(chunk, n - r0);
            ops::record_matmul(enc, matrix(h, DType::f32, rc, C, uint64_t(r0) * C), matrix(params.wte, wdt, V, C), true,
                               matrix(logits.buffer(), DType::f32, rc, V, uint64_t(r0) * V));
        }
        if (read_back) logits.record_copy(enc.recorder, uint64_t(n) * V * 4);
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
    std::vector<float> transposed;
    gpt2_schema(cfg, m.params, [&](vk::Buffer& b, const TensorSpec& spec) {
        const std::vector<float>& t = *host[i++];
        if (m.nk && spec.role == Role::weight) {  // [K, N] -> [N, K]
            const size_t K = size_t(spec.shape[0]), N = size_t(spec.shape[1]);
            transposed.resize(t.size());
            for (size_t k = 0; k < K; ++k)
                for (size_t n = 0; n < N; ++n) transposed[n * K + k] = t[k * N + n];
            b = m.upload(transposed, spec.device_dtype(options.weights), spec.name);
        } else {
            b = m.upload(t, spec.device_dtype(options.weights), spec.name);
        }
    });
    const uint64_t row_bytes = uint64_t(cfg.n_positions) * 3 * uint64_t(cfg.n_embd) * 4;
    for (int l = 0; l < cfg.n_layer; ++l) m.qkv.emplace_back(m.device, row_bytes);
}

Gpt2Gpu::~Gpt2Gpu() = default;

void Gpt2Gpu::reset() {
    impl_->ahead.settle();
    impl_->pos = 0;
}
int Gpt2Gpu::position() const { return impl_->pos; }
const Gpt2Config& Gpt2Gpu::config() const { return impl_->cfg; }
uint64_t Gpt2Gpu::weight_bytes() const { return impl_->weight_bytes; }

std::vector<float> Gpt2Gpu::forward(std::span<const int> tokens, bool all_logits) {
    return forward(tokens, all_logits, {}, nullptr);
}

std::vector<float> Gpt2Gpu::forward(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                    std::vector<LayerAttention>* attention) {
    return step(tokens, all_logits, layers, attention, nullptr, nullptr);
}

LogitSelection Gpt2Gpu::forward_select(std::span<const int> tokens, const LogitRequest& request) {
    LogitSelection selection;
    step(tokens, false, {}, nullptr, &request, &selection);
    return selection;
}

std::vector<float> Gpt2Gpu::step(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                 std::vector<LayerAttention>* attention, const LogitRequest* request, LogitSelection* selection) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = m.cfg;
    m.ahead.settle();
    check_capture_layers(layers, cfg.n_layer);
    if (request) {
        check_request(*request, cfg.vocab_size);
        if (tokens.empty()) throw Error("forward_select needs at least one token");
    }
    const uint32_t T = uint32_t(tokens.size());
    if (T == 0) return {};
    check_tokens(tokens, cfg.vocab_size);
    m.check_context(T);
    const uint32_t H = uint32_t(cfg.n_head), V = uint32_t(cfg.vocab_size);
    const uint32_t pos = uint32_t(m.pos);
    const uint32_t n_logits = all_logits ? T : 1;
    const bool on_device = request && selects_on_device(m.device.info(), V);
    m.ensure_capacity(T, n_logits);

    const uint32_t Lk = pos + T;
    const uint64_t scores_bytes = uint64_t(H) * T * Lk * 4;
    GpuAttentionCapture capture(m.device, attention ? layers : std::span<const int>{}, cfg.n_layer, H, T, Lk,
                                m.weight_bytes + kv_cache_bytes(cfg) + scores_bytes);
    GpuPass p{.T = T, .pos = pos, .runs = {{0, pos, T}}, .scores = {}, .capture = &capture};
    if (!m.options.fused_attention || capture.any()) p.scores.emplace(m.device, scores_bytes);
    m.runtime->run([&](ops::Encoder& enc) {
        m.record_embed(enc, p, tokens);
        m.record_layers(enc, p);
        m.record_head(enc, T - n_logits, n_logits, !on_device);  // only the rows whose logits are wanted
        if (on_device) {
            if (!m.selection) m.selection.emplace(m.device);
            m.selection->record(enc, m.logits.buffer(), 0, V, *request);
        }
    });
    m.pos += int(T);

    if (on_device) {
        *selection = m.selection->read(V);
        return {};
    }
    std::vector<float> out(size_t(n_logits) * V);
    m.logits.read(out.data(), out.size() * 4);
    if (request) {
        *selection = select_on_host(out, *request);
        return {};
    }
    if (attention) *attention = capture.download();
    return out;
}

std::unique_ptr<PendingSelection> Gpt2Gpu::submit_select(int token, const LogitRequest& request) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = m.cfg;
    const uint32_t C = uint32_t(cfg.n_embd), V = uint32_t(cfg.vocab_size);
    check_request(request, cfg.vocab_size);
    const int tokens[] = {token};
    check_tokens(tokens, cfg.vocab_size);
    m.check_context(1);
    // The three-kernel path's scores buffer is per step, and a replayed step binds a layer's whole cache: else
    // no step ahead.
    if (!m.options.fused_attention || m.qkv[0].size() > m.device.info().max_storage_buffer_range) {
        return ready_selection(forward_select(tokens, request));
    }
    return m.ahead.decode(
        m.pos, cfg.n_positions, [&](uint32_t p) { return m.step_at(p); },
        [&](const StepAhead::Step& s) { m.prepare_step(s); },
        [&](ops::Encoder& enc) { ops::record_token_rows(enc, tokens, C, m.wdt, m.params.wte, m.rows); }, m.logits,
        m.selection, V, request);
}

void Gpt2Gpu::forward_shard(const ShardForward& shard) {
    Impl& m = *impl_;
    const Gpt2Config& cfg = m.cfg;
    m.ahead.settle();
    const uint32_t T = uint32_t(check_shard(shard, cfg.vocab_size, cfg.n_positions, cfg.n_positions));
    const uint32_t C = uint32_t(cfg.n_embd), H = uint32_t(cfg.n_head), D = uint32_t(cfg.head_dim());
    const uint32_t V = uint32_t(cfg.vocab_size);
    m.pos = 0;
    const uint32_t chunk = std::min(T, shard_logit_rows(V));
    m.ensure_capacity(T, chunk);

    const GpuPass p = shard_pass(shard, T);
    // The layer's fused Q|K|V rows [T, 3C] as the device holds them, its [H, T, D] head-major views, and the
    // attention's output rows [T, C].
    std::vector<float> qkv_rows(size_t(T) * 3 * C), attn_rows(size_t(T) * C);
    std::vector<float> qh(size_t(T) * C), kh(qh.size()), vh(qh.size()), oh(qh.size());
    for (size_t l = 0; l < m.params.layers.size(); ++l) {
        m.runtime->run([&](ops::Encoder& enc) {
            if (l == 0) m.record_embed(enc, p, shard.tokens);
            else m.record_post_attention(enc, p, l - 1);
            m.record_pre_attention(enc, p, l);
        });
        m.device.download(m.qkv[l], 0, qkv_rows.data(), qkv_rows.size() * 4);
        to_heads(qkv_rows, T, H, D, 3 * C, 0, qh);
        to_heads(qkv_rows, T, H, D, 3 * C, C, kh);
        to_heads(qkv_rows, T, H, D, 3 * C, 2 * C, vh);
        const ShardLayer layer{.layer = int(l), .heads = int(H), .kv_heads = int(H), .head_dim = int(D),
                               .rows = int(T), .window = 0, .scale = float(1.0 / std::sqrt(double(D)))};
        shard.attention->attend(layer, qh, kh, vh, oh);
        from_heads(oh, T, H, D, attn_rows);
        m.device.upload(m.attn, 0, attn_rows.data(), attn_rows.size() * 4);
    }
    std::vector<float> out;
    for (uint32_t r0 = 0; r0 < T; r0 += chunk) {
        const uint32_t n = std::min(chunk, T - r0);
        m.runtime->run([&](ops::Encoder& enc) {
            if (r0 == 0) m.record_post_attention(enc, p, m.params.layers.size() - 1);
            m.record_head(enc, r0, n);
        });
        out.resize(size_t(n) * V);
        m.logits.read(out.data(), out.size() * 4);
        if (shard.logits) shard.logits(int(r0), out);
    }
}

}  // namespace vkattn::model
