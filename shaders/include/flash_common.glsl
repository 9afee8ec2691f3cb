// Shared by flash_rows.comp, flash_tiled.comp and flash_split.comp: the bindings, whole-row loads into vec4
// registers, the output store, and the mask rules. The including shader first includes storage.glsl and
// attention_params.h, declares `Push { FlashParams p; }` and the specialization constant DP (the head dim p.D rounded
// up to a multiple of 8: registers and tiles are DP wide, elements d >= p.D are zeros that no load reads and no store
// writes, so any D in 1..256 runs on a few pipelines), and, to use LOAD_ROW and STORE_ROW, VEC (true when DP == p.D
// and every row starts on 16 bytes: rows then move by 16-byte vector loads, 4 f32 or 8 f16 at a time, which on
// lavapipe costs a fraction of element-wise loads; otherwise element by element, guarded by d < p.D).
//
// Bindings: 0 Q, 1 K, 2 V, 3 O (views [B, heads, L, D]), 4 additive mask [Lq, Lk] f32, 5 key padding [B, Lk] f32,
// 7 the step's StepParams (include/step_params.h), read only where p.step says so; 6 is the kernel's own.
// Each view buffer is declared twice, by element and by 16-byte vector, over the same binding.
// The key count is n_keys, not p.Lk: main() first calls load_lengths(), which takes it (and flash_split's keys per
// slice) from the push constants, or for a decode step recorded once and replayed (p.step has VKATTN_STEP_LENGTHS)
// from binding 7, so that one recording serves every position; with VKATTN_STEP_Q_ROW the query's rows also start
// StepParams.pos rows further (q_shift elements: GPT-2's query sits in the KV-cache row the step wrote). A push
// constant rather than a specialization constant, so that a replayed step runs the pipelines a forward compiled.

#include "step_params.h"

layout(std430, binding = 0) readonly buffer QBuf { ELEM q_s[]; };
layout(std430, binding = 1) readonly buffer KBuf { ELEM k_s[]; };
layout(std430, binding = 2) readonly buffer VBuf { ELEM v_s[]; };
layout(std430, binding = 3) writeonly buffer OBuf { ELEM o_s[]; };
#if VKATTN_F16
layout(std430, binding = 0) readonly buffer QBufV { uvec4 q_v[]; };  // 8 halves
layout(std430, binding = 1) readonly buffer KBufV { uvec4 k_v[]; };
layout(std430, binding = 2) readonly buffer VBufV { uvec4 v_v[]; };
layout(std430, binding = 3) writeonly buffer OBufV { uvec4 o_v[]; };
#else
layout(std430, binding = 0) readonly buffer QBufV { vec4 q_v[]; };
layout(std430, binding = 1) readonly buffer KBufV { vec4 k_v[]; };
layout(std430, binding = 2) readonly buffer VBufV { vec4 v_v[]; };
layout(std430, binding = 3) writeonly buffer OBufV { vec4 o_v[]; };
#endif
layout(std430, binding = 4) readonly buffer AddBuf { float additive[]; };
layout(std430, binding = 5) readonly buffer PadBuf { float key_padding[]; };
layout(std430, binding = 7) readonly buffer StepBuf { StepParams step[]; };

uint n_keys;          // Lk
uint keys_per_split;  // flash_split's slice length
uint q_shift;         // added to every Q element offset

void load_lengths() {
    const bool lengths = (p.step & VKATTN_STEP_LENGTHS) != 0u;
    n_keys = lengths ? step[0].n_keys : p.Lk;
    keys_per_split = lengths ? step[0].split_keys : p.split_keys;
    q_shift = (p.step & VKATTN_STEP_Q_ROW) != 0u ? step[0].pos * p.q.stride_l : 0u;
}

#define NEG_INF (-1.0 / 0.0)  // the score of a hidden key
#define LOG2E 1.4426950408889634
#define QUIET_NAN uintBitsToFloat(0x7fc00000u)  // the output of a row that saw a NaN
#define FLT_MIN 1.175494351e-38  // the smallest normal float

// NaN rule, the same on every path (and the CPU reference): a NaN score (NaN in q, or in a visible key's K) makes
// the row NaN; a NaN in a visible key's V makes that column of the row NaN; keys hidden by a rule never contribute,
// NaN or not. Where some row may not see a key, a V row holding a NaN is therefore used with its NaNs as zeros (its
// weight 0 in rows that cannot see it would turn 0 · NaN into NaN), and its NaN columns are remembered for the rows
// that see it and set at the end (or, per row, a hidden key is left out by a select).

// dst[0 .. DP/4) = the p.D elements of buf starting at element `base` (a row of Q, K or V) as fp32, zeros after.
#if VKATTN_F16
#define LOAD_ROW(buf, base, dst)                                                                   \
    if (VEC) {                                                                                     \
        [[unroll]] for (uint c_ = 0; c_ < DP / 8; ++c_) {                                          \
            const uvec4 u_ = buf##_v[(base) / 8 + c_];                                             \
            dst[2 * c_] = vec4(unpackHalf2x16(u_.x), unpackHalf2x16(u_.y));                        \
            dst[2 * c_ + 1] = vec4(unpackHalf2x16(u_.z), unpackHalf2x16(u_.w));                    \
        }                                                                                          \
    } else {                                                                                       \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) {                                          \
            [[unroll]] for (uint e_ = 0; e_ < 4; ++e_) {                                           \
                const uint d_ = 4 * c_ + e_;                                                       \
                const float x_ = float(buf##_s[(base) + min(d_, p.D - 1)]);                         \
                dst[c_][e_] = d_ < p.D ? x_ : 0.0;                                                 \
            }                                                                                      \
        }                                                                                          \
    }
