// The three attention kernels (qk, softmax, pv) and their composition against the CPU reference.
#include "catch.hpp"
#include "cpu/attention.hpp"
#include "cpu/half.hpp"
#include "attention_cases.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/tensor.hpp>

#include <cmath>
#include <limits>
#include <sstream>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::gpu;
using vkattn::test::random_values;
using namespace vkattn::test;

namespace {

void check_case(const Case& c) {
    INFO(c.name());
    const Inputs in = make_inputs(c);

    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q, c.dtype);
    Tensor k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k, c.dtype);
    Tensor v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v, c.dtype);
    Tensor out(ctx, {c.B, c.H, c.Lq, c.D}, c.dtype);
    std::optional<Tensor> additive, padding;
    AttentionParams params;
    params.causal = c.causal;
    params.window = c.window;
    params.impl = AttentionImpl::naive;  // this file covers the three kernels; test_flash.cpp the fused ones
    if (c.additive) params.additive_mask = &additive.emplace(ctx, std::vector<int64_t>{c.Lq, c.Lk}, in.additive);
    if (c.padding) params.key_padding_mask = &padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding);
    attention(ctx, q, k, v, out, params);
    const std::vector<float> got = out.download();

    const auto cmp = compare(got, in.ref, atol_for(c.dtype), rtol_for(c.dtype));
    INFO(cmp.describe());
    CHECK(cmp.ok);
    for (float x : got) REQUIRE(std::isfinite(x));
}

}  // namespace

TEST_CASE("three-kernel attention matches the CPU reference over awkward shapes", "[gpu][attention]") {
    const Case c = GENERATE(
        Case{1, 1, 1, 1, 1, 64},                    // L = 1
        Case{1, 2, 2, 17, 17, 64},                  // L not a multiple of the tile
        Case{1, 2, 2, 63, 63, 32, true},
        Case{1, 2, 2, 64, 64, 32, true},
        Case{1, 2, 2, 65, 65, 32, true},
        Case{2, 3, 3, 5, 33, 64},                   // Lq != Lk (cross attention)
        Case{1, 4, 4, 1, 100, 64, true},            // decode: one query against a cache
        Case{2, 4, 4, 33, 20, 64, true},            // Lq > Lk with causal: early rows see nothing
        Case{1, 8, 2, 19, 23, 64, true},            // GQA
        Case{2, 4, 1, 9, 40, 32},                   // MQA
        Case{1, 2, 2, 20, 20, 80},                  // each head dim
        Case{1, 2, 2, 20, 20, 96},
        Case{1, 2, 2, 20, 20, 128},
        Case{1, 2, 2, 20, 20, 256},
        Case{1, 2, 2, 40, 40, 64, true, 7},         // sliding window with causal
        Case{1, 2, 2, 12, 30, 64, false, 5},        // window alone
        Case{3, 2, 2, 9, 13, 64, false, 0, true},   // key padding
        Case{3, 2, 1, 1, 1, 32, false, 0, true},    // padding masks the only key: zeros
        Case{1, 2, 2, 11, 19, 64, true, 0, false, true},  // additive mask
        Case{1, 12, 12, 128, 128, 64, true},        // a GPT-2 head shape
        Case{1, 2, 2, 17, 17, 64, false, 0, false, false, DType::f16},
        Case{1, 8, 2, 33, 47, 128, true, 0, false, false, DType::f16},
        Case{2, 4, 4, 1, 65, 96, true, 9, true, false, DType::f16});
    check_case(c);
}

TEST_CASE("three-kernel attention takes any head dim from 1 to 256", "[gpu][attention][headdim]") {
    const int D = GENERATE(1, 3, 8, 16, 24, 40, 100, 256);
    const DType dtype = GENERATE(DType::f32, DType::f16);
    check_case({1, 1, 1, 1, 1, D, false, 0, false, false, dtype});    // L = 1
    check_case({1, 4, 2, 7, 19, D, true, 0, false, false, dtype});    // GQA, Lq != Lk, causal
    check_case({2, 2, 2, 17, 17, D, false, 0, true, false, dtype});   // L = 17, key padding
}

