// The public attention entry points: check every shape, stride and dtype, then record the kernels.
#include "api/context_impl.hpp"
#include "api/format.hpp"
#include "ops/attention.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace vkattn {
namespace {

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
    r.buffer = &v.tensor->impl().buffer;
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
    if (k.shape[0] != q.shape[0]) {
        throw Error("K has batch " + std::to_string(k.shape[0]) + " but Q has batch " + std::to_string(q.shape[0]));
    }
    if (k.shape[3] != q.shape[3]) {
        throw Error("K has head dim " + std::to_string(k.shape[3]) + " but Q has head dim " + std::to_string(q.shape[3]));
    }
    if (q.shape[1] % k.shape[1] != 0) {
        throw Error("K has " + std::to_string(k.shape[1]) + " heads, which does not divide the " +
                    std::to_string(q.shape[1]) + " query heads");
    }
    const int64_t D = q.shape[3];
    if (D > ops::kMaxHeadDim) {
        throw Error("head dim D = " + std::to_string(D) + " is not supported; it must be 1 to " +
                    std::to_string(ops::kMaxHeadDim));
    }
    if (k.dtype != q.dtype) {
        throw Error("Q is " + std::string(dtype_name(q.dtype)) + " but K is " + std::string(dtype_name(k.dtype)) +
                    "; Q, K, V and the output share one dtype");
    }
    for (int64_t x : {q.shape[0], q.shape[1], q.shape[2], k.shape[2]}) {
        if (x > int64_t(UINT32_MAX)) throw Error("attention dimension " + std::to_string(x) + " is too large");
    }
    if (!std::isfinite(params.scale)) throw Error("attention scale must be finite");
    if (params.window < 0) throw Error("window must be >= 0 (0 disables it), got " + std::to_string(params.window));
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
    if (params.window < 0) throw Error("window must be >= 0 (0 disables it), got " + std::to_string(params.window));
    m.window = uint32_t(params.window);
    if (params.additive_mask != nullptr) {
        const Tensor& a = *params.additive_mask;
        const std::vector<int64_t> want = {d.Lq, d.Lk};
        if (a.shape() != want || a.dtype() != DType::f32) {
            throw Error("the additive mask must be f32 [Lq, Lk] = " + dims_str(want) + ", got " +
                        std::string(dtype_name(a.dtype())) + " " + dims_str(a.shape()));
        }
        m.additive = &a.impl().buffer;
    }
    if (params.key_padding_mask != nullptr) {
        const Tensor& kp = *params.key_padding_mask;
        const std::vector<int64_t> want = {d.B, d.Lk};
        if (kp.shape() != want || kp.dtype() != DType::f32) {
            throw Error("the key-padding mask must be f32 [B, Lk] = " + dims_str(want) + ", got " +
                        std::string(dtype_name(kp.dtype())) + " " + dims_str(kp.shape()));
        }
        m.key_padding = &kp.impl().buffer;
    }
    return m;
}

// The L×L scores live on the device; say so plainly when they cannot.
void check_scores_fit(Context& ctx, const ops::AttentionDims& d) {
    const uint64_t bytes = uint64_t(d.B) * d.H * d.Lq * d.Lk * 4;
    const DeviceInfo& info = ctx.device();
    const uint64_t limit = std::min(info.device_heap_bytes, info.max_memory_allocation);
    if (bytes > limit) {
        throw Error("three-kernel attention needs " + std::to_string(bytes) + " bytes for the [B, H, Lq, Lk] = [" +
                    std::to_string(d.B) + ", " + std::to_string(d.H) + ", " + std::to_string(d.Lq) + ", " +
                    std::to_string(d.Lk) + "] score matrix, more than the " + std::to_string(limit) +
                    " bytes one allocation on " + info.name + " may hold");
    }
}

}  // namespace

void attention(Context& ctx, const TensorView& qv, const TensorView& kv, const TensorView& vv, const TensorView& ov,
               const AttentionParams& params) {
    const ops::TensorRef q = checked_ref(qv, "Q", ctx);
    const ops::TensorRef k = checked_ref(kv, "K", ctx);
    const ops::TensorRef v = checked_ref(vv, "V", ctx);
    const ops::TensorRef o = checked_ref(ov, "the output", ctx);
    const Checked c = check_qk(q, k, params);
    check_v_out(q, k, v, o);
    const ops::MaskArgs mask = mask_args(params, c.dims);
    auto& impl = ctx.impl();
    if (params.impl != AttentionImpl::naive) {
        // No L×L buffer: only the views' bindings limit the sizes, and plan_chunks checks those.
        impl.run([&](ops::Encoder& enc) { ops::record_flash(enc, c.dims, q, k, v, o, mask, c.scale); });
        return;
    }
    check_scores_fit(ctx, c.dims);

    // Scores and probabilities share one buffer: softmax runs in place.
    vk::Buffer scores(impl.device, uint64_t(c.dims.B) * c.dims.H * c.dims.Lq * c.dims.Lk * 4);
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
    const Checked c = check_qk(q, k, params);
    check_scores(scores, c.dims, "scores");
    ctx.impl().run([&](ops::Encoder& enc) { ops::record_qk(enc, c.dims, q, k, scores.impl().buffer, c.scale); });
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
    ctx.impl().run([&](ops::Encoder& enc) {
        ops::record_softmax(enc, d, scores.impl().buffer, probs.impl().buffer, mask);
    });
}

void attention_values(Context& ctx, const Tensor& probs, const TensorView& vv, const TensorView& ov) {
    const ops::TensorRef v = checked_ref(vv, "V", ctx);
    const ops::TensorRef o = checked_ref(ov, "the output", ctx);
    if (probs.shape().size() != 4) throw Error("probs must be [B, H, Lq, Lk], got " + dims_str(probs.shape()));
    // Q's shape is the output's; K's is V's: the same checks as the whole attention.
    check_qk(o, v, {});
    check_v_out(o, v, v, o);
    const ops::AttentionDims d{uint32_t(o.shape[0]), uint32_t(o.shape[1]), uint32_t(v.shape[1]),
                               uint32_t(o.shape[2]), uint32_t(v.shape[2]), uint32_t(o.shape[3])};
    check_scores(probs, d, "probs");
    ctx.impl().run([&](ops::Encoder& enc) { ops::record_pv(enc, d, probs.impl().buffer, v, o); });
}

}  // namespace vkattn
