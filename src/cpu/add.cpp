#include "cpu/add.hpp"

namespace vkattn::cpu {

void add(long n, const float* a, const float* b, float* out) {
    for (long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace vkattn::cpu
