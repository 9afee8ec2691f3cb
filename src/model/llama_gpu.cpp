// The Llama family on the GPU: LlamaCpu's math (llama_cpu.cpp), recorded as one command buffer per step.
//
// Per layer, with x [T, C] the residual stream and P the cache positions:
//   h = rmsnorm(x);  q = h · Wqᵀ (+ bq)                        [T, H·D]
//   kv[pos .. pos+T) = h · [Wk; Wv]ᵀ (+ [bk; bv])               written straight into the layer's cache
//   rope(q, k) at positions pos .. pos+T−1                      in place, k inside the cache rows
//   a = attention(q, K, V) over views of the cache              GQA (H over Hkv), causal bottom-right,
//                                                                the layer's window, Lq = T, Lk = pos + T
//   x += a · Woᵀ (+ bo);  h = rmsnorm(x)
//   g|u = h · [Wgate; Wup]ᵀ                                     one matmul: X read once, one dispatch
//   x += (silu(g) · u) · Wdownᵀ                                 the product overwrites g, read with stride 2I
// then logits = norm(x) · lm_headᵀ (embed_tokens when tied), for the rows asked for.
// The steps are Impl's record_* pieces over a GpuPass (model/shard.hpp): forward records them all in one
// command buffer; forward_shard (sequence parallelism over MPI ranks) submits up to each layer's attention,
// hands q, k and v to a ShardAttention on the host, and goes on with its output.
// The cache holds, per layer, rows [P, 2·Hkv·D] = the Hkv rotated key heads then the Hkv value heads of each
// position: K and V are strided views of it and only the Hkv heads are stored. It starts with room for
// kFirstCachePositions and doubles when a step needs more (copying the cached rows on the GPU), up to
// max_context, so a model with a 128k context costs only the positions it is used for.
//
// Engine access (device, command recording) goes through Impl::device and Impl::run only, so that moving to
// ops::Runtime touches two lines.
#include "ops/runtime.hpp"
#include "cpu/half.hpp"
#include "model/attention_capture.hpp"
#include "model/family.hpp"
#include "model/logit_select.hpp"
#include "model/llama_internal.hpp"
#include "model/shard.hpp"
#include "model/step_ahead.hpp"
#include "ops/attention.hpp"
#include "ops/llama_ops.hpp"
#include "ops/matmul.hpp"
#include "ops/transformer.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/llama_gpu.hpp>
#include <vkattn/units.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace vkattn::model {
namespace {

struct LayerBuffers {
    vk::Buffer input_norm, post_norm;  // [C] f32
    vk::Buffer q_w, kv_w, o_w;         // [H·D, C], [2·Hkv·D, C], [C, H·D] in the weight dtype
    std::optional<vk::Buffer> q_b, kv_b, o_b;  // [H·D], [2·Hkv·D], [C] f32, when the config has them
    vk::Buffer gate_up_w, down_w;      // [2I, C], [C, I]
    vk::Buffer kv;                     // [cache_positions, 2·Hkv·D] f32: the KV cache
};

// One named host tensor going into a device buffer, possibly next to others (fused weights).
struct Part {
    std::string name;
    const std::vector<float>* values;
};

// Rows of identity used to widen gathered f16/bf16 embedding rows to f32 with the matmul kernel.
constexpr uint32_t kWidenRows = 64;

// KV-cache positions allocated by the first forward; the cache then doubles as the context grows.
constexpr uint64_t kFirstCachePositions = 256;

// Bytes of one position of one layer's cache: Hkv rotated key heads, then Hkv value heads, f32.
uint64_t cache_row_bytes(const LlamaConfig& c) { return 2 * uint64_t(c.num_key_value_heads) * uint64_t(c.head_dim) * 4; }

// Device bytes of the weights (the schema at the storage dtype), the RoPE table and the widening identity.
uint64_t weight_device_bytes(const LlamaConfig& c, DType weights) {
    return device_bytes(llama_tensor_specs(c), weights) + uint64_t(c.head_dim / 2) * 4 +
           (weights == DType::f32 ? 0 : uint64_t(kWidenRows) * kWidenRows * 4);
}

// "this llama model (16 layers, hidden 2048)"
std::string model_name(const LlamaConfig& c) {
    return "this " + std::string(llama_family_name(c.family)) + " model (" + std::to_string(c.num_hidden_layers) +
           " layers, hidden " + std::to_string(c.hidden_size) + ")";
}

}  // namespace

