// rope: rotary position embedding in place on Q and K (shaders/rope.comp).
#include "llama_params.h"
#include "ops/llama_ops.hpp"
#include "ops/shader_table.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::ops {
namespace {

constexpr uint32_t kWg = 64;

std::string view_shape(const TensorRef& v) {
    return "[" + std::to_string(v.shape[0]) + ", " + std::to_string(v.shape[1]) + ", " + std::to_string(v.shape[2]) +
           ", " + std::to_string(v.shape[3]) + "] with strides [" + std::to_string(v.stride[0]) + ", " +
           std::to_string(v.stride[1]) + ", " + std::to_string(v.stride[2]) + ", " + std::to_string(v.stride[3]) + "]";
}

}  // namespace

void record_rope(Encoder& enc, uint32_t pos0, const vk::Buffer& inv_freq, const TensorRef& q, const TensorRef& k,
                 const vk::Buffer* step, bool k_at_step) {
    const int64_t T = q.shape[2], D = q.shape[3];
    const bool has_k = k.buffer != nullptr && k.shape[1] > 0;
    // The kernel indexes heads D apart and elements 1 apart: any other layout is a caller's mistake.
    for (const TensorRef* v : {&q, &k}) {
        if (v == &k && !has_k) continue;
        if (v->dtype != DType::f32 || v->shape[0] != 1 || v->stride[1] != D || v->stride[3] != 1 ||
            v->shape[2] != T || v->shape[3] != D) {
            throw Error("internal: rope expects f32 views [1, heads, " + std::to_string(T) + ", " +
                        std::to_string(D) + "] with strides [0, " + std::to_string(D) + ", row, 1], got " +
                        std::string(dtype_name(v->dtype)) + " " + view_shape(*v));
        }
    }
    if (D % 2 != 0 || D == 0) throw Error("RoPE needs an even head dim, got " + std::to_string(D));
    if (inv_freq.size() < uint64_t(D / 2) * 4) {
        throw Error("internal: the RoPE frequency table has " + std::to_string(inv_freq.size() / 4) +
                    " entries, the head dim " + std::to_string(D) + " needs " + std::to_string(D / 2));
    }
    // Positions are exact floats, and the kernel's angle reduction covers angles below 2^24 (inv_freq <= 1).
    if (uint64_t(pos0) + uint64_t(T) > (uint64_t(1) << 24)) {
        throw Error("RoPE positions reach " + std::to_string(uint64_t(pos0) + T) + ", past the supported 2^24");
    }
    const uint64_t heads = uint64_t(q.shape[1]) + (has_k ? uint64_t(k.shape[1]) : 0);
    const uint64_t total = uint64_t(T) * heads * uint64_t(D / 2);
    if (total == 0) return;
    if (total >= (uint64_t(1) << 32)) throw Error("internal: rope over more than 2^32 pairs");

    // Bind just the rows of each view: a KV cache may exceed one binding while one step's rows do not.
    const BoundView bq = bind_view(enc.device, q, uint32_t(q.shape[1]), 0, uint32_t(q.shape[1]));
    if (k_at_step && (step == nullptr || !has_k)) throw Error("internal: rope's k_at_step without a step buffer or k");
    BoundView bk = has_k ? bind_view(enc.device, k, uint32_t(k.shape[1]), 0, uint32_t(k.shape[1])) : bq;
    if (k_at_step) {  // the rows of whichever position the step runs for: k's buffer from its first row on
        const uint64_t start = bk.binding.offset;
        bk.binding.range = k.buffer->size() - start;
    }
    const uint64_t max_range = enc.device.info().max_storage_buffer_range;
    if (bq.binding.range > max_range || bk.binding.range > max_range) {
        throw Error("RoPE rows of " + std::to_string(std::max(bq.binding.range, bk.binding.range)) +
                    " bytes exceed the device's maxStorageBufferRange of " + std::to_string(max_range) + " bytes");
    }

    glsl::RopeParams p{};
    p.T = uint32_t(T);
    p.D = uint32_t(D);
    p.pos0 = pos0;
    p.q_offset = bq.offset;
    p.q_stride = uint32_t(q.stride[2]);
    p.q_heads = uint32_t(q.shape[1]);
    p.k_offset = has_k ? bk.offset : 0;
    p.k_stride = has_k ? uint32_t(k.stride[2]) : 0;
    p.k_heads = has_k ? uint32_t(k.shape[1]) : 0;
    p.step = step != nullptr ? 1u | (k_at_step ? 2u : 0u) : 0u;
    const vk::Pipeline& pipeline = enc.pipelines.get({"rope", spirv("rope"), 4, sizeof(glsl::RopeParams), {kWg}});
    const vk::Binding table = bind_whole(enc.device, inv_freq, "the RoPE frequency table");
    const vk::Binding bindings[] = {table, bq.binding, bk.binding,
                                    step != nullptr ? bind_whole(enc.device, *step, "the step's position") : table};
    // One invocation per (t, head, pair), flattened over x and, past the x limit, y.
    const uint64_t groups = (total + kWg - 1) / kWg;
    const uint32_t gx = uint32_t(std::min<uint64_t>(groups, enc.device.info().max_workgroup_count[0]));
    enc.recorder.dispatch(pipeline, bindings, &p, sizeof(p), {gx, uint32_t((groups + gx - 1) / gx), 1}, "rope");
}

}  // namespace vkattn::ops