// o[base .. base + p.D) = src[0 .. DP/4) · f, rounded to the storage type.
#define STORE_ROW(base, src, f)                                                                    \
    if (VEC) {                                                                                     \
        [[unroll]] for (uint c_ = 0; c_ < DP / 8; ++c_) {                                          \
            const vec4 a_ = src[2 * c_] * (f), b_ = src[2 * c_ + 1] * (f);                         \
            o_v[(base) / 8 + c_] = uvec4(packHalf2x16(a_.xy), packHalf2x16(a_.zw),                 \
                                         packHalf2x16(b_.xy), packHalf2x16(b_.zw));                \
        }                                                                                          \
    } else {                                                                                       \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) {                                          \
            const vec4 a_ = src[c_] * (f);                                                         \
            [[unroll]] for (uint e_ = 0; e_ < 4; ++e_) if (4 * c_ + e_ < p.D) o_s[(base) + 4 * c_ + e_] = TO_ELEM(a_[e_]); \
        }                                                                                          \
    }
#else
#define LOAD_ROW(buf, base, dst)                                                                   \
    if (VEC) {                                                                                     \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) dst[c_] = buf##_v[(base) / 4 + c_];        \
    } else {                                                                                       \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) {                                          \
            [[unroll]] for (uint e_ = 0; e_ < 4; ++e_) {                                           \
                const uint d_ = 4 * c_ + e_;                                                       \
                const float x_ = float(buf##_s[(base) + min(d_, p.D - 1)]);                         \
                dst[c_][e_] = d_ < p.D ? x_ : 0.0;                                                 \
            }                                                                                      \
        }                                                                                          \
    }
#define STORE_ROW(base, src, f)                                                                    \
    if (VEC) {                                                                                     \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) o_v[(base) / 4 + c_] = src[c_] * (f);      \
    } else {                                                                                       \
        [[unroll]] for (uint c_ = 0; c_ < DP / 4; ++c_) {                                          \
            const vec4 a_ = src[c_] * (f);                                                         \
            [[unroll]] for (uint e_ = 0; e_ < 4; ++e_) if (4 * c_ + e_ < p.D) o_s[(base) + 4 * c_ + e_] = a_[e_]; \
        }                                                                                          \
    }
#endif

// Element offset of row (b, head, i) of a view, relative to its binding.
uint row_of(ViewParams v, uint b, uint head, uint i) {
    return v.offset + b * v.stride_b + head * v.stride_h + i * v.stride_l;
}

// Whether the causal and window rules let query i see key j (bottom-right aligned, as the CPU reference).
// Branch-free (boolean operands only, which glslang turns into plain logic, not short-circuit branches): the
// callers unroll it over rows and keys, and every branch there multiplies what LLVM's coroutine lowering in Mesa 25's
// lavapipe walks.
bool position_visible(uint i, uint j) {
    const int diag = int(i) + int(n_keys) - int(p.Lq);  // the newest key query i may see under causal
    const bool causal = p.causal != 0;
    const bool windowed = p.window != 0;
    const bool after = int(j) > diag;
    const bool before = int(j) <= diag - int(p.window);
    return !(causal && after) && !(windowed && before);
}

// Keys [x, y) that some query in [i_first, i_last] may see: blocks outside are never loaded.
uvec2 key_range(uint i_first, uint i_last) {
    int begin = 0;
    int end = int(n_keys);
    if (p.causal != 0) end = min(end, int(i_last) + int(n_keys) - int(p.Lq) + 1);
    if (p.window != 0) begin = max(0, int(i_first) + int(n_keys) - int(p.Lq) - int(p.window) + 1);
    return uvec2(begin, max(begin, end));
}

// Keys [x, y) that every query in [i_first, i_last] sees: inside key_range's, empty when key padding or an additive
// mask may hide any key. A kernel may treat a block of these keys as plain softmax, with no hidden key in it.
uvec2 clear_range(uint i_first, uint i_last) {
    int begin = 0;
    int end = int(n_keys);
    if (p.causal != 0) end = min(end, int(i_first) + int(n_keys) - int(p.Lq) + 1);
    if (p.window != 0) begin = max(0, int(i_last) + int(n_keys) - int(p.Lq) - int(p.window) + 1);
    if (p.has_key_padding != 0 || p.has_additive != 0) end = begin;
    return uvec2(begin, max(begin, end));
}

// The base-2 score of query i (q already scaled by scale·log2 e) for key j, or -inf where a rule hides it.
// `padded` is key_padding[b, j] (the caller loads it once per key).
// Branch-free but for the additive mask's load, whose condition is uniform; the load reads a clamped key, so keys
// past Lk (made -inf anyway) stay inside the mask.
float masked_score(float dot_qk, uint i, uint j, float padded) {
    const bool in_range = j < n_keys;
    const bool unpadded = padded == 0.0;
    const bool seen = position_visible(i, j);
    float s = dot_qk;
    if (p.has_additive != 0) s += float(LOG2E) * additive[i * n_keys + min(j, n_keys - 1)];
    return in_range && unpadded && seen ? s : NEG_INF;
}