struct LlamaGpu::Impl {
    std::shared_ptr<ops::Runtime> runtime;  // shared with the Context: the model may outlive it
    vk::Device& device;
    LlamaConfig cfg;
    LlamaGpuOptions options;
    DType wdt;
    int max_ctx = 0;
    uint64_t weight_bytes = 0;
    uint64_t cache_bytes = 0;
    uint32_t cache_positions = 0;  // positions each layer's cache buffer holds now

    vk::Buffer embed, norm, inv_freq;
    std::optional<vk::Buffer> lm_head;  // absent when tied to embed
    std::optional<vk::Buffer> ident;    // [64, 64] f32 identity, for non-f32 storage
    std::vector<LayerBuffers> layers;
    int pos = 0;

    // Activations for up to `capacity` tokens per step, grown on demand.
    uint32_t capacity = 0;
    uint32_t logits_rows = 0;
    std::optional<vk::Buffer> rows, x, h, q, attn, mlp;
    std::optional<vk::ReadbackBuffer> logits;
    std::optional<DeviceSelection> selection;  // forward_select's kernel state, made on first use
    StepAhead ahead;  // submit_select's steps; last, so that a step in flight completes before the buffers go

    Impl(Context& c, const LlamaWeights& w, const LlamaGpuOptions& o)
        : runtime(ops::shared_runtime(c)), device(runtime->device()), cfg(w.config), options(o), wdt(o.weights),
          ahead(*runtime) {}

    void run(const std::function<void(ops::Encoder&)>& record) { runtime->run(record); }

    // Validates a step of T tokens before it touches the cache, so a bad call leaves the model usable.
    void check_context(uint64_t T) const {
        if (uint64_t(pos) + T > uint64_t(max_ctx)) {
            throw Error("context of " + std::to_string(uint64_t(pos) + T) + " tokens (" + std::to_string(pos) +
                        " cached + " + std::to_string(T) + " new) exceeds the maximum context of " +
                        std::to_string(max_ctx));
        }
    }

    // The parts side by side in one buffer of dtype t; a value t cannot hold is refused naming its tensor.
    vk::Buffer upload(const std::vector<Part>& parts, DType t) {
        size_t n = 0;
        for (const Part& p : parts) n += p.values->size();
        vk::Buffer b(device, uint64_t(n) * dtype_size(t));
        if (t == DType::f32) {
            std::vector<float> all;
            all.reserve(n);
            for (const Part& p : parts) all.insert(all.end(), p.values->begin(), p.values->end());
            device.upload(b, 0, all.data(), all.size() * 4);
        } else {
            std::vector<uint16_t> all(n);
            size_t at = 0;
            for (const Part& p : parts) {
                convert(*p.values, t, all.data() + at, p.name);
                at += p.values->size();
            }
            device.upload(b, 0, all.data(), all.size() * 2);
        }
        weight_bytes += b.size();
        return b;
    }
    vk::Buffer upload(const std::string& name, const std::vector<float>& v, DType t) { return upload({{name, &v}}, t); }

    static void convert(const std::vector<float>& in, DType t, uint16_t* out, const std::string& name) {
        if (t == DType::f16) {
            cpu::floats_to_half(in, out, "weight " + name);
        } else {
            cpu::floats_to_bf16(in, out, "weight " + name);
        }
    }

