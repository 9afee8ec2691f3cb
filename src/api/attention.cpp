// The public attention entry points: check every shape, stride and dtype, then record the kernels.
#include "ops/runtime.hpp"
#include "api/format.hpp"
#include "ops/attention.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <string>

namespace vkattn {
namespace {

constexpr int64_t kMaxDim = INT32_MAX;  // the reference and the CLI count in int; the kernels in uint32

// A checked view as the kernels see it: [B, heads, L, D] with D contiguous, inside its tensor.
ops::TensorRef checked_ref(const TensorView& v, const char* name, Context& ctx) {
    if (v.tensor == nullptr) throw Error(std::string(name) + " is an empty view");
    if (&v.tensor->context() != &ctx) throw Error(std::string(name) + " belongs to another Context");
    const size_t rank = v.shape.size();
    if ((rank != 3 && rank != 4) || v.strides.size() != rank) {
        throw Error(std::string(name) + " must be [B, heads, L, D] or [heads, L, D], got shape " + dims_str(v.shape) +
                    " with strides " + dims_str(v.strides));
    }
    ops::TensorRef r;
    r.buffer = &ops::buffer(*v.tensor);
    r.dtype = v.tensor->dtype();
    r.offset = uint64_t(v.offset);
    const size_t lead = 4 - rank;  // a 3-D view is batch 1
    for (size_t i = 0; i < 4; ++i) {
        r.shape[i] = i < lead ? 1 : v.shape[i - lead];
        r.stride[i] = i < lead ? 0 : v.strides[i - lead];
        if (r.shape[i] < 1) throw Error(std::string(name) + " has an empty dimension: shape " + dims_str(v.shape));
        if (r.stride[i] < 0) throw Error(std::string(name) + " has a negative stride: " + dims_str(v.strides));
    }
    if (r.stride[3] != 1) {
        throw Error(std::string(name) + " must be contiguous in D (stride 1), got stride " + std::to_string(r.stride[3]));
    }
    if (v.offset < 0) throw Error(std::string(name) + " has a negative offset");
    int64_t last = v.offset;
    for (size_t i = 0; i < 4; ++i) last += (r.shape[i] - 1) * r.stride[i];
    if (last >= v.tensor->numel()) {
        throw Error(std::string(name) + " view (shape " + dims_str(v.shape) + ", strides " + dims_str(v.strides) +
                    ", offset " + std::to_string(v.offset) + ") reaches element " + std::to_string(last) +
                    " of a tensor of " + std::to_string(v.tensor->numel()) + " elements");
    }
    return r;
}

struct Checked {
    ops::AttentionDims dims;
    float scale = 1;
};

Checked check_qk(const ops::TensorRef& q, const ops::TensorRef& k, const AttentionParams& params) {
    Checked c;
    const int64_t D = q.shape[3];
    if (D > ops::kMaxHeadDim) {
        throw Error("head dim D = " + std::to_string(D) + " is not supported; it must be 1 to " +
                    std::to_string(ops::kMaxHeadDim));
    }
    if (k.dtype != q.dtype) {
        throw Error("Q is " + std::string(dtype_name(q.dtype)) + " but K is " + std::string(dtype_name(k.dtype)) +
                    "; Q, K, V and the output share one dtype");
    }
    if (q.dtype == DType::bf16) throw Error("attention takes f32 or f16 tensors, not bf16 (a weight storage type)");
    check_attention_options(params.scale, params.window);
    c.dims = {uint32_t(q.shape[0]), uint32_t(q.shape[1]), uint32_t(k.shape[1]),
              uint32_t(q.shape[2]), uint32_t(k.shape[2]), uint32_t(D)};
    c.scale = params.scale > 0 ? params.scale : float(1.0 / std::sqrt(double(D)));
    return c;
}

void check_v_out(const ops::TensorRef& q, const ops::TensorRef& k, const ops::TensorRef& v, const ops::TensorRef& o) {
    if (v.shape != k.shape) {
        throw Error("V has shape " + dims_str(v.shape) + " but K has shape " +
                    dims_str(k.shape) + "; they must match");
    }
    if (o.shape != q.shape) {
        throw Error("the output has shape " + dims_str(o.shape) + " but Q has shape " +
                    dims_str(q.shape) + "; they must match");
    }
    if (v.dtype != q.dtype || o.dtype != q.dtype) {
        throw Error("Q is " + std::string(dtype_name(q.dtype)) + ", V is " + std::string(dtype_name(v.dtype)) +
                    " and the output is " + std::string(dtype_name(o.dtype)) + "; they must share one dtype");
    }
}

void check_scores(const Tensor& t, const ops::AttentionDims& d, const char* name) {
    const std::vector<int64_t> want = {d.B, d.H, d.Lq, d.Lk};
    if (t.shape() != want || t.dtype() != DType::f32) {
        throw Error(std::string(name) + " must be f32 " + dims_str(want) + ", got " +
                    std::string(dtype_name(t.dtype())) + " " + dims_str(t.shape()));
    }
}

ops::MaskArgs mask_args(const AttentionParams& params, const ops::AttentionDims& d) {
    ops::MaskArgs m;
    m.causal = params.causal;
    check_attention_options(params.scale, params.window);
    m.window = uint32_t(params.window);
    if (params.additive_mask != nullptr) {
        const Tensor& a = *params.additive_mask;
        const std::vector<int64_t> want = {d.Lq, d.Lk};
        if (a.shape() != want || a.dtype() != DType::f32) {
            throw Error("the additive mask must be f32 [Lq, Lk] = " + dims_str(want) + ", got " +
                        std::string(dtype_name(a.dtype())) + " " + dims_str(a.shape()));
        }
        m.additive = &ops::buffer(a);
    }
    if (params.key_padding_mask != nullptr) {
        const Tensor& kp = *params.key_padding_mask;
        const std::vector<int64_t> want = {d.B, d.Lk};
        if (kp.shape() != want || kp.dtype() != DType::f32) {
            throw Error("the key-padding mask must be f32 [B, Lk] = " + dims_str(want) + ", got " +
                        std::string(dtype_name(kp.dtype())) + " " + dims_str(kp.shape()));
        }
        m.key_padding = &ops::buffer(kp);
    }
    return m;
}

// The L×L scores live on the device; say so plainly when they cannot.
void check_scores_fit(Context& ctx, const ops::AttentionDims& d) {
    const uint64_t bytes = uint64_t(d.B) * d.H * d.Lq * d.Lk * 4;
    const DeviceInfo& info = ctx.device();
    const uint64_t limit = std::min(info.device_heap_bytes, info.max_memory_allocation);
    if (bytes > limit) {
        throw Error("three-kernel attention needs " + bytes_str(bytes) + " for the [B, H, Lq, Lk] = [" +
                    std::to_string(d.B) + ", " + std::to_string(d.H) + ", " + std::to_string(d.Lq) + ", " +
                    std::to_string(d.Lk) + "] score matrix, more than the " + bytes_str(limit) +
                    " that one allocation on " + info.name + " may hold");
    }
}

}  // namespace

void check_attention_shapes(std::span<const int64_t> q, std::span<const int64_t> k, std::span<const int64_t> v,
                            const AttentionInputNames& names) {
    const auto as4 = [](std::span<const int64_t> s, const std::string& name) {
        if (s.size() != 3 && s.size() != 4) {
            throw Error(name + " must be [B, heads, L, D] or [heads, L, D], got shape " + dims_str(s));
        }
        std::array<int64_t, 4> r{1, 1, 1, 1};
        std::copy(s.begin(), s.end(), r.begin() + (4 - s.size()));
        for (int64_t x : r) {
            if (x < 1 || x > kMaxDim) {
                throw Error(name + " has shape " + dims_str(s) + "; every dimension must be in 1 .. " +
                            std::to_string(kMaxDim));
            }
        }
        return r;
    };
    const auto sq = as4(q, names.q), sk = as4(k, names.k), sv = as4(v, names.v);
    if (sk[0] != sq[0]) {
        throw Error(names.k + " has batch " + std::to_string(sk[0]) + " but " + names.q + " has batch " +
                    std::to_string(sq[0]));
    }
    if (sk[3] != sq[3]) {
        throw Error(names.k + " has head dim " + std::to_string(sk[3]) + " but " + names.q + " has head dim " +
                    std::to_string(sq[3]));
    }
    if (sq[1] % sk[1] != 0) {
        throw Error(names.k + " has " + std::to_string(sk[1]) + " heads, which does not divide the " +
                    std::to_string(sq[1]) + " query heads of " + names.q);
    }
    static const char* const dim_names[] = {"batch", "head count", "length", "head dim"};
    for (size_t i = 0; i < 4; ++i) {
        if (sv[i] != sk[i]) {
            throw Error(names.v + " has shape " + dims_str(sv) + " but " + names.k + " has shape " + dims_str(sk) +
                        ": the " + dim_names[i] + " differs, and V must have K's shape");
        }
    }
}

void check_attention_options(float scale, int window) {
    if (!std::isfinite(scale) || scale < 0) {
        throw Error("attention scale must be positive and finite, or 0 for 1/sqrt(D); got " + std::to_string(scale));
    }
    if (window < 0) throw Error("window must be >= 0 (0 disables it), got " + std::to_string(window));
}

void check_attention_fits(const Context& ctx, std::span<const int64_t> q, std::span<const int64_t> k, DType dtype,
                          AttentionImpl impl) {
    check_attention_shapes(q, k, k);
    const auto as4 = [](std::span<const int64_t> s) {
        std::array<uint64_t, 4> r{1, 1, 1, 1};
        std::copy(s.begin(), s.end(), r.begin() + (4 - s.size()));
        return r;
    };
    const auto sq = as4(q), sk = as4(k);
    const uint64_t es = dtype == DType::f16 ? 2 : 4;
    // Bytes of a tensor, saturating at UINT64_MAX (more than any device holds) instead of wrapping.
    const auto product = [](const std::array<uint64_t, 4>& s, uint64_t item) -> uint64_t {
        uint64_t n = item;
        for (uint64_t x : s) {
            if (n > UINT64_MAX / x) return UINT64_MAX;
            n *= x;
        }
        return n;
    };
    const DeviceInfo& info = ctx.device();
    const uint64_t q_bytes = product(sq, es), k_bytes = product(sk, es);
    const std::string where = " on " + info.name;
    const auto check_tensor = [&](const char* name, std::span<const int64_t> shape, uint64_t bytes, uint64_t slice) {
        if (bytes > info.max_memory_allocation) {
            throw Error(std::string(name) + " " + dims_str(shape) + " " + std::string(dtype_name(dtype)) + " needs " + bytes_str(bytes) +
                        ", more than the " + bytes_str(info.max_memory_allocation) + " that one allocation may hold" + where);
        }
        if (slice > info.max_storage_buffer_range) {
            throw Error(std::string(name) + ": one head's slice needs " + bytes_str(slice) +
                        ", more than the " + bytes_str(info.max_storage_buffer_range) +
                        " that one storage-buffer binding may cover" + where + " (maxStorageBufferRange)");
        }
    };
    check_tensor("Q", q, q_bytes, sq[2] * sq[3] * es);
    check_tensor("K", k, k_bytes, sk[2] * sk[3] * es);
    uint64_t total = q_bytes >= UINT64_MAX / 2 || k_bytes >= UINT64_MAX / 2 ? UINT64_MAX : 2 * q_bytes + 2 * k_bytes;
    std::string parts = "Q, K, V and the output";
    if (impl == AttentionImpl::naive) {
        const uint64_t scores = product({sq[0], sq[1], sq[2], sk[2]}, 4);
        const uint64_t limit = std::min(info.max_memory_allocation, info.max_storage_buffer_range);
        if (scores > limit) {
            throw Error("three-kernel attention needs " + bytes_str(scores) + " for the [B, H, Lq, Lk] = " +
                        dims_str(std::array<int64_t, 4>{int64_t(sq[0]), int64_t(sq[1]), int64_t(sq[2]), int64_t(sk[2])}) +
                        " f32 scores, more than the " + bytes_str(limit) + " that one buffer may hold" + where +
                        "; use the fused path");
        }
        total = total > UINT64_MAX - scores ? UINT64_MAX : total + scores;
        parts += " and the scores";
    }
    if (info.device_heap_bytes != 0 && total > info.device_heap_bytes) {
        throw Error(parts + " need " + bytes_str(total) + " of device memory, more than the " +
                    bytes_str(info.device_heap_bytes) + " heap" + where);
    }
}

void attention(Context& ctx, const TensorView& qv, const TensorView& kv, const TensorView& vv, const TensorView& ov,
               const AttentionParams& params) {
    const ops::TensorRef q = checked_ref(qv, "Q", ctx);
    const ops::TensorRef k = checked_ref(kv, "K", ctx);
    const ops::TensorRef v = checked_ref(vv, "V", ctx);
    const ops::TensorRef o = checked_ref(ov, "the output", ctx);
    check_attention_shapes(q.shape, k.shape, v.shape);
    const Checked c = check_qk(q, k, params);
    check_v_out(q, k, v, o);
    const ops::MaskArgs mask = mask_args(params, c.dims);
    auto& impl = ops::runtime(ctx);
    if (params.impl != AttentionImpl::naive) {
        // No L×L buffer: only the views' bindings limit the sizes, and plan_chunks checks those.
        impl.run([&](ops::Encoder& enc) { ops::record_flash(enc, c.dims, q, k, v, o, mask, c.scale); });
        return;
    }
    check_scores_fit(ctx, c.dims);

    // Scores and probabilities share one buffer: softmax runs in place.
    vk::Buffer scores(impl.device(), uint64_t(c.dims.B) * c.dims.H * c.dims.Lq * c.dims.Lk * 4);
    impl.run([&](ops::Encoder& enc) {
        ops::record_qk(enc, c.dims, q, k, scores, c.scale);
        ops::record_softmax(enc, c.dims, scores, scores, mask);
        ops::record_pv(enc, c.dims, scores, v, o);
    });
}

void attention_scores(Context& ctx, const TensorView& qv, const TensorView& kv, Tensor& scores,
                      const AttentionParams& params) {
    const ops::TensorRef q = checked_ref(qv, "Q", ctx);
    const ops::TensorRef k = checked_ref(kv, "K", ctx);
    check_attention_shapes(q.shape, k.shape, k.shape);
    const Checked c = check_qk(q, k, params);
    check_scores(scores, c.dims, "scores");
    ops::runtime(ctx).run([&](ops::Encoder& enc) { ops::record_qk(enc, c.dims, q, k, ops::buffer(scores), c.scale); });
}

void attention_softmax(Context& ctx, const Tensor& scores, Tensor& probs, const AttentionParams& params) {
    if (scores.shape().size() != 4) {
        throw Error("scores must be [B, H, Lq, Lk], got " + dims_str(scores.shape()));
    }
    const auto& s = scores.shape();
    for (int64_t x : s) {
        if (x < 1 || x > int64_t(UINT32_MAX)) throw Error("scores have an empty or too large dimension: " + dims_str(s));
    }
    ops::AttentionDims d{uint32_t(s[0]), uint32_t(s[1]), uint32_t(s[1]), uint32_t(s[2]), uint32_t(s[3]), 0};
    check_scores(scores, d, "scores");
    check_scores(probs, d, "probs");
    const ops::MaskArgs mask = mask_args(params, d);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_softmax(enc, d, ops::buffer(scores), ops::buffer(probs), mask);
    });
}

void attention_values(Context& ctx, const Tensor& probs, const TensorView& vv, const TensorView& ov) {
    const ops::TensorRef v = checked_ref(vv, "V", ctx);
    const ops::TensorRef o = checked_ref(ov, "the output", ctx);
    if (probs.shape().size() != 4) throw Error("probs must be [B, H, Lq, Lk], got " + dims_str(probs.shape()));
    // Q's shape is the output's; K's is V's: the same checks as the whole attention.
    check_attention_shapes(o.shape, v.shape, v.shape, {"the output", "V", "V"});
    check_qk(o, v, {});
    check_v_out(o, v, v, o);
    const ops::AttentionDims d{uint32_t(o.shape[0]), uint32_t(o.shape[1]), uint32_t(v.shape[1]),
                               uint32_t(o.shape[2]), uint32_t(v.shape[2]), uint32_t(o.shape[3])};
    check_scores(probs, d, "probs");
    ops::runtime(ctx).run([&](ops::Encoder& enc) { ops::record_pv(enc, d, ops::buffer(probs), v, o); });
}

}  // namespace vkattn