TEST_CASE("the three stages match the CPU reference one by one", "[gpu][attention]") {
    const Case c = GENERATE(Case{1, 4, 2, 17, 31, 64, true}, Case{2, 2, 2, 1, 9, 32, false, 3, true});
    INFO(c.name());
    const Inputs in = make_inputs(c);
    const size_t n_scores = size_t(c.B) * c.H * c.Lq * c.Lk;
    const float scale = 0.125f;
    std::vector<float> ref_s(n_scores), ref_p(n_scores), ref_o(size_t(c.B) * c.H * c.Lq * c.D);
    cpu::AttentionMask mask{c.causal, c.window, nullptr, c.padding ? in.padding.data() : nullptr};
    cpu::attention_scores(in.shape, in.q.data(), in.k.data(), scale, ref_s.data());
    cpu::attention_softmax(in.shape, mask, ref_s.data(), ref_p.data());
    cpu::attention_values(in.shape, ref_p.data(), in.v.data(), ref_o.data());

    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q);
    Tensor k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k);
    Tensor v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v);
    Tensor scores(ctx, {c.B, c.H, c.Lq, c.Lk});
    Tensor probs(ctx, {c.B, c.H, c.Lq, c.Lk});
    Tensor out(ctx, {c.B, c.H, c.Lq, c.D});
    std::optional<Tensor> padding;
    AttentionParams params;
    params.scale = scale;
    params.causal = c.causal;
    params.window = c.window;
    if (c.padding) params.key_padding_mask = &padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding);

    attention_scores(ctx, q, k, scores, params);
    auto s = compare(scores.download(), ref_s, 1e-4, 1e-4);  // fp32 dot products of length D
    INFO("scores " << s.describe());
    CHECK(s.ok);
    attention_softmax(ctx, scores, probs, params);
    const std::vector<float> got_p = probs.download();
    auto p = compare(got_p, ref_p, 1e-6, 1e-5);  // probabilities in [0, 1]; fp32 exp and sum
    INFO("probs " << p.describe());
    CHECK(p.ok);
    // Masked keys are exactly zero, not merely small.
    for (int b = 0; b < c.B; ++b)
        for (int h = 0; h < c.H; ++h)
            for (int i = 0; i < c.Lq; ++i)
                for (int j = 0; j < c.Lk; ++j)
                    if (!cpu::key_visible(in.shape, mask, b, i, j))
                        REQUIRE(got_p[((size_t(b) * c.H + h) * c.Lq + i) * c.Lk + j] == 0.0f);
    attention_values(ctx, probs, v, out);
    auto o = compare(out.download(), ref_o, 1e-4, 1e-4);
    INFO("out " << o.describe());
    CHECK(o.ok);
}

TEST_CASE("Q, K and V can be strided views into one fused QKV buffer", "[gpu][attention]") {
    // The GPT-2 layout: qkv [T, 3, H, D], so Q is the view [H, T, D] with strides (D, 3·H·D, 1).
    const int T = 21, H = 3, D = 32;
    const auto qkv_host = random_values(size_t(T) * 3 * H * D, 7, -2, 2);
    std::vector<float> q(size_t(H) * T * D), k(q.size()), v(q.size());
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) {
                const size_t dst = (size_t(h) * T + t) * D + d;
                q[dst] = qkv_host[((size_t(t) * 3 + 0) * H + h) * D + d];
                k[dst] = qkv_host[((size_t(t) * 3 + 1) * H + h) * D + d];
                v[dst] = qkv_host[((size_t(t) * 3 + 2) * H + h) * D + d];
            }
    std::vector<float> ref(q.size());
    cpu::attention({1, H, H, T, T, D}, {true}, q.data(), k.data(), v.data(), 0, ref.data());

    Context& ctx = gpu();
    Tensor qkv(ctx, {T, 3, H, D}, qkv_host);
    Tensor out(ctx, {T, H, D});  // written as [H, T, D] with strides (D, H·D, 1): the model's layout
    const std::vector<int64_t> shape = {H, T, D}, strides = {D, 3 * H * D, 1};
    attention(ctx, TensorView(qkv, shape, strides, 0), TensorView(qkv, shape, strides, H * D),
              TensorView(qkv, shape, strides, 2 * H * D), TensorView(out, shape, {D, H * D, 1}), {.causal = true});
    const auto got_thd = out.download();
    std::vector<float> got(ref.size());
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) got[(size_t(h) * T + t) * D + d] = got_thd[(size_t(t) * H + h) * D + d];
    const auto cmp = compare(got, ref, 1e-4, 1e-4);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("the worked example of seed 003 comes out exactly", "[gpu][attention][seed]") {
    // X [2, 4] and the projections of shared/seeds/003; Q = X·W_Q etc. are exact small integers.
    const float X[2][4] = {{6, 1, 4, 4}, {8, 4, 6, 3}};
    const float WQ[4][4] = {{1, 4, 3, 1}, {1, 1, 3, 2}, {3, 4, 4, 3}, {1, 2, 2, 2}};
    const float WK[4][4] = {{2, 1, 2, 1}, {4, 1, 4, 2}, {3, 4, 4, 1}, {3, 4, 1, 2}};
    const float WV[4][4] = {{4, 2, 4, 4}, {3, 4, 1, 2}, {2, 2, 4, 1}, {4, 3, 1, 4}};
    // d_k = 4 is padded with zero columns to D = 32, the smallest head dim the kernels take: zeros add
    // nothing to a dot product, and the scale is set to 1/sqrt(4) explicitly.
    const int D = 32;
    std::vector<float> q(2 * D, 0.0f), k(2 * D, 0.0f), v(2 * D, 0.0f);
    for (int t = 0; t < 2; ++t)
        for (int c = 0; c < 4; ++c)
            for (int r = 0; r < 4; ++r) {
                q[size_t(t) * D + c] += X[t][r] * WQ[r][c];
                k[size_t(t) * D + c] += X[t][r] * WK[r][c];
                v[size_t(t) * D + c] += X[t][r] * WV[r][c];
            }
    CHECK(q[0] == 23);
    CHECK(k[D + 0] == 59);

    Context& ctx = gpu();
    Tensor tq(ctx, {1, 2, D}, q), tk(ctx, {1, 2, D}, k), tv(ctx, {1, 2, D}, v);
    Tensor scores(ctx, {1, 1, 2, 2}), probs(ctx, {1, 1, 2, 2}), out(ctx, {1, 2, D});
    const AttentionParams params{.scale = 0.5f};
    attention_scores(ctx, TensorView(tq, {1, 1, 2, D}, {2 * D, 2 * D, D, 1}),
                     TensorView(tk, {1, 1, 2, D}, {2 * D, 2 * D, D, 1}), scores, params);
    const auto s = scores.download();
    CHECK(s[0] == 2505.5f);
    CHECK(s[1] == 3574.0f);
    attention_softmax(ctx, scores, probs, params);
    const auto p = probs.download();
    CHECK(p[0] == 0.0f);  // exp(2505.5 - 3574) underflows to exactly 0 only because the max is subtracted
    CHECK(p[1] == 1.0f);
    attention_values(ctx, probs, tv, out);
    const auto o = out.download();
    const float expected[4] = {68, 53, 63, 58};
    const float residual[4] = {74, 54, 67, 62};
    for (int c = 0; c < 4; ++c) {
        CHECK(o[size_t(c)] == expected[c]);
        CHECK(X[0][c] + o[size_t(c)] == residual[c]);
    }
    // And the whole attention in one call agrees.
    Tensor out2(ctx, {1, 2, D});
    attention(ctx, tq, tk, tv, out2, params);
    CHECK(out2.download() == o);
}