    // The positions the cache holds once it holds `needed`.
    uint64_t cache_for(uint32_t needed) const {
        if (needed <= cache_positions) return cache_positions;
        return std::min<uint64_t>(uint64_t(max_ctx),
                                  std::max({uint64_t(needed), 2 * uint64_t(cache_positions), kFirstCachePositions}));
    }
    // Grows every layer's cache to hold `needed` positions, keeping the cached rows. Throws before changing
    // anything when the grown cache and the weights would not fit the device.
    void ensure_cache(uint32_t needed) {
        if (needed <= cache_positions) return;
        const uint64_t row = cache_row_bytes(cfg);
        const uint64_t grown = cache_for(needed);
        const uint64_t bytes = uint64_t(layers.size()) * grown * row;
        const DeviceInfo& info = device.info();
        if (weight_bytes + bytes > info.device_heap_bytes) {
            throw Error("a KV cache for " + std::to_string(needed) + " positions (" + bytes_str(bytes) + " at " +
                        std::to_string(grown) + ") and " + bytes_str(weight_bytes) + " of weights exceed the " +
                        bytes_str(info.device_heap_bytes) + " heap of " + info.name);
        }
        std::vector<vk::Buffer> next;
        for (size_t l = 0; l < layers.size(); ++l) next.emplace_back(device, grown * row);
        if (pos > 0) {
            const std::vector<VkBufferCopy> cached = {{0, 0, uint64_t(pos) * row}};
            run([&](ops::Encoder& enc) {
                for (size_t l = 0; l < layers.size(); ++l) enc.recorder.copy(layers[l].kv.get(), next[l].get(), cached);
            });
        }
        for (size_t l = 0; l < layers.size(); ++l) layers[l].kv = std::move(next[l]);
        cache_positions = uint32_t(grown);
        cache_bytes = bytes;
    }

    void ensure_capacity(uint32_t T, uint32_t n_logits) {
        const uint64_t C = uint64_t(cfg.hidden_size), I = uint64_t(cfg.intermediate_size);
        const uint64_t HD = uint64_t(cfg.num_attention_heads) * uint64_t(cfg.head_dim);
        if (T > capacity) {
            rows.emplace(device, T * C * dtype_size(wdt));
            x.emplace(device, T * C * 4);
            h.emplace(device, T * C * 4);
            q.emplace(device, T * HD * 4);
            attn.emplace(device, T * HD * 4);
            mlp.emplace(device, T * 2 * I * 4);
            capacity = T;
        }
        if (n_logits > logits_rows) {
            logits.emplace(device, uint64_t(n_logits) * uint64_t(cfg.vocab_size) * 4);
            logits_rows = n_logits;
        }
    }


    // Embedding rows gathered by copies (the table may exceed one binding); 16-bit rows are widened to f32 by a
    // matmul with the identity, exact: each output is 1 · w plus exact zeros. Two halves, which a step recorded
    // ahead of its token records apart (StepAhead).
    void record_embed(ops::Encoder& enc, std::span<const int> tokens) {
        record_token_rows(enc, tokens);
        record_widen(enc, uint32_t(tokens.size()));
    }
    // The step of one token at position p (StepAhead): its shape (the cache it needs among it) and lengths.
    StepAhead::Step step_at(uint32_t p) const {
        const ops::AttentionDims dims{1, uint32_t(cfg.num_attention_heads), uint32_t(cfg.num_key_value_heads), 1, 1,
                                      uint32_t(cfg.head_dim)};
        return StepAhead::step_at(device.info(), dims, p, cache_for(p + 1));
    }

    // The body of a one-token step of this step's shape (StepAhead): everything but the token's row, the
    // position read from the StepParams buffer, so that it is replayed at every position of the shape.
    void prepare_step(const StepAhead::Step& step) {
        const uint32_t p0 = step.params.pos;
        ensure_cache(p0 + 1);
        ensure_capacity(1, 1);
        const GpuPass p{.T = 1, .pos = p0, .runs = {{0, p0, 1}}, .scores = {}, .capture = nullptr,
                        .step = &ahead.params()};
        ahead.prepare(step.shape, [&](ops::Encoder& enc) {
            record_widen(enc, 1);
            record_layers(enc, p);
            record_head(enc, 0, 1, false);
        });
    }

