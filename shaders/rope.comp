// rope: rotary position embedding, in place, in Hugging Face's rotate-half convention, on Q and K together.
//   inv_freq [D/2] f32 (cpu::rope_inv_freq: theta and the llama3 scaling are already in it).
//   q [T, Hq, D] and k [T, Hk, D] f32, each a view whose per-position rows are *_stride apart and whose heads
//   are D apart: Q and K inside the fused QKV rows of a layer, or K inside the KV cache.
// For position pos = pos0 + t and pair i < D/2 of a head, with a = float(pos) · inv_freq[i] (the float32
// product transformers takes):  (x[i], x[i + D/2]) ← (x[i]·cos a − x[i + D/2]·sin a, x[i + D/2]·cos a + x[i]·sin a).
// One invocation per (t, head, i), heads of Q first then of K; the grid is flattened over x and y. For a decode step
// recorded once and replayed, p.step bit 1 takes pos0 from StepParams.pos (binding 3) instead of p.pos0, and bit 2
// also moves K's rows pos0 rows further (K inside the KV-cache row the step wrote).
// sin and cos are computed here rather than with GLSL's builtins, whose precision Vulkan leaves loose (2^−11
// absolute, and only inside [−π, π]). The angle, a float below 2^24, is reduced modulo π/2 exactly in
// integer arithmetic (its 24-bit mantissa times 96 bits of 2/π, as in Payne and Hanek's method), then the
// Cephes minimax polynomials give sin and cos on [−π/4, π/4]: about 1e−7 from the double-precision values
// of the same float angle, for every angle, on every device.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "llama_params.h"
#include "step_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) readonly buffer FBuf { float inv_freq[]; };
layout(std430, binding = 1) buffer QBuf { float q[]; };
layout(std430, binding = 2) buffer KBuf { float k[]; };
layout(std430, binding = 3) readonly buffer StepBuf { StepParams step[]; };
layout(push_constant) uniform Push { RopeParams p; };

// (sin a, cos a) for 0 <= a < 2^24.
vec2 sincos(float a) {
    uint quadrant = 0u;
    float r = a;
    if (a >= 0.78539816) {
        // a = m · 2^(e − 23). P = m · ⌊2/π · 2^96⌋ (four words p3..p0) holds a · 2/π with its binary point at
        // bit 119 − e: the two bits above it are the quadrant, the 32 below it the fraction of a quadrant.
        // Dropping 2/π past 2^−96 moves P by less than m < 2^24, far below the bits that are read.
        const uint bits = floatBitsToUint(a);
        const int e = int((bits >> 23) & 0xffu) - 127;  // −1 .. 23 here
        const uint m = (bits & 0x7fffffu) | 0x800000u;
        uint h0, l0, h1, l1, h2, l2, c1, c2, c3;
        umulExtended(m, 0xA2F9836Eu, h0, l0);  // 2/π = 0.A2F9836E 4E441529 FC2757D1 ... (hex)
        umulExtended(m, 0x4E441529u, h1, l1);
        umulExtended(m, 0xFC2757D1u, h2, l2);
        uaddCarry(h2, l1, c1);                   // word 1 only matters by its carry into word 2
        uint p2 = uaddCarry(h1, l0, c2);
        p2 = uaddCarry(p2, c1, c3);
        const uint p3 = h0 + c2 + c3;
        const uint sh = uint(87 - e) - 64u;      // the fraction's lowest bit in word 2: 0 .. 24
        const uint frac = sh == 0u ? p2 : (p2 >> sh) | (p3 << (32u - sh));
        quadrant = (p3 >> sh) & 3u;
        // To the nearest quadrant: a fraction past one half is a negative remainder of the next.
        if (frac >= 0x80000000u) quadrant = (quadrant + 1u) & 3u;
        r = float(int(frac)) * 3.6572952e-10;    // (π/2) / 2^32
    }
    const float z = r * r;
    const float s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    const float c =
        1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    if (quadrant == 0u) return vec2(s, c);
    if (quadrant == 1u) return vec2(c, -s);
    if (quadrant == 2u) return vec2(-s, -c);
    return vec2(-c, s);
}

void main() {
    const uint half_d = p.D / 2;
    const uint heads = p.q_heads + p.k_heads;
    const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * WG);
    if (g >= p.T * heads * half_d) return;
    const uint i = g % half_d;
    const uint h = (g / half_d) % heads;
    const uint t = g / (half_d * heads);

    const uint pos0 = (p.step & 1u) != 0u ? step[0].pos : p.pos0;
    const uint k_offset = p.k_offset + ((p.step & 2u) != 0u ? pos0 * p.k_stride : 0u);
    const vec2 sc = sincos(float(pos0 + t) * inv_freq[i]);
    if (h < p.q_heads) {
        const uint b = p.q_offset + t * p.q_stride + h * p.D + i;
        const float x1 = q[b], x2 = q[b + half_d];
        q[b] = x1 * sc.y - x2 * sc.x;
        q[b + half_d] = x2 * sc.y + x1 * sc.x;
    } else {
        const uint b = k_offset + t * p.k_stride + (h - p.q_heads) * p.D + i;
        const float x1 = k[b], x2 = k[b + half_d];
        k[b] = x1 * sc.y - x2 * sc.x;
        k[b + half_d] = x2 * sc.y + x1 * sc.x;
    }
}
