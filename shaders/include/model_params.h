// Push constants of the transformer's elementwise and normalisation kernels, shared by GLSL and C++.
#ifndef VKATTN_MODEL_PARAMS_H
#define VKATTN_MODEL_PARAMS_H

#ifdef __cplusplus
#include <cstdint>
namespace vkattn::ops::glsl {
using uint = uint32_t;
#endif

// embedding.comp: x [T, C] = rows [T, C] + wpe [pos0 + t, C]
struct EmbeddingParams {
    uint T, C;
    uint rows_offset;
    uint wpe_offset;   // element offset of wpe row pos0
    uint x_offset;
    uint step;         // 1: plus StepParams.pos rows of wpe (binding 3): a replayed decode step
};

// layernorm.comp: y [T, C] = (x - mean) / sqrt(var + eps) · w + b, row by row
struct LayerNormParams {
    uint T, C;
    uint x_offset, x_stride;
    uint y_offset, y_stride;
    float eps;
};

// top_k.comp: the k largest of x [V] (from element x_offset) outside skip [n_skip], and x at each skipped id
struct TopKParams {
    uint V, k, n_skip;
    uint x_offset;
};

#ifdef __cplusplus
}  // namespace vkattn::ops::glsl
#endif

#endif