    void record_token_rows(ops::Encoder& enc, std::span<const int> tokens) {
        ops::record_token_rows(enc, tokens, uint32_t(cfg.hidden_size), wdt, embed, wdt == DType::f32 ? *x : *rows);
    }
    void record_widen(ops::Encoder& enc, uint32_t T) {
        if (wdt == DType::f32) return;
        const uint32_t C = uint32_t(cfg.hidden_size);
        for (uint32_t r0 = 0; r0 < T; r0 += kWidenRows) {
            const uint32_t rc = std::min(kWidenRows, T - r0);
            ops::record_matmul(enc, ops::MatrixRef{&*ident, DType::f32, 0, rc, rc, kWidenRows},
                               ops::matrix(*rows, wdt, rc, C, uint64_t(r0) * C), false,
                               ops::matrix(*x, DType::f32, rc, C, uint64_t(r0) * C));
        }
    }

    // h = rmsnorm(x); q = h · Wqᵀ; the new keys and values into the cache; RoPE on both. A replayed step: the
    // cache row, and RoPE's position, that its StepParams give.
    void record_pre_attention(ops::Encoder& enc, const GpuPass& p, size_t l) {
        const LayerBuffers& b = layers[l];
        const uint32_t C = uint32_t(cfg.hidden_size), H = uint32_t(cfg.num_attention_heads);
        const uint32_t Hkv = uint32_t(cfg.num_key_value_heads), D = uint32_t(cfg.head_dim);
        const uint32_t HD = H * D, KV = 2 * Hkv * D;
        using ops::matrix;
        ops::record_rmsnorm(enc, p.T, C, {&*x, 0, C}, b.input_norm, {&*h, 0, C}, float(cfg.rms_norm_eps));
        ops::record_matmul(enc, matrix(*h, DType::f32, p.T, C), matrix(b.q_w, wdt, HD, C), true,
                           matrix(*q, DType::f32, p.T, HD), {.bias = b.q_b ? &*b.q_b : nullptr});
        const uint64_t first_row = p.step != nullptr ? 0 : p.pos;
        const ops::MatrixRef kv_rows{&b.kv, DType::f32, first_row * KV, p.T, KV, KV};
        ops::record_matmul(enc, matrix(*h, DType::f32, p.T, C), matrix(b.kv_w, wdt, KV, C), true, kv_rows,
                           {.bias = b.kv_b ? &*b.kv_b : nullptr, .step = p.step});
        if (p.step != nullptr) {
            const ops::TensorRef qv{&*q, DType::f32, 0, {1, H, 1, D}, {0, D, HD, 1}};
            const ops::TensorRef k_new{&b.kv, DType::f32, 0, {1, Hkv, 1, D}, {0, D, KV, 1}};
            ops::record_rope(enc, p.pos, inv_freq, qv, k_new, p.step, true);
            return;
        }
        for (const GpuPass::Run& r : p.runs) {
            const int64_t n = r.count;
            const ops::TensorRef qv{&*q, DType::f32, uint64_t(r.row0) * HD, {1, H, n, D}, {0, D, HD, 1}};
            const ops::TensorRef k_new{&b.kv, DType::f32, uint64_t(p.pos + r.row0) * KV, {1, Hkv, n, D}, {0, D, KV, 1}};
            ops::record_rope(enc, r.position, inv_freq, qv, k_new);
        }
    }

    // attn = attention(q, K, V) over cache rows [0, pos + T): GQA, causal bottom-right, the layer's window.
    void record_attention(ops::Encoder& enc, const GpuPass& p, size_t l) {
        const LayerBuffers& b = layers[l];
        const uint32_t H = uint32_t(cfg.num_attention_heads), Hkv = uint32_t(cfg.num_key_value_heads);
        const uint32_t D = uint32_t(cfg.head_dim), HD = H * D, KD = Hkv * D, KV = 2 * KD;
        const uint32_t Lk = p.pos + p.T;
        const ops::AttentionDims dims{1, H, Hkv, p.T, Lk, D};
        // A replayed step binds every row of the cache and reads its key count from the StepParams.
        const int64_t rows_bound = p.step != nullptr ? int64_t(cache_positions) : int64_t(Lk);
        const ops::TensorRef qv{&*q, DType::f32, 0, {1, H, p.T, D}, {0, D, HD, 1}};
        const ops::TensorRef k{&b.kv, DType::f32, 0, {1, Hkv, rows_bound, D}, {0, D, KV, 1}};
        const ops::TensorRef v{&b.kv, DType::f32, KD, {1, Hkv, rows_bound, D}, {0, D, KV, 1}};
        const ops::TensorRef o{&*attn, DType::f32, 0, {1, H, p.T, D}, {0, D, HD, 1}};
        const ops::MaskArgs mask{.causal = true, .window = uint32_t(cfg.window(int(l)))};
        const float scale = float(1.0 / std::sqrt(double(D)));
        record_layer_attention(enc, dims, qv, k, v, o, mask, scale, options.fused_attention,
                               p.scores ? &*p.scores : nullptr, p.capture, l, {.step = p.step});
    }

