// The library in five steps: open a device, upload Q, K and V, run causal attention on the GPU, look at the
// attention matrix of one head, and check the output against the CPU reference. Exits 1 on a mismatch.
#include <vkattn/attention.hpp>
#include <vkattn/reference.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    // 1. A context on the best device (VKATTN_DEVICE picks another; VKATTN_VALIDATION=1 checks every call).
    vkattn::Context ctx;
    std::printf("device: %s (%s)\n", ctx.device().name.c_str(), ctx.device().type.c_str());

    // 2. Grouped-query attention: 8 query heads share 2 key/value heads; 5 new queries against 9 cached keys.
    const vkattn::reference::AttentionShape s{1, 8, 2, 5, 9, 64};
    std::vector<float> q(size_t(s.H) * s.Lq * s.D), k(size_t(s.Hkv) * s.Lk * s.D), v(k.size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.37f * float(i));
    for (size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.11f * float(i));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.05f * float(i) + 1.0f);
    vkattn::Tensor tq(ctx, {s.B, s.H, s.Lq, s.D}, q);
    vkattn::Tensor tk(ctx, {s.B, s.Hkv, s.Lk, s.D}, k);
    vkattn::Tensor tv(ctx, {s.B, s.Hkv, s.Lk, s.D}, v);
    vkattn::Tensor out(ctx, {s.B, s.H, s.Lq, s.D});

    // 3. Causal attention, bottom-right aligned: query i sees keys j <= i + (Lk - Lq), as with a KV cache.
    vkattn::attention(ctx, tq, tk, tv, out, {.causal = true});
    const std::vector<float> got = out.download();

    // 4. The same through the inspectable stages: the softmax weights of head 0, one row per query.
    vkattn::Tensor probs(ctx, {s.B, s.H, s.Lq, s.Lk});
    vkattn::attention_scores(ctx, tq, tk, probs);
    vkattn::attention_softmax(ctx, probs, probs, {.causal = true});
    const std::vector<float> p = probs.download();
    std::printf("attention weights of head 0 (rows: queries, columns: keys):\n");
    for (int i = 0; i < s.Lq; ++i) {
        for (int j = 0; j < s.Lk; ++j) std::printf(" %5.3f", double(p[size_t(i) * s.Lk + j]));
        std::printf("\n");
    }

    // 5. The CPU reference computes the same in double; fp32 on the GPU agrees to well under 1e-4.
    const std::vector<float> ref = vkattn::reference::attention(s, q, k, v, {.causal = true});
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - ref[i])));
    std::printf("max |GPU - CPU| = %.3g: %s\n", worst, worst <= 1e-4 ? "match" : "MISMATCH");
    return worst <= 1e-4 ? 0 : 1;
}
