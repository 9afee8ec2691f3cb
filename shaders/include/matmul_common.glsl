// Bindings, push constants and the fused epilogue shared by matmul.comp, matmul_simd.comp and matmul_vec.comp.
// Include after storage.glsl. The weight type is float, float16_t (VKATTN_F16) or bf16 (VKATTN_BF16); the
// kernels read W only through w_at and w4_at, which return floats. With VKATTN_MATMUL_STEP in p.flags, Y's rows
// start StepParams.pos rows further down (binding 4): a decode step recorded once and replayed writes its new
// key-value row at whichever position it runs for.
#include "matmul_params.h"
#include "step_params.h"
#if VKATTN_F16
#define ELEM4 f16vec4
#else
#define ELEM4 vec4
#endif
#if VKATTN_W64
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#endif

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };    // X [M, K], rows x_stride apart
layout(std430, binding = 0) readonly buffer XBuf4 { vec4 x4[]; };  // the same binding read 4 floats at a time

// W [K, N] or, transposed, [N, K]. w_at(i) is element i; w4_at(j) is elements 4j .. 4j + 3.
#if VKATTN_BF16
// bf16 two to a 32-bit word, the even element in the low half (little-endian). bf16 is the top half of an
// f32, so widening is a 16-bit shift: exact, and no 16-bit storage feature is needed.
layout(std430, binding = 1) readonly buffer WBuf { uint w[]; };
float w_at(uint i) {
    const uint v = w[i >> 1];
    return uintBitsToFloat((i & 1u) == 0u ? v << 16 : v & 0xffff0000u);
}
vec4 bf16x4(uvec2 v) { return uintBitsToFloat(uvec4(v.x << 16, v.x & 0xffff0000u, v.y << 16, v.y & 0xffff0000u)); }
#else
layout(std430, binding = 1) readonly buffer WBuf { ELEM w[]; };
float w_at(uint i) { return float(w[i]); }
#endif

// VKATTN_W64 (CPU devices with shaderInt64) reads w4_at's 16 (f32) or 8 (f16, bf16) bytes as 64-bit
// components: lavapipe loads a storage buffer one component of one lane at a time, so that halves its load
// steps for f32 and quarters them for f16 (four 16-bit components otherwise).
#if VKATTN_W64 && (VKATTN_F16 || VKATTN_BF16)
layout(std430, binding = 1) readonly buffer WBuf4 { uint64_t w4[]; };
vec4 w4_at(uint j) {
    const uvec2 v = unpackUint2x32(w4[j]);
#if VKATTN_BF16
    return bf16x4(v);
#else
    return vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
#endif
}
#elif VKATTN_W64
layout(std430, binding = 1) readonly buffer WBuf4 { u64vec2 w4[]; };
vec4 w4_at(uint j) {
    const u64vec2 v = w4[j];
    return uintBitsToFloat(uvec4(unpackUint2x32(v.x), unpackUint2x32(v.y)));
}
#elif VKATTN_BF16
layout(std430, binding = 1) readonly buffer WBuf4 { uvec2 w4[]; };
vec4 w4_at(uint j) { return bf16x4(w4[j]); }
#else
layout(std430, binding = 1) readonly buffer WBuf4 { ELEM4 w4[]; };
vec4 w4_at(uint j) { return vec4(w4[j]); }
#endif
layout(std430, binding = 2) readonly buffer BBuf { float bias[]; };  // [N]
layout(std430, binding = 3) buffer YBuf { float y[]; };             // Y [M, N], rows y_stride apart
layout(std430, binding = 4) readonly buffer StepBuf { StepParams step[]; };
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
    const uint row0 = (p.flags & VKATTN_MATMUL_STEP) != 0 ? step[0].pos : 0u;
    const uint i = p.y_offset + (row0 + m) * p.y_stride + n;
    if ((p.flags & VKATTN_MATMUL_ACCUMULATE) != 0) v += y[i];
    y[i] = v;
}
