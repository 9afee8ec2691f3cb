// qk: attention scores S = scale · Q Kᵀ, one (batch, head) slice per grid z.
//   Q [B, H, Lq, D] and K [B, Hkv, Lk, D] (views: offset and strides from push constants, D contiguous),
//   S [z, Lq, Lk] fp32, contiguous, for the chunk z in [z0, z0 + gridZ).
// Workgroup n = x + y · gridX (folded to fit the grid limits) computes TILE × TILE block n of S, row-major over
// the blocks: it walks D in TILE-wide steps, staging a TILE × TILE
// piece of Q and of K in shared memory, so each global element is read once per workgroup, not TILE times.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0, local_size_y_id = 0) in;
layout(constant_id = 0) const uint TILE = 16;

layout(std430, binding = 0) readonly buffer QBuf { ELEM q[]; };
layout(std430, binding = 1) readonly buffer KBuf { ELEM k[]; };
layout(std430, binding = 2) writeonly buffer SBuf { float s[]; };
layout(push_constant) uniform Push { QkParams p; };

shared float q_tile[TILE][TILE + 1];  // +1 column: no bank conflicts on the transposed read
shared float k_tile[TILE][TILE + 1];

void main() {
    const uint z = p.z0 + gl_WorkGroupID.z;
    const uint b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint n = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint tiles_k = (p.Lk + TILE - 1) / TILE;
    const uint i0 = (n / tiles_k) * TILE;
    if (i0 >= p.Lq) return;  // past the last block of a folded grid: uniform, before any barrier
    const uint j0 = (n % tiles_k) * TILE;
    const uint i = i0 + ty;       // query row of the output
    const uint j = j0 + tx;       // key column of the output
    const uint j_load = j0 + ty;  // key row this invocation stages

    const uint q_row = p.q.offset + b * p.q.stride_b + h * p.q.stride_h + i * p.q.stride_l;
    const uint k_row = p.k.offset + b * p.k.stride_b + hk * p.k.stride_h + j_load * p.k.stride_l;

    float acc = 0.0;
    for (uint d0 = 0; d0 < p.D; d0 += TILE) {
        const uint d = d0 + tx;
        q_tile[ty][tx] = (i < p.Lq && d < p.D) ? float(q[q_row + d]) : 0.0;
        k_tile[ty][tx] = (j_load < p.Lk && d < p.D) ? float(k[k_row + d]) : 0.0;
        barrier();  // tiles staged → dot products read them
        for (uint t = 0; t < TILE; ++t) {
            acc += q_tile[ty][t] * k_tile[tx][t];
        }
        barrier();  // dot products done → next step overwrites the tiles
    }
    if (i < p.Lq && j < p.Lk) {
        s[p.s_offset + (gl_WorkGroupID.z * p.Lq + i) * p.Lk + j] = acc * p.scale;
    }
}
