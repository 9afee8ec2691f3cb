// A decode step recorded once and replayed (src/model/step_ahead.hpp): what changes from one step to the next,
// written into a small buffer at the start of each submission and read there by the kernels that take a
// position or a key count, in place of those push constants, where a push-constant flag says so (the same
// pipelines as a forward's: a replayed step compiles nothing new). Shared by GLSL
// and C++; scalars only, 4 bytes each.
#ifndef VKATTN_STEP_PARAMS_H
#define VKATTN_STEP_PARAMS_H

#ifdef __cplusplus
#include <cstdint>
namespace vkattn::ops::glsl {
using uint = uint32_t;
#endif

struct StepParams {
    uint pos;         // the token's position: embedding's wpe row, RoPE's angle, the KV-cache row it writes and
                      // (GPT-2) reads its query from
    uint n_keys;      // attention's Lk: pos + 1
    uint split_keys;  // flash_split's keys per slice (the split count is fixed by the recording)
    uint reserved;
};

#ifdef __cplusplus
}  // namespace vkattn::ops::glsl
#endif

#endif
