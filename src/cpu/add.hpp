// Elementwise sum, the residual connection of the transformer blocks.
#pragma once

namespace vkattn::cpu {

// out [n] = a [n] + b [n]; out may alias a or b.
void add(long n, const float* a, const float* b, float* out);

}  // namespace vkattn::cpu
