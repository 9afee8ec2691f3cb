#include "cpu/top_k.hpp"

#include <algorithm>
#include <cmath>

namespace vkattn::cpu {

TopK top_k(std::span<const float> x, std::span<const int> skip, int k) {
    TopK r;
    std::vector<int> order;
    order.reserve(x.size());
    size_t s = 0;  // skip is ascending: walk it beside i
    for (int i = 0; i < int(x.size()); ++i) {
        if (std::isnan(x[size_t(i)]) && r.first_nan < 0) r.first_nan = i;
        if (s < skip.size() && skip[s] == i) {
            ++s;
            continue;
        }
        if (!std::isnan(x[size_t(i)])) order.push_back(i);
    }
    for (const int j : skip) r.skipped.push_back(x[size_t(j)]);
    const size_t n = std::min(order.size(), size_t(std::max(k, 0)));
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(n), order.end(), [&](int a, int b) {
        return x[size_t(a)] > x[size_t(b)] || (x[size_t(a)] == x[size_t(b)] && a < b);
    });
    r.ids.assign(order.begin(), order.begin() + std::ptrdiff_t(n));
    for (const int i : r.ids) r.values.push_back(x[size_t(i)]);
    return r;
}

}  // namespace vkattn::cpu
