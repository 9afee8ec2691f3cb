#include "cpu/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace vkattn::cpu {
namespace {

// Row-major offsets into the contiguous arrays.
size_t qo_index(const AttentionShape& s, int b, int h, int i) { return ((size_t(b) * s.H + h) * s.Lq + i) * s.D; }
size_t kv_index(const AttentionShape& s, int b, int hk, int j) { return ((size_t(b) * s.Hkv + hk) * s.Lk + j) * s.D; }
size_t score_index(const AttentionShape& s, int b, int h, int i) { return ((size_t(b) * s.H + h) * s.Lq + i) * s.Lk; }
int kv_head(const AttentionShape& s, int h) { return h / (s.H / s.Hkv); }

// max that keeps a NaN (std::max drops one in its second argument): a NaN score makes the whole row NaN.
double max_keep_nan(double a, double b) { return (std::isnan(a) || a >= b) ? a : b; }
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

bool key_visible(const AttentionShape& s, const AttentionMask& m, int b, int i, int j) {
    const int diag = i + s.Lk - s.Lq;  // the newest key query i may see under the causal rule
    if (m.causal && j > diag) return false;
    if (m.window > 0 && j <= diag - m.window) return false;
    if (m.key_padding != nullptr && m.key_padding[size_t(b) * s.Lk + j] != 0.0f) return false;
    return true;
}

void attention_scores(const AttentionShape& s, const float* q, const float* k, float scale, float* scores) {
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < s.Lq; ++i) {
                const float* qi = q + qo_index(s, b, h, i);
                float* row = scores + score_index(s, b, h, i);
                for (int j = 0; j < s.Lk; ++j) {
                    const float* kj = k + kv_index(s, b, kv_head(s, h), j);
                    double dot = 0;
                    for (int d = 0; d < s.D; ++d) dot += double(qi[d]) * kj[d];
                    row[j] = float(dot * scale);
                }
            }
}

void attention_softmax(const AttentionShape& s, const AttentionMask& m, const float* scores, float* probs) {
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> x(size_t(s.Lk));
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < s.Lq; ++i) {
                const float* in = scores + score_index(s, b, h, i);
                float* out = probs + score_index(s, b, h, i);
                // pass 1: masked scores and their max
                double max = neg_inf;
                for (int j = 0; j < s.Lk; ++j) {
                    x[size_t(j)] = key_visible(s, m, b, i, j) ? double(in[j]) : neg_inf;
                    if (m.additive != nullptr) x[size_t(j)] += m.additive[size_t(i) * s.Lk + j];
                    max = max_keep_nan(max, x[size_t(j)]);
                }
                if (max == neg_inf || std::isnan(max)) {  // nothing visible: zeros; a NaN score: NaN
                    for (int j = 0; j < s.Lk; ++j) out[j] = max == neg_inf ? 0.0f : float(kNaN);
                    continue;
                }
                // pass 2: exponentials shifted by the max, so exp never overflows
                double sum = 0;
                for (int j = 0; j < s.Lk; ++j) sum += std::exp(x[size_t(j)] - max);
                // pass 3: normalise
                for (int j = 0; j < s.Lk; ++j) out[j] = float(std::exp(x[size_t(j)] - max) / sum);
            }
}

void attention_values(const AttentionShape& s, const float* probs, const float* v, float* out) {
    std::vector<double> acc(size_t(s.D));
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < s.Lq; ++i) {
                const float* p = probs + score_index(s, b, h, i);
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int j = 0; j < s.Lk; ++j) {
                    if (p[j] == 0.0f) continue;  // a hidden key contributes nothing, even a NaN in V
                    const float* vj = v + kv_index(s, b, kv_head(s, h), j);
                    for (int d = 0; d < s.D; ++d) acc[size_t(d)] += double(p[j]) * vj[d];
                }
                float* o = out + qo_index(s, b, h, i);
                for (int d = 0; d < s.D; ++d) o[d] = float(acc[size_t(d)]);
            }
}

void attention(const AttentionShape& s, const AttentionMask& m, const float* q, const float* k, const float* v,
               float scale, float* out) {
    if (scale <= 0) scale = float(1.0 / std::sqrt(double(s.D)));
    const double neg_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> x(size_t(s.Lk));
    std::vector<double> acc(size_t(s.D));
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < s.Lq; ++i) {
                const float* qi = q + qo_index(s, b, h, i);
                // scores of query i against every key, masked, and their max
                double max = neg_inf;
                for (int j = 0; j < s.Lk; ++j) {
                    if (!key_visible(s, m, b, i, j)) {
                        x[size_t(j)] = neg_inf;
                        continue;
                    }
                    const float* kj = k + kv_index(s, b, kv_head(s, h), j);
                    double dot = 0;
                    for (int d = 0; d < s.D; ++d) dot += double(qi[d]) * kj[d];
                    x[size_t(j)] = dot * scale;
                    if (m.additive != nullptr) x[size_t(j)] += m.additive[size_t(i) * s.Lk + j];
                    max = max_keep_nan(max, x[size_t(j)]);
                }
                // softmax weights applied to V
                std::fill(acc.begin(), acc.end(), 0.0);
                if (std::isnan(max)) {  // a NaN score (NaN in q or a visible key's K): the row is NaN
                    std::fill(acc.begin(), acc.end(), kNaN);
                } else if (max != neg_inf) {
                    double sum = 0;
                    for (int j = 0; j < s.Lk; ++j) {
                        if (x[size_t(j)] == neg_inf) continue;
                        const double w = std::exp(x[size_t(j)] - max);
                        sum += w;
                        const float* vj = v + kv_index(s, b, kv_head(s, h), j);
                        for (int d = 0; d < s.D; ++d) acc[size_t(d)] += w * vj[d];
                    }
                    for (double& a : acc) a /= sum;
                }
                float* o = out + qo_index(s, b, h, i);
                for (int d = 0; d < s.D; ++d) o[d] = float(acc[size_t(d)]);
            }
}

}  // namespace vkattn::cpu
