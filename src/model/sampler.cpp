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
    if (!(options.min_p >= 0 && options.min_p <= 1)) {
        throw Error("sampler min_p must be in [0, 1] (0 keeps every token), got " + std::to_string(options.min_p));
    }
    if (!(options.repeat_penalty > 0) || std::isinf(options.repeat_penalty)) {
        throw Error("sampler repeat_penalty must be finite and > 0 (1 is off), got " +
                    std::to_string(options.repeat_penalty));
    }
    if (options.repeat_last_n < 0) {
        throw Error("sampler repeat_last_n must be >= 0 (0 is off), got " + std::to_string(options.repeat_last_n));
    }
}

void Sampler::accept(std::span<const int> tokens) {
    const size_t n = size_t(options_.repeat_last_n);
    if (n == 0) return;
    for (const int t : tokens) {
        recent_.push_back(t);
        if (recent_.size() > n) recent_.pop_front();
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

int Sampler::sample(std::span<const float> raw_logits) {
    const int V = static_cast<int>(raw_logits.size());
    if (V == 0) throw Error("sampler got no logits");
    for (int i = 0; i < V; ++i) {
        if (std::isnan(raw_logits[i])) throw Error("sampler got NaN at logit " + std::to_string(i));
    }
    const int token = choose(raw_logits);
    accept(std::span<const int>(&token, 1));
    return token;
}

int Sampler::choose(std::span<const float> raw_logits) {
    const int V = static_cast<int>(raw_logits.size());
    // Repetition penalty: each distinct recent token once, however often it occurred (llama.cpp's
    // penalty_repeat); ids outside the logits (another vocabulary's prompt) are ignored.
    std::vector<float> penalised;  // [V], only when a penalty applies
    std::span<const float> logits = raw_logits;
    if (options_.repeat_penalty != 1 && !recent_.empty()) {
        penalised.assign(raw_logits.begin(), raw_logits.end());
        std::vector<bool> seen(size_t(V), false);
        for (const int t : recent_) {
            if (t < 0 || t >= V || seen[size_t(t)]) continue;
            seen[size_t(t)] = true;
            float& x = penalised[size_t(t)];
            x = x > 0 ? x / options_.repeat_penalty : x * options_.repeat_penalty;
        }
        logits = penalised;
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

    // min-p: p_i >= min_p * p_max at temperature 1, i.e. logit_i >= max_logit + ln(min_p); the most likely
    // token always stays.
    if (options_.min_p > 0) {
        const double threshold = max_logit + std::log(double(options_.min_p));
        int keep = 1;
        while (keep < n && double(logits[order[keep]]) >= threshold) ++keep;
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
