// Push constants of matmul.comp, shared by GLSL and C++ (scalars only). Offsets and strides in elements.
#ifndef VKATTN_MATMUL_PARAMS_H
#define VKATTN_MATMUL_PARAMS_H

#ifdef __cplusplus
#include <cstdint>
namespace vkattn::ops::glsl {
using uint = uint32_t;
#endif

#define VKATTN_MATMUL_BIAS 1u        // add bias[n]
#define VKATTN_MATMUL_GELU 2u        // then apply GELU (tanh form)
#define VKATTN_MATMUL_ACCUMULATE 4u  // then add to what Y holds (a fused residual add)
#define VKATTN_MATMUL_STEP 8u        // Y's rows start StepParams.pos rows further (binding 4): a replayed decode step

struct MatmulParams {
    uint M, N, K;
    uint x_offset, x_stride;   // X [M, K], row stride
    uint w_offset, w_stride;   // W [K, N] (row stride >= N) or, transposed, [N, K] (row stride >= K)
    uint b_offset;             // bias [N]
    uint y_offset, y_stride;   // Y [M, N], row stride
    uint flags;
};

#ifdef __cplusplus
}  // namespace vkattn::ops::glsl
#endif

#endif
