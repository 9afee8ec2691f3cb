#include <vkattn/model/sampler.hpp>

#include "vkattn/error.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace vkattn::model {

Sampler::Sampler(const SamplerOptions& options) : options_(options), state_(options.seed) {
    // Written as !(a >= b) so that NaN fails too.
    if (!(options.temperature >= 0) || std::isinf(options.temperature)) {
        throw Error("sampler temperature must be finite and >= 0 (0 is greedy), got " +
                    std::to_string(options.temperature));
    }
    if (options.top_k < 0) {
        throw Error("sampler top_k must be >= 0 (0 keeps every token), got " + std::to_string(options.top_k));
    }
    if (!(options.top_p > 0 && options.top_p <= 1)) {
        throw Error("sampler top_p must be in (0, 1] (1 keeps every token), got " + std::to_string(options.top_p));
    }
}

double Sampler::next_uniform() {
    // splitmix64 (Steele, Lea, Flood 2014), the top 53 bits as a double.
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int Sampler::sample(std::span<const float> logits) {
    const int V = static_cast<int>(logits.size());
    if (V == 0) throw Error("sampler got no logits");
    for (int i = 0; i < V; ++i) {
        if (std::isnan(logits[i])) throw Error("sampler got NaN at logit " + std::to_string(i));
    }

    if (options_.temperature == 0) {
        // std::max_element returns the first of equal maxima: the lowest index wins ties.
        return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }

    // Candidates by decreasing logit, ties by increasing index, so the order (and the result) is unique.
    std::vector<int> order(V);
    std::iota(order.begin(), order.end(), 0);
    auto before = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    const int n_top = options_.top_k > 0 ? std::min(options_.top_k, V) : V;
    std::partial_sort(order.begin(), order.begin() + n_top, order.end(), before);
    int n = n_top;

    const double max_logit = logits[order[0]];
    if (!std::isfinite(max_logit)) {
        throw Error("sampler needs a finite largest logit, got " + std::to_string(max_logit));
    }

    // Nucleus: the shortest prefix whose softmax mass (at temperature 1, over the top-k) reaches top_p.
    if (options_.top_p < 1) {
        std::vector<double> p(n);  // [n]
        double sum = 0.0;
        for (int i = 0; i < n; ++i) sum += p[i] = std::exp(logits[order[i]] - max_logit);
        double cumulative = 0.0;
        int keep = 0;
        while (keep < n) {
            cumulative += p[keep++] / sum;
            if (cumulative >= options_.top_p) break;
        }
        n = keep;
    }

    // Temperature softmax over the survivors, then invert the cumulative distribution at a uniform draw.
    std::vector<double> weight(n);  // [n], unnormalised
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
        total += weight[i] = std::exp((logits[order[i]] - max_logit) / options_.temperature);
    }
    const double r = next_uniform() * total;
    double cumulative = 0.0;
    for (int i = 0; i < n; ++i) {
        cumulative += weight[i];
        if (r < cumulative) return order[i];
    }
    // Rounding can leave r just above the last partial sum; the last candidate with weight is the answer.
    for (int i = n - 1; i > 0; --i) {
        if (weight[i] > 0) return order[i];
    }
    return order[0];
}

}  // namespace vkattn::model
