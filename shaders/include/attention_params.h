// Push-constant blocks of the attention kernels, shared by GLSL and C++ (src/ops/ includes this file).
// Scalars only, 4 bytes each, so the std430 push-constant layout and the C++ struct layout agree.
// Element offsets are relative to the start of each bound buffer range; strides are in elements.
#ifndef VKATTN_ATTENTION_PARAMS_H
#define VKATTN_ATTENTION_PARAMS_H

#ifdef __cplusplus
#include <cstdint>
namespace vkattn::ops::glsl {
using uint = uint32_t;
#endif

// Where one 4-D tensor view [B, heads, L, D] lives inside its binding. The D stride is always 1.
struct ViewParams {
    uint offset;
    uint stride_b;
    uint stride_h;
    uint stride_l;
};

// qk.comp: S [z, Lq, Lk] = scale · Q Kᵀ for z in [z0, z0 + gridZ), z = b·H + h.
struct QkParams {
    ViewParams q;
    ViewParams k;
    uint s_offset;
    uint H, Hkv, Lq, Lk, D;
    uint z0;
    float scale;
};

// softmax.comp: P = softmax(mask(S)) row by row; rows of the chunk are [z, i] with z in [z0, z0 + nz).
struct SoftmaxParams {
    uint s_offset;
    uint p_offset;
    uint H, Lq, Lk;
    uint z0, nz;
    uint causal;      // 1: key j visible iff j <= i + Lk - Lq
    uint window;      // > 0: key j visible iff j > i + Lk - Lq - window
    uint has_additive;     // 1: add additive[i, j] (binding 2) to the score
    uint has_key_padding;  // 1: key_padding[b, j] (binding 3) nonzero hides key j
    uint rows_per_grid_x;  // rows are spread over a 2-D grid: row = x + y · rows_per_grid_x
};

// pv.comp: O [b, h, Lq, D] = P [z, Lq, Lk] · V [b, h / (H / Hkv), Lk, D].
struct PvParams {
    ViewParams v;
    ViewParams o;
    uint p_offset;
    uint H, Hkv, Lq, Lk, D;
    uint z0;
};

// flash_rows.comp, flash_tiled.comp, flash_split.comp: O = softmax(mask(scale · Q Kᵀ)) V without the L×L scores,
// for z = b·H + h in [z0, z0 + gridZ). Scores are kept in base 2: scale_log2 = scale · log2(e), and the additive
// mask is multiplied by log2(e) as it is read, so exp2 of the difference is the usual exp.
struct FlashParams {
    ViewParams q;
    ViewParams k;
    ViewParams v;
    ViewParams o;
    uint H, Hkv, Lq, Lk;
    uint D;                // head dim; the kernels' registers and tiles are DP wide (spec. constant, D rounded up)
    uint z0;
    float scale_log2;
    uint causal;           // 1: key j visible to query i iff j <= i + Lk - Lq
    uint window;           // > 0: key j visible iff j > i + Lk - Lq - window
    uint has_additive;     // 1: additive[i, j] (binding 4, [Lq, Lk] f32) is added to the score
    uint has_key_padding;  // 1: key_padding[b, j] (binding 5, [B, Lk] f32) nonzero hides key j
    uint split_keys;       // flash_split: keys per split (grid x runs over the splits)
    uint nz;               // flash_split: (b, h) slices in this dispatch; partial rows are [nz, Lq]
    uint ml_offset;        // flash_split: where the (max, sum) pairs start in the scratch buffer, in floats
    uint step;             // a decode step replayed (binding 7, StepParams): VKATTN_STEP_LENGTHS, VKATTN_STEP_Q_ROW
};

#define VKATTN_STEP_LENGTHS 1u  // Lk and split_keys from StepParams instead of the fields above
#define VKATTN_STEP_Q_ROW 2u    // the query's rows start StepParams.pos rows further than q.offset says

// flash_merge.comp: O [b, h, i, :] from the partial (max, sum, acc) of every split and invocation.
struct FlashMergeParams {
    ViewParams o;
    uint H, Lq;
    uint D;                // head dim (partials are DP wide)
    uint z0, nz;
    uint parts;            // partials per row: splits × invocations per split workgroup
    uint ml_offset;        // as in FlashParams
};

#ifdef __cplusplus
}  // namespace vkattn::ops::glsl
#endif

#endif
