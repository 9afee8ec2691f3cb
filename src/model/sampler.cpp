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

float Sampler::penalised(float x) const {
    return x > 0 ? x / options_.repeat_penalty : x * options_.repeat_penalty;
}

std::optional<LogitRequest> Sampler::request(int vocab) const {
    LogitRequest r;
    if (options_.temperature == 0) {
        r.k = 1;
    } else if (options_.top_k > 0 && options_.top_k <= kMaxCandidates) {
        r.k = options_.top_k;
    } else {
        return std::nullopt;
    }
    if (options_.repeat_penalty != 1) {
        for (const int t : recent_) {
            if (t >= 0 && t < vocab) r.skip.push_back(t);
        }
        std::sort(r.skip.begin(), r.skip.end());
        r.skip.erase(std::unique(r.skip.begin(), r.skip.end()), r.skip.end());
        if (r.skip.size() > size_t(kMaxSkipped)) return std::nullopt;
    }
    return r;
}

int Sampler::sample(const LogitSelection& selection, const LogitRequest& request) {
    if (selection.vocab <= 0) throw Error("sampler got no logits");
    if (selection.first_nan >= 0) throw Error("sampler got NaN at logit " + std::to_string(selection.first_nan));
    if (selection.ids.size() != selection.logits.size() || int(selection.ids.size()) > request.k ||
        selection.skipped.size() != request.skip.size()) {
        throw Error("sampler: the logit selection does not answer its request (" +
                    std::to_string(selection.ids.size()) + " ids for k = " + std::to_string(request.k) + ", " +
                    std::to_string(selection.skipped.size()) + " skipped values for " +
                    std::to_string(request.skip.size()) + " skipped ids)");
    }
    // The top of the penalised logits is among the top k of the others and the penalised skipped ones.
    std::vector<Candidate> candidates;
    candidates.reserve(selection.ids.size() + request.skip.size());
    for (size_t i = 0; i < selection.ids.size(); ++i) candidates.push_back({selection.ids[i], selection.logits[i]});
    for (size_t j = 0; j < request.skip.size(); ++j) {
        candidates.push_back({request.skip[j], penalised(selection.skipped[j])});
    }
    if (candidates.empty()) throw Error("sampler: the logit selection holds no candidate");
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
    int token = candidates[0].id;  // greedy: the largest, the lowest id on ties
    if (options_.temperature != 0) {
        candidates.resize(std::min(candidates.size(), size_t(options_.top_k)));
        token = draw(candidates);
    }
    accept(std::span<const int>(&token, 1));
    return token;
}

int Sampler::choose(std::span<const float> raw_logits) {
    const int V = static_cast<int>(raw_logits.size());
    // Repetition penalty: each distinct recent token once, however often it occurred (llama.cpp's
    // penalty_repeat); ids outside the logits (another vocabulary's prompt) are ignored.
    std::vector<float> penalised_logits;  // [V], only when a penalty applies
    std::span<const float> logits = raw_logits;
    if (options_.repeat_penalty != 1 && !recent_.empty()) {
        penalised_logits.assign(raw_logits.begin(), raw_logits.end());
        std::vector<bool> seen(size_t(V), false);
        for (const int t : recent_) {
            if (t < 0 || t >= V || seen[size_t(t)]) continue;
            seen[size_t(t)] = true;
            penalised_logits[size_t(t)] = penalised(penalised_logits[size_t(t)]);
        }
        logits = penalised_logits;
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
    std::vector<Candidate> candidates(static_cast<size_t>(n_top));
    for (int i = 0; i < n_top; ++i) candidates[size_t(i)] = {order[size_t(i)], logits[size_t(order[size_t(i)])]};
    return draw(candidates);
}

int Sampler::draw(std::span<const Candidate> c) {
    int n = int(c.size());
    const double max_logit = c[0].logit;
    if (!std::isfinite(max_logit)) {
        throw Error("sampler needs a finite largest logit, got " + std::to_string(max_logit));
    }

    // Nucleus: the shortest prefix whose softmax mass (at temperature 1, over the top-k) reaches top_p.
    if (options_.top_p < 1) {
        std::vector<double> p(static_cast<size_t>(n));  // [n]
        double sum = 0.0;
        for (int i = 0; i < n; ++i) sum += p[size_t(i)] = std::exp(c[size_t(i)].logit - max_logit);
        double cumulative = 0.0;
        int keep = 0;
        while (keep < n) {
            cumulative += p[size_t(keep++)] / sum;
            if (cumulative >= options_.top_p) break;
        }
        n = keep;
    }

    // min-p: p_i >= min_p * p_max at temperature 1, i.e. logit_i >= max_logit + ln(min_p); the most likely
    // token always stays.
    if (options_.min_p > 0) {
        const double threshold = max_logit + std::log(double(options_.min_p));
        int keep = 1;
        while (keep < n && double(c[size_t(keep)].logit) >= threshold) ++keep;
        n = keep;
    }

    // Temperature softmax over the survivors, then invert the cumulative distribution at a uniform draw.
    std::vector<double> weight(static_cast<size_t>(n));  // [n], unnormalised
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
        total += weight[size_t(i)] = std::exp((c[size_t(i)].logit - max_logit) / options_.temperature);
    }
    const double r = next_uniform() * total;
    double cumulative = 0.0;
    for (int i = 0; i < n; ++i) {
        cumulative += weight[size_t(i)];
        if (r < cumulative) return c[size_t(i)].id;
    }
    // Rounding can leave r just above the last partial sum; the last candidate with weight is the answer.
    for (int i = n - 1; i > 0; --i) {
        if (weight[size_t(i)] > 0) return c[size_t(i)].id;
    }
    return c[0].id;
}

}  // namespace vkattn::model
