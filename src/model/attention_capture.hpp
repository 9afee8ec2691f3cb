// How a family's forward captures attention weights (include/vkattn/model/attention_capture.hpp): the family
// builds one of these per step and calls it at its softmax site, so that the capture is one or two lines of
// each forward loop.
#pragma once

#include "cpu/attention.hpp"
#include "ops/attention.hpp"
#include "ops/encoder.hpp"

#include <vkattn/model/attention_capture.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace vkattn::model {

// The GPU side: one device buffer per captured layer, filled by a copy of the scores buffer right after that
// layer's softmax (inside the step's command buffer: the copy is fenced by barriers from the softmax and to
// the next layer's scores), and downloaded once after the step.
class GpuAttentionCapture {
public:
    // Checks the layers (check_capture_layers) and allocates [H, Lq, Lk] f32 per captured layer. Throws
    // vkattn::Error before allocating when those buffers and the `resident` bytes (weights, KV cache, scores)
    // exceed the device heap. Nothing is allocated when layers is empty.
    GpuAttentionCapture(vk::Device& device, std::span<const int> layers, int n_layer, uint32_t H, uint32_t Lq,
                        uint32_t Lk, uint64_t resident);

    bool any() const { return !layers_.empty(); }
    bool wants(size_t layer) const { return layer < slot_.size() && slot_[layer] >= 0; }
    // Copies probs [H, Lq, Lk] f32 (the softmax output of `layer`) into its capture buffer; records nothing
    // for a layer not captured.
    void record(ops::Encoder& enc, size_t layer, const vk::Buffer& probs);
    // After the step ran: the captured layers, in the order they were asked for.
    std::vector<LayerAttention> download();

private:
    vk::Device& device_;
    std::vector<int> layers_;     // as asked for
    std::vector<int> slot_;       // [n_layer]: index into layers_, or -1
    std::vector<vk::Buffer> buffers_;  // [layers_.size()] of [H, Lq, Lk] f32
    uint32_t H_ = 0, Lq_ = 0, Lk_ = 0;
};

// The CPU side: the reference's softmax of the same queries and keys the reference attention reads.
class CpuAttentionCapture {
public:
    // Checks the layers (check_capture_layers); a captured layer's probabilities are filled by record().
    CpuAttentionCapture(std::span<const int> layers, int n_layer, int H, int Lq, int Lk);

    bool any() const { return !out_.empty(); }
    bool wants(int layer) const { return layer >= 0 && size_t(layer) < slot_.size() && slot_[size_t(layer)] >= 0; }
    // Query heads head0 .. head0 + shape.H - 1 of `layer`: softmax(mask(scale · q kᵀ)) with q [shape.H, Lq, D]
    // and k [Lk, D] (shape.B == shape.Hkv == 1, as the families call cpu::attention per kv head); scale 1/sqrt(D).
    // Records nothing for a layer not captured.
    void record(int layer, int head0, const cpu::AttentionShape& shape, const cpu::AttentionMask& mask,
                const float* q, const float* k);
    // After the step: the captured layers, in the order they were asked for.
    std::vector<LayerAttention> take() { return std::move(out_); }

private:
    std::vector<int> slot_;  // [n_layer]: index into out_, or -1
    std::vector<LayerAttention> out_;
};

// One layer's attention in a family's forward: the fused kernel (with `flash`: a replayed decode step's, see
// ops::FlashConfig::step), or (the naive path, or a captured layer) qk, softmax and pv through `scores`
// [H, Lq, Lk] f32, the probabilities copied to `capture` (may be null) in between.
void record_layer_attention(ops::Encoder& enc, const ops::AttentionDims& dims, const ops::TensorRef& q,
                            const ops::TensorRef& k, const ops::TensorRef& v, const ops::TensorRef& out,
                            const ops::MaskArgs& mask, float scale, bool fused, const vk::Buffer* scores,
                            GpuAttentionCapture* capture, size_t layer, const ops::FlashConfig& flash = {});

}  // namespace vkattn::model