    // x += attn · Woᵀ; x += MLP(rmsnorm(x)).
    void record_post_attention(ops::Encoder& enc, const GpuPass& p, size_t l) {
        const LayerBuffers& b = layers[l];
        const uint32_t C = uint32_t(cfg.hidden_size), I = uint32_t(cfg.intermediate_size);
        const uint32_t HD = uint32_t(cfg.num_attention_heads) * uint32_t(cfg.head_dim);
        using ops::matrix;
        ops::record_matmul(enc, matrix(*attn, DType::f32, p.T, HD), matrix(b.o_w, wdt, C, HD), true,
                           matrix(*x, DType::f32, p.T, C), {.bias = b.o_b ? &*b.o_b : nullptr, .accumulate = true});
        ops::record_rmsnorm(enc, p.T, C, {&*x, 0, C}, b.post_norm, {&*h, 0, C}, float(cfg.rms_norm_eps));
        ops::record_matmul(enc, matrix(*h, DType::f32, p.T, C), matrix(b.gate_up_w, wdt, 2 * I, C), true,
                           matrix(*mlp, DType::f32, p.T, 2 * I));
        ops::record_swiglu(enc, p.T, I, {&*mlp, 0, 2 * I}, {&*mlp, I, 2 * I}, {&*mlp, 0, 2 * I});
        ops::record_matmul(enc, ops::MatrixRef{&*mlp, DType::f32, 0, p.T, I, 2 * I}, matrix(b.down_w, wdt, C, I), true,
                           matrix(*x, DType::f32, p.T, C), {.accumulate = true});
    }

    // Every layer, embedding done (x) to the input of the final norm.
    void record_layers(ops::Encoder& enc, const GpuPass& p) {
        for (size_t l = 0; l < layers.size(); ++l) {
            record_pre_attention(enc, p, l);
            record_attention(enc, p, l);
            record_post_attention(enc, p, l);
        }
    }

    // logits rows [0, n) = norm(x rows [first, first + n)) · lm_headᵀ, in chunks that fit one binding.
    void record_head(ops::Encoder& enc, uint32_t first, uint32_t n, bool read_back = true) {
        const uint32_t C = uint32_t(cfg.hidden_size), V = uint32_t(cfg.vocab_size);
        const uint64_t max_range = device.info().max_storage_buffer_range;
        const uint32_t chunk = uint32_t(std::max<uint64_t>(1, (max_range - 256) / (uint64_t(V) * 4)));
        const vk::Buffer& head = lm_head ? *lm_head : embed;
        using ops::matrix;
        ops::record_rmsnorm(enc, n, C, {&*x, first * C, C}, norm, {&*h, 0, C}, float(cfg.rms_norm_eps));
        for (uint32_t r0 = 0; r0 < n; r0 += chunk) {  // [rows, V] of logits per binding
            const uint32_t rc = std::min(chunk, n - r0);
            ops::record_matmul(enc, matrix(*h, DType::f32, rc, C, uint64_t(r0) * C), matrix(head, wdt, V, C), true,
                               matrix(logits->buffer(), DType::f32, rc, V, uint64_t(r0) * V));
        }
        if (read_back) logits->record_copy(enc.recorder, uint64_t(n) * V * 4);
    }
};

int LlamaGpu::context_limit(const DeviceInfo& info, const LlamaConfig& cfg, const LlamaGpuOptions& options) {
    const uint64_t wanted = uint64_t(options.max_context > 0 ? options.max_context : cfg.max_position_embeddings);
    // Attention binds a layer's whole cache as one storage buffer.
    return int(std::min(wanted, info.max_storage_buffer_range / cache_row_bytes(cfg)));
}

