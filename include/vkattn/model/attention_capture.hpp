// The attention weights of a model's layers, taken out of a forward step: what each head of a layer attends to,
// for attention maps (viz::render_attention_map takes a LayerAttention's probs as they are) and for analysis.
//
// Every family's forward takes the layers to capture. On the GPU a captured layer runs the three inspectable
// kernels (scores, softmax, values; the other layers keep the fused kernel when it is chosen) and its softmax
// output is copied into a capture buffer inside the same command buffer, then downloaded once; on the CPU
// reference it is the reference's own softmax of the same queries and keys.
//
// Memory: 4 · H · T · Lk bytes per captured layer (T new tokens, Lk = cached + T keys), held on the device
// during the step and returned on the host; a 1,024-token prompt through one 12-head layer is 48 MiB. The GPU
// forward refuses, before running, a capture that would not fit the device next to the weights and the KV
// cache. To bound it, capture fewer layers, or prefill a long prompt in steps: a step of T tokens after pos
// cached ones captures only its own T query rows, [H, T, pos + T].
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace vkattn::model {

// The attention probabilities of one layer in one forward step.
struct LayerAttention {
    int layer = 0;  // its index in [0, n_layer)
    int H = 0;      // query heads: each has its own weights, also under grouped-query attention (H > Hkv)
    int Lq = 0;     // queries: the T tokens of the step
    int Lk = 0;     // keys: the tokens cached before the step and the step's own, pos + T
    // [H, Lq, Lk] row-major: probs[(h · Lq + i) · Lk + j] is how much query i of head h, the token at position
    // Lk - Lq + i, attends to the token at position j. Each row sums to 1; keys the mask hides (later positions,
    // and those outside a sliding window) are exactly 0.
    std::vector<float> probs;
};

// Throws vkattn::Error unless every entry of layers is in [0, n_layer) and none comes twice: "layer 12 does not
// exist: the model has 12 layers (0 to 11)". The check every forward makes before it changes anything.
VKATTN_API void check_capture_layers(std::span<const int> layers, int n_layer);

// Bytes the probabilities of `layers` layers take for a step of Lq queries over Lk keys: 4 · layers · H · Lq · Lk.
VKATTN_API uint64_t capture_bytes(int layers, int H, int Lq, int Lk);

}  // namespace vkattn::model
