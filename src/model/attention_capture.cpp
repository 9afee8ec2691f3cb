#include "model/attention_capture.hpp"

#include "model/family.hpp"

#include <vkattn/error.hpp>
#include <vkattn/units.hpp>

#include <cmath>
#include <string>

namespace vkattn::model {

void check_capture_layers(std::span<const int> layers, int n_layer) {
    std::vector<bool> seen(size_t(std::max(n_layer, 0)), false);
    for (const int l : layers) {
        if (l < 0 || l >= n_layer) {
            throw Error("layer " + std::to_string(l) + " does not exist: the model has " + std::to_string(n_layer) +
                        " layers (0 to " + std::to_string(n_layer - 1) + ")");
        }
        if (seen[size_t(l)]) throw Error("layer " + std::to_string(l) + " is asked for twice; give each layer once");
        seen[size_t(l)] = true;
    }
}

uint64_t capture_bytes(int layers, int H, int Lq, int Lk) {
    return 4 * uint64_t(std::max(layers, 0)) * uint64_t(std::max(H, 0)) * uint64_t(std::max(Lq, 0)) *
           uint64_t(std::max(Lk, 0));
}

namespace {

// [n_layer] slots: the index of each layer in `layers`, -1 for the others.
std::vector<int> slots(std::span<const int> layers, int n_layer) {
    check_capture_layers(layers, n_layer);
    std::vector<int> slot(size_t(n_layer), -1);
    for (size_t i = 0; i < layers.size(); ++i) slot[size_t(layers[i])] = int(i);
    return slot;
}

}  // namespace

GpuAttentionCapture::GpuAttentionCapture(vk::Device& device, std::span<const int> layers, int n_layer, uint32_t H,
                                         uint32_t Lq, uint32_t Lk, uint64_t resident)
    : device_(device), layers_(layers.begin(), layers.end()), slot_(slots(layers, n_layer)), H_(H), Lq_(Lq), Lk_(Lk) {
    if (layers_.empty()) return;
    const uint64_t bytes = capture_bytes(int(layers_.size()), int(H), int(Lq), int(Lk));
    const DeviceInfo& info = device.info();
    if (resident + bytes > info.device_heap_bytes) {
        throw Error("capturing the attention of " + std::to_string(layers_.size()) +
                    (layers_.size() == 1 ? " layer" : " layers") + " over " + std::to_string(Lq) +
                    " queries and " + std::to_string(Lk) + " keys needs " + bytes_str(bytes) + " of device memory, and with the " +
                    bytes_str(resident) + " the model holds that exceeds the " + bytes_str(info.device_heap_bytes) + " heap of " +
                    info.name + "; capture fewer layers or fewer tokens per step");
    }
    for (size_t i = 0; i < layers_.size(); ++i) buffers_.emplace_back(device, bytes / layers_.size());
}

void GpuAttentionCapture::record(ops::Encoder& enc, size_t layer, const vk::Buffer& probs) {
    if (!wants(layer)) return;
    const vk::Buffer& dst = buffers_[size_t(slot_[layer])];
    const std::vector<VkBufferCopy> whole = {{0, 0, dst.size()}};
    enc.recorder.copy(probs.get(), dst.get(), whole);
}

std::vector<LayerAttention> GpuAttentionCapture::download() {
    std::vector<LayerAttention> out;
    for (size_t i = 0; i < layers_.size(); ++i) {
        LayerAttention a{layers_[i], int(H_), int(Lq_), int(Lk_), std::vector<float>(buffers_[i].size() / 4)};
        device_.download(buffers_[i], 0, a.probs.data(), buffers_[i].size());
        out.push_back(std::move(a));
    }
    return out;
}

CpuAttentionCapture::CpuAttentionCapture(std::span<const int> layers, int n_layer, int H, int Lq, int Lk)
    : slot_(slots(layers, n_layer)) {
    for (const int l : layers) out_.push_back({l, H, Lq, Lk, std::vector<float>(size_t(H) * size_t(Lq) * size_t(Lk))});
}

void CpuAttentionCapture::record(int layer, int head0, const cpu::AttentionShape& shape, const cpu::AttentionMask& mask,
                                 const float* q, const float* k) {
    if (!wants(layer)) return;
    LayerAttention& a = out_[size_t(slot_[size_t(layer)])];
    float* probs = a.probs.data() + size_t(head0) * size_t(a.Lq) * size_t(a.Lk);  // [shape.H, Lq, Lk]
    const float scale = float(1.0 / std::sqrt(double(shape.D)));  // what cpu::attention takes for scale 0
    cpu::attention_scores(shape, q, k, scale, probs);
    cpu::attention_softmax(shape, mask, probs, probs);
}

}  // namespace vkattn::model

namespace vkattn::model {

ForwardAttention LanguageModel::forward_with_attention(std::span<const int>, std::span<const int>, bool) {
    throw Error("this model (" + (description_.empty() ? info_.family : description_) +
                ") cannot capture attention weights");
}

void record_layer_attention(ops::Encoder& enc, const ops::AttentionDims& dims, const ops::TensorRef& q,
                            const ops::TensorRef& k, const ops::TensorRef& v, const ops::TensorRef& out,
                            const ops::MaskArgs& mask, float scale, bool fused, const vk::Buffer* scores,
                            GpuAttentionCapture* capture, size_t layer, const ops::FlashConfig& flash) {
    if (fused && !(capture && capture->wants(layer))) {
        ops::record_flash(enc, dims, q, k, v, out, mask, scale, flash);
        return;
    }
    ops::record_qk(enc, dims, q, k, *scores, scale);
    ops::record_softmax(enc, dims, *scores, *scores, mask);
    if (capture) capture->record(enc, layer, *scores);  // the probabilities, before the next layer's replace them
    ops::record_pv(enc, dims, *scores, v, out);
}

}  // namespace vkattn::model