void LlamaGpu::check(const DeviceInfo& info, const LlamaConfig& cfg, const LlamaGpuOptions& options) {
    cfg.validate();
    if (options.weights != DType::f32 && !info.storage_16bit) {
        throw Error(std::string(dtype_name(options.weights)) + " weights need 16-bit storage buffers, which " +
                    info.name + " does not have");
    }
    if (options.max_context < 0) {
        throw Error("max_context is " + std::to_string(options.max_context) + ", expected 0 (the model's) or more");
    }
    const int D = cfg.head_dim;
    if (D > ops::kMaxHeadDim) {
        throw Error("head_dim " + std::to_string(D) + " is past the " + std::to_string(ops::kMaxHeadDim) +
                    " the attention kernels take");
    }
    if (D % 2 != 0) throw Error("head_dim " + std::to_string(D) + " is odd; RoPE pairs i with i + head_dim/2");
    const int limit = context_limit(info, cfg, options);
    if (limit < 1) {
        throw Error(model_name(cfg) + " needs " + bytes_str(cache_row_bytes(cfg)) + " per KV-cache position, " +
                    "more than the " + bytes_str(info.max_storage_buffer_range) + " storage-buffer range of " +
                    info.name);
    }
    // The weights and the cache's first allocation; later growth is checked as it happens.
    const uint64_t cache = uint64_t(cfg.num_hidden_layers) * std::min<uint64_t>(uint64_t(limit), kFirstCachePositions) *
                           cache_row_bytes(cfg);
    check_fits_device(info, model_name(cfg), weight_device_bytes(cfg, options.weights), options.weights, cache);
}

LlamaGpu::LlamaGpu(Context& ctx, const LlamaWeights& w, const LlamaGpuOptions& options) {
    check_llama_weights(w);  // also validates the config
    const LlamaConfig& cfg = w.config;
    check(ctx.device(), cfg, options);  // before allocating anything
    const int max_ctx = context_limit(ctx.device(), cfg, options);

    impl_ = std::make_unique<Impl>(ctx, w, options);
    Impl& m = *impl_;
    m.max_ctx = max_ctx;
    const DType wdt = options.weights;
    m.embed = m.upload("model.embed_tokens.weight", w.embed_tokens, wdt);
    if (!cfg.tie_word_embeddings) m.lm_head = m.upload("lm_head.weight", w.lm_head, wdt);
    m.norm = m.upload("model.norm.weight", w.norm, DType::f32);
    m.inv_freq = m.upload("rope inv_freq", llama_inv_freq(cfg), DType::f32);
    if (wdt != DType::f32) {
        std::vector<float> eye(kWidenRows * kWidenRows, 0.0f);
        for (uint32_t i = 0; i < kWidenRows; ++i) eye[i * kWidenRows + i] = 1.0f;
        m.ident = m.upload("identity", eye, DType::f32);
    }
    for (size_t l = 0; l < w.layers.size(); ++l) {
        const LlamaLayerWeights& lw = w.layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        LayerBuffers b{
            .input_norm = m.upload(p + "input_layernorm.weight", lw.input_layernorm, DType::f32),
            .post_norm = m.upload(p + "post_attention_layernorm.weight", lw.post_attention_layernorm, DType::f32),
            .q_w = m.upload(p + "self_attn.q_proj.weight", lw.q_proj, wdt),
            .kv_w = m.upload({{p + "self_attn.k_proj.weight", &lw.k_proj}, {p + "self_attn.v_proj.weight", &lw.v_proj}},
                             wdt),
            .o_w = m.upload(p + "self_attn.o_proj.weight", lw.o_proj, wdt),
            .q_b = {},
            .kv_b = {},
            .o_b = {},
            .gate_up_w = m.upload({{p + "mlp.gate_proj.weight", &lw.gate_proj}, {p + "mlp.up_proj.weight", &lw.up_proj}},
                                  wdt),
            .down_w = m.upload(p + "mlp.down_proj.weight", lw.down_proj, wdt),
            .kv = {},
        };
        if (cfg.qkv_bias) {
            b.q_b = m.upload(p + "self_attn.q_proj.bias", lw.q_bias, DType::f32);
            b.kv_b = m.upload({{p + "self_attn.k_proj.bias", &lw.k_bias}, {p + "self_attn.v_proj.bias", &lw.v_bias}},
                              DType::f32);
        }
        if (cfg.o_bias) b.o_b = m.upload(p + "self_attn.o_proj.bias", lw.o_bias, DType::f32);
        m.layers.push_back(std::move(b));
    }
}