TEST_CASE("huge logits, zeros and fully masked rows stay finite", "[gpu][attention]") {
    Context& ctx = gpu();
    const int H = 2, L = 9, D = 32;
    SECTION("huge logits: softmax picks the max without overflow") {
        std::vector<float> qh(size_t(H) * L * D, 0.0f), kh(qh.size(), 0.0f);
        auto vh = random_values(qh.size(), 11);
        for (size_t i = 0; i < qh.size(); i += D) qh[i] = 1e4f;
        for (int j = 0; j < H * L; ++j) kh[size_t(j) * D] = float(j % L) * 10.0f;  // scores up to 1.4e5
        std::vector<float> ref(qh.size());
        cpu::attention({1, H, H, L, L, D}, {}, qh.data(), kh.data(), vh.data(), 0, ref.data());
        Tensor q(ctx, {H, L, D}, qh), k(ctx, {H, L, D}, kh), v(ctx, {H, L, D}, vh), out(ctx, {H, L, D});
        attention(ctx, q, k, v, out);
        const auto cmp = compare(out.download(), ref, 1e-5, 1e-5);
        INFO(cmp.describe());
        CHECK(cmp.ok);
    }
    SECTION("all-zero inputs give zeros") {
        std::vector<float> z(size_t(H) * L * D, 0.0f);
        Tensor q(ctx, {H, L, D}, z), k(ctx, {H, L, D}, z), v(ctx, {H, L, D}, z), out(ctx, {H, L, D});
        attention(ctx, q, k, v, out, {.causal = true});
        for (float x : out.download()) REQUIRE(x == 0.0f);
    }
    SECTION("an additive mask of -inf on a whole row gives zeros, never NaN") {
        std::vector<float> add(size_t(L) * L, 0.0f);
        for (int j = 0; j < L; ++j) add[size_t(3) * L + j] = -std::numeric_limits<float>::infinity();
        Tensor mask(ctx, {L, L}, add);
        const auto qh = random_values(size_t(H) * L * D, 5);
        Tensor q(ctx, {H, L, D}, qh), k(ctx, {H, L, D}, qh), v(ctx, {H, L, D}, qh), out(ctx, {H, L, D});
        attention(ctx, q, k, v, out, {.additive_mask = &mask});
        const auto o = out.download();
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) REQUIRE(o[(size_t(h) * L + 3) * D + d] == 0.0f);
        for (float x : o) REQUIRE(std::isfinite(x));
    }
}
