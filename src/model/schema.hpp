// A model's tensors as data: one entry per tensor with its Hugging Face name, its shape (computed from the
// config) and its role. Each family writes its table once (e.g. src/model/gpt2_schema.hpp); the loader, the
// synthetic weights, both forwards' size checks, the GPU upload, the memory estimate and the tests'
// checkpoint writer all walk that table.
#pragma once

#include "cpu/half.hpp"

#include <vkattn/dtype.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vkattn::model {

enum class Role {
    embedding,  // a table of rows (token or position embeddings): weight storage on the GPU
    weight,     // a matmul weight: weight storage on the GPU (f16 when asked)
    bias,       // added after a matmul: f32
    norm_gain,  // LayerNorm / RMSNorm scale: f32, synthetic values around 1
    norm_bias,  // LayerNorm shift: f32
};

// "[768, 2304]"
inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

struct TensorSpec {
    std::string name;            // as Hugging Face saves it, without a wrapper prefix ("h.0.attn.c_attn.weight")
    std::vector<int64_t> shape;  // from the config
    Role role = Role::weight;
    int layer = -1;              // the block it belongs to; -1 outside the blocks

    int64_t numel() const {
        int64_t n = 1;
        for (const int64_t d : shape) n *= d;
        return n;
    }
    // Storage on the GPU when the matmul weights are stored as `weights`.
    DType device_dtype(DType weights) const {
        return role == Role::embedding || role == Role::weight ? weights : DType::f32;
    }
};

// Bytes the tensors take on the device with the matmul weights stored as `weights`.
inline uint64_t device_bytes(const std::vector<TensorSpec>& schema, DType weights) {
    uint64_t bytes = 0;
    for (const TensorSpec& t : schema) bytes += uint64_t(t.numel()) * dtype_size(t.device_dtype(weights));
    return bytes;
}

// values rounded to how the GPU stores a tensor of this spec when the matmul weights are `weights` (f16 or
// bf16 bits widened back to float; f32 tensors unchanged): the CPU reference then computes with exactly the
// numbers the GPU model reads. A value past the dtype's range is refused naming the tensor, as on the GPU.
inline void round_to_storage(std::vector<float>& values, const TensorSpec& spec, DType weights) {
    const DType t = spec.device_dtype(weights);
    if (t == DType::f32) return;
    std::vector<uint16_t> bits(values.size());
    if (t == DType::f16) {
        cpu::floats_to_half(values, bits.data(), "weight " + spec.name);
        for (size_t i = 0; i < values.size(); ++i) values[i] = cpu::half_to_float(bits[i]);
    } else {
        cpu::floats_to_bf16(values, bits.data(), "weight " + spec.name);
        for (size_t i = 0; i < values.size(); ++i) values[i] = cpu::bf16_to_float(bits[i]);
    }
}

inline uint64_t parameter_count(const std::vector<TensorSpec>& schema) {
    uint64_t n = 0;
    for (const TensorSpec& t : schema) n += uint64_t(t.numel());
    return n;
}

}  // namespace vkattn::model