LlamaGpu::~LlamaGpu() = default;

void LlamaGpu::reset() {
    impl_->ahead.settle();
    impl_->pos = 0;
}
int LlamaGpu::position() const { return impl_->pos; }
int LlamaGpu::max_context() const { return impl_->max_ctx; }
const LlamaConfig& LlamaGpu::config() const { return impl_->cfg; }
uint64_t LlamaGpu::weight_bytes() const { return impl_->weight_bytes; }
uint64_t LlamaGpu::cache_bytes() const { return impl_->cache_bytes; }

std::vector<float> LlamaGpu::forward(std::span<const int> tokens, bool all_logits) {
    return forward(tokens, all_logits, {}, nullptr);
}

std::vector<float> LlamaGpu::forward(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                     std::vector<LayerAttention>* attention) {
    return step(tokens, all_logits, layers, attention, nullptr, nullptr);
}

LogitSelection LlamaGpu::forward_select(std::span<const int> tokens, const LogitRequest& request) {
    LogitSelection selection;
    step(tokens, false, {}, nullptr, &request, &selection);
    return selection;
}

std::vector<float> LlamaGpu::step(std::span<const int> tokens, bool all_logits, std::span<const int> layers,
                                  std::vector<LayerAttention>* attention, const LogitRequest* request, LogitSelection* selection) {
    Impl& m = *impl_;
    const LlamaConfig& cfg = m.cfg;
    m.ahead.settle();
    check_capture_layers(layers, cfg.num_hidden_layers);
    if (request) {
        check_request(*request, cfg.vocab_size);
        if (tokens.empty()) throw Error("forward_select needs at least one token");
    }
    // Validate everything before touching the cache, so a bad call leaves the model usable.
    check_tokens(tokens, cfg.vocab_size);
    m.check_context(tokens.size());
    const uint32_t T = uint32_t(tokens.size());
    if (T == 0) return {};
    const uint32_t H = uint32_t(cfg.num_attention_heads), V = uint32_t(cfg.vocab_size);
    const uint32_t pos = uint32_t(m.pos);
    const uint32_t n_logits = all_logits ? T : 1;
    const bool on_device = request && selects_on_device(m.device.info(), V);
    m.ensure_cache(pos + T);
    m.ensure_capacity(T, n_logits);

    const uint32_t Lk = pos + T;
    const uint64_t scores_bytes = uint64_t(H) * T * Lk * 4;
    GpuAttentionCapture capture(m.device, attention ? layers : std::span<const int>{}, cfg.num_hidden_layers, H, T, Lk,
                                m.weight_bytes + m.cache_bytes + scores_bytes);
    GpuPass p{.T = T, .pos = pos, .runs = {{0, pos, T}}, .scores = {}, .capture = &capture};
    if (!m.options.fused_attention || capture.any()) p.scores.emplace(m.device, scores_bytes);
    m.run([&](ops::Encoder& enc) {
        m.record_embed(enc, tokens);
        m.record_layers(enc, p);
        m.record_head(enc, T - n_logits, n_logits, !on_device);  // only the rows whose logits are wanted
        if (on_device) {
            if (!m.selection) m.selection.emplace(m.device);
            m.selection->record(enc, m.logits->buffer(), 0, V, *request);
        }
    });
    m.pos += int(T);

    if (on_device) {
        *selection = m.selection->read(V);
        return {};
    }
    std::vector<float> out(size_t(n_logits) * V);
    m.logits->read(out.data(), out.size() * 4);
    if (request) {
        *selection = select_on_host(out, *request);
        return {};
    }
    if (attention) *attention = capture.download();
    return out;
}

