// pv: attention output O = P V, one (batch, head) slice per grid z.
//   P [z, Lq, Lk] fp32 contiguous, V [B, Hkv, Lk, D] and O [B, H, Lq, D] (views, D contiguous).
// Workgroup n = x + y · gridX (folded to fit the grid limits) computes TILE × TILE block n of O, row-major over the
// blocks (TILE query rows × TILE head-dim columns), walking Lk
// in TILE-wide steps with a tile of P and a tile of V staged in shared memory. A zero probability (a hidden key)
// contributes nothing even where V holds a NaN, as in the fused kernels; a NaN probability makes the row NaN.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
#include "attention_params.h"

layout(local_size_x_id = 0, local_size_y_id = 0) in;
layout(constant_id = 0) const uint TILE = 16;

layout(std430, binding = 0) readonly buffer PBuf { float prob[]; };
layout(std430, binding = 1) readonly buffer VBuf { ELEM v[]; };
layout(std430, binding = 2) writeonly buffer OBuf { ELEM o[]; };
layout(push_constant) uniform Push { PvParams p; };

shared float p_tile[TILE][TILE + 1];
shared float v_tile[TILE][TILE + 1];

void main() {
    const uint z = p.z0 + gl_WorkGroupID.z;
    const uint b = z / p.H;
    const uint h = z % p.H;
    const uint hk = h / (p.H / p.Hkv);
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint n = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint tiles_d = (p.D + TILE - 1) / TILE;
    const uint i0 = (n / tiles_d) * TILE;
    if (i0 >= p.Lq) return;  // past the last block of a folded grid: uniform, before any barrier
    const uint i = i0 + ty;                        // query row
    const uint d = (n % tiles_d) * TILE + tx;      // head-dim column

    const uint p_row = p.p_offset + (gl_WorkGroupID.z * p.Lq + i) * p.Lk;
    const uint v_base = p.v.offset + b * p.v.stride_b + hk * p.v.stride_h;

    float acc = 0.0;
    for (uint j0 = 0; j0 < p.Lk; j0 += TILE) {
        const uint jp = j0 + tx;  // key column of P this invocation stages
        const uint jv = j0 + ty;  // key row of V this invocation stages
        p_tile[ty][tx] = (i < p.Lq && jp < p.Lk) ? prob[p_row + jp] : 0.0;
        v_tile[ty][tx] = (jv < p.Lk && d < p.D) ? float(v[v_base + jv * p.v.stride_l + d]) : 0.0;
        barrier();  // tiles staged → products read them
        for (uint t = 0; t < TILE; ++t) {
            const float pt = p_tile[ty][t];
            if (pt != 0.0) acc = fma(pt, v_tile[t][tx], acc);
        }
        barrier();  // products done → next step overwrites the tiles
    }
    if (i < p.Lq && d < p.D) {
        o[p.o.offset + b * p.o.stride_b + h * p.o.stride_h + i * p.o.stride_l + d] = TO_ELEM(acc);
    }
}
