// The k largest values of a row, the reference for the GPU selection kernel (shaders/top_k.comp) and what a
// CPU model hands the sampler when it needs only the top of the logits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vkattn::cpu {

struct TopK {
    std::vector<int> ids;        // the k largest values outside `skip`, by decreasing value, ties by increasing id
    std::vector<float> values;   // x[ids[i]]
    std::vector<float> skipped;  // x[skip[j]] for every j, in skip's order
    int64_t first_nan = -1;      // the lowest index of a NaN anywhere in x (skipped or not); -1: none
};

// The top k of x [V] leaving out the indices in skip (ascending, distinct, each in [0, V)), NaNs never chosen.
// Fewer than k when fewer remain. -0 and +0 are equal values (the lower id first), as the sampler orders them.
TopK top_k(std::span<const float> x, std::span<const int> skip, int k);

}  // namespace vkattn::cpu
