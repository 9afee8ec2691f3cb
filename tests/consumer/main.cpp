// Links vkattn from its installed package, runs a small causal attention and checks it against the CPU.
#include <vkattn/attention.hpp>
#include <vkattn/reference.hpp>

#include <cmath>
#include <cstdio>

int main() {
    vkattn::Context ctx;
    const vkattn::reference::AttentionShape s{1, 2, 1, 5, 7, 32};
    std::vector<float> q(size_t(s.H) * s.Lq * s.D), kv(size_t(s.Hkv) * s.Lk * s.D);
    for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(float(i));
    for (size_t i = 0; i < kv.size(); ++i) kv[i] = std::cos(float(i) * 0.7f);
    vkattn::Tensor tq(ctx, {s.B, s.H, s.Lq, s.D}, q), tk(ctx, {s.B, s.Hkv, s.Lk, s.D}, kv);
    vkattn::Tensor out(ctx, {s.B, s.H, s.Lq, s.D});
    vkattn::attention(ctx, tq, tk, tk, out, {.causal = true});
    const auto got = out.download();
    const auto ref = vkattn::reference::attention(s, q, kv, kv, {.causal = true});
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - ref[i])));
    std::printf("consumer: attention on %s, max |GPU - CPU| = %.3g\n", ctx.device().name.c_str(), worst);
    return worst <= 1e-4 ? 0 : 1;  // fp32 against the double reference
}
