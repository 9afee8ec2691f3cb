// swiglu: y [T, F] = silu(gate [T, F]) · up [T, F], silu(v) = v / (1 + e^−v): the input of Llama's down_proj.
// gate and up are views with their own offsets and row strides, so both can be the halves of one [T, 2F]
// buffer written by a single matmul against the concatenated [gate; up] weights; y may be the gate view
// itself (each element is read before it is written, by the same invocation).
// One invocation per element; the grid is flattened over x and y.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "llama_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) readonly buffer GBuf { float gate[]; };
layout(std430, binding = 1) readonly buffer UBuf { float up[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };
layout(push_constant) uniform Push { SwigluParams p; };

void main() {
    const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * WG);
    if (g >= p.T * p.F) return;
    const uint t = g / p.F, f = g % p.F;
    const float v = gate[p.gate_offset + t * p.gate_stride + f];
    // e^−v overflows to inf for v < −88 and the quotient is −0, the limit: no NaN for finite input.
    const float silu = v / (1.0 + exp(-v));
    y[p.y_offset + t * p.y_stride + f] = silu * up[p.up_offset + t * p.up_stride + f];
}
