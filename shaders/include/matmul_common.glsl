// Bindings, push constants and the fused epilogue shared by matmul.comp, matmul_simd.comp and matmul_vec.comp.
// Include after storage.glsl (ELEM is the weight type: float, or float16_t with VKATTN_F16).
#include "matmul_params.h"

#if VKATTN_F16
#define ELEM4 f16vec4
#else
#define ELEM4 vec4
#endif

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };    // X [M, K], rows x_stride apart
layout(std430, binding = 0) readonly buffer XBuf4 { vec4 x4[]; };  // the same binding read 4 floats at a time
layout(std430, binding = 1) readonly buffer WBuf { ELEM w[]; };    // W [K, N] or, transposed, [N, K]
layout(std430, binding = 1) readonly buffer WBuf4 { ELEM4 w4[]; };
layout(std430, binding = 2) readonly buffer BBuf { float bias[]; };  // [N]
layout(std430, binding = 3) buffer YBuf { float y[]; };             // Y [M, N], rows y_stride apart
layout(push_constant) uniform Push { MatmulParams p; };

float gelu_tanh(float v) {
    const float k = 0.7978845608028654;  // sqrt(2 / pi)
    return 0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v)));
}

// Y[m, n] = (acc + bias[n]) → GELU → + Y[m, n], each step as p.flags asks. The caller checks m < M, n < N.
void store_output(uint m, uint n, float acc) {
    float v = acc;
    if ((p.flags & VKATTN_MATMUL_BIAS) != 0) v += bias[p.b_offset + n];
    if ((p.flags & VKATTN_MATMUL_GELU) != 0) v = gelu_tanh(v);
    const uint i = p.y_offset + m * p.y_stride + n;
    if ((p.flags & VKATTN_MATMUL_ACCUMULATE) != 0) v += y[i];
    y[i] = v;
}