std::unique_ptr<PendingSelection> LlamaGpu::submit_select(int token, const LogitRequest& request) {
    Impl& m = *impl_;
    const LlamaConfig& cfg = m.cfg;
    const uint32_t V = uint32_t(cfg.vocab_size);
    check_request(request, cfg.vocab_size);
    const int tokens[] = {token};
    check_tokens(tokens, cfg.vocab_size);
    m.check_context(1);
    if (!m.options.fused_attention) {  // the three-kernel path's scores buffer is per step: no step ahead
        return ready_selection(forward_select(tokens, request));
    }
    return m.ahead.decode(
        m.pos, m.max_ctx, [&](uint32_t p) { return m.step_at(p); }, [&](const StepAhead::Step& s) { m.prepare_step(s); },
        [&](ops::Encoder& enc) { m.record_token_rows(enc, tokens); }, *m.logits, m.selection, V, request);
}

void LlamaGpu::forward_shard(const ShardForward& shard) {
    Impl& m = *impl_;
    const LlamaConfig& cfg = m.cfg;
    m.ahead.settle();
    const uint32_t T = uint32_t(check_shard(shard, cfg.vocab_size, cfg.max_position_embeddings, m.max_ctx));
    const uint32_t H = uint32_t(cfg.num_attention_heads), Hkv = uint32_t(cfg.num_key_value_heads);
    const uint32_t D = uint32_t(cfg.head_dim), HD = H * D, KD = Hkv * D, KV = 2 * KD, V = uint32_t(cfg.vocab_size);
    m.pos = 0;
    m.ensure_cache(T);
    const uint32_t chunk = std::min(T, shard_logit_rows(V));
    m.ensure_capacity(T, chunk);

    const GpuPass p = shard_pass(shard, T);
    // Host copies of the layer's rows, [T, H·D] and [T, 2·Hkv·D] as the device holds them, and the
    // attention's [H, T, D] / [Hkv, T, D] head-major views.
    std::vector<float> q_rows(size_t(T) * HD), kv_rows(size_t(T) * KV), attn_rows(size_t(T) * HD);
    std::vector<float> qh(q_rows.size()), kh(size_t(T) * KD), vh(size_t(T) * KD), oh(q_rows.size());
    for (size_t l = 0; l < m.layers.size(); ++l) {
        m.run([&](ops::Encoder& enc) {
            if (l == 0) m.record_embed(enc, shard.tokens);
            else m.record_post_attention(enc, p, l - 1);
            m.record_pre_attention(enc, p, l);
        });
        m.device.download(*m.q, 0, q_rows.data(), q_rows.size() * 4);
        m.device.download(m.layers[l].kv, 0, kv_rows.data(), kv_rows.size() * 4);
        to_heads(q_rows, T, H, D, HD, 0, qh);
        to_heads(kv_rows, T, Hkv, D, KV, 0, kh);
        to_heads(kv_rows, T, Hkv, D, KV, KD, vh);
        const ShardLayer layer{.layer = int(l), .heads = int(H), .kv_heads = int(Hkv), .head_dim = int(D),
                               .rows = int(T), .window = cfg.window(int(l)),
                               .scale = float(1.0 / std::sqrt(double(D)))};
        shard.attention->attend(layer, qh, kh, vh, oh);
        from_heads(oh, T, H, D, attn_rows);
        m.device.upload(*m.attn, 0, attn_rows.data(), attn_rows.size() * 4);
    }
    std::vector<float> out;
    for (uint32_t r0 = 0; r0 < T; r0 += chunk) {
        const uint32_t n = std::min(chunk, T - r0);
        m.run([&](ops::Encoder& enc) {
            if (r0 == 0) m.record_post_attention(enc, p, m.layers.size() - 1);
            m.record_head(enc, r0, n);
        });
        out.resize(size_t(n) * V);
        m.logits->read(out.data(), out.size() * 4);
        if (shard.logits) shard.logits(int(r0), out);
    }
}

}  // namespace vkattn::model
