// Push constants of the Llama family's kernels (rmsnorm, rope, swiglu), shared by GLSL and C++.
// Offsets and strides in elements.
#ifndef VKATTN_LLAMA_PARAMS_H
#define VKATTN_LLAMA_PARAMS_H

#ifdef __cplusplus
#include <cstdint>
namespace vkattn::ops::glsl {
using uint = uint32_t;
#endif

// rmsnorm.comp: y [T, C] = x / sqrt(mean(x²) + eps) · w [C], row by row
struct RmsNormParams {
    uint T, C;
    uint x_offset, x_stride;
    uint y_offset, y_stride;
    float eps;
};

// rope.comp: in place on q [T, Hq, D] and k [T, Hk, D] (rows *_stride apart, heads D apart) at positions
// pos0 .. pos0 + T − 1, with inv_freq [D/2]
struct RopeParams {
    uint T, D;
    uint pos0;
    uint q_offset, q_stride, q_heads;
    uint k_offset, k_stride, k_heads;
    uint step;  // a replayed decode step (binding 3, StepParams): 1 pos0 is StepParams.pos; 2 K's rows start pos0 rows further
};

// swiglu.comp: y [T, F] = silu(gate [T, F]) · up [T, F], each with its own offset and row stride
struct SwigluParams {
    uint T, F;
    uint gate_offset, gate_stride;
    uint up_offset, up_stride;
    uint y_offset, y_stride;
};

#ifdef __cplusplus
}  // namespace vkattn::ops::glsl
#endif

#endif
