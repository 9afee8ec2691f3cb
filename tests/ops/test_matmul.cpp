// matmul against the CPU reference: odd shapes, f16 weights, the transposed LM-head form, the epilogues.
#include "api/context_impl.hpp"
#include "catch.hpp"
#include "cpu/gelu.hpp"
#include "cpu/matmul.hpp"
#include "ops/matmul.hpp"
#include "support.hpp"

#include <vkattn/matmul.hpp>

#include <cmath>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;

TEST_CASE("matmul matches the CPU reference", "[gpu][matmul]") {
    struct Shape { int M, K, N; };
    const Shape s = GENERATE(Shape{1, 1, 1}, Shape{1, 768, 2304}, Shape{17, 33, 65}, Shape{64, 64, 64},
                             Shape{65, 130, 63}, Shape{128, 768, 768});
    const bool f16 = GENERATE(false, true);
    INFO("M " << s.M << " K " << s.K << " N " << s.N << (f16 ? " f16 weights" : " f32"));
    Context& ctx = test::gpu();
    const DType wt = f16 ? DType::f16 : DType::f32;
    const auto x = random_values(size_t(s.M) * s.K, 1);
    auto w = random_values(size_t(s.K) * s.N, 2);
    for (float& v : w) v = round_to_dtype(v, wt);
    const auto b = random_values(size_t(s.N), 3);
    std::vector<float> ref(size_t(s.M) * s.N);
    cpu::matmul(s.M, s.K, s.N, x.data(), w.data(), b.data(), ref.data());

    Tensor tx(ctx, {s.M, s.K}, x), tw(ctx, {s.K, s.N}, w, wt), tb(ctx, {s.N}, b), ty(ctx, {s.M, s.N});
    matmul(ctx, tx, tw, ty, &tb);
    // fp32 accumulation of K products of magnitude <= 1 against a double reference: ~K·2^-24 relative growth.
    const auto cmp = compare(ty.download(), ref, 1e-5 * std::sqrt(double(s.K)) + 1e-6, 1e-5);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("matmul epilogues and the transposed form", "[gpu][matmul]") {
    Context& ctx = test::gpu();
    auto& impl = ctx.impl();
    const int M = 9, K = 40, N = 70;
    const auto x = random_values(size_t(M) * K, 4), w = random_values(size_t(N) * K, 5);
    const auto b = random_values(size_t(N), 6), y0 = random_values(size_t(M) * N, 7);
    Tensor tx(ctx, {M, K}, x), tw(ctx, {N, K}, w), tb(ctx, {N}, b), ty(ctx, {M, N}, y0);

    // y = y0 + gelu(x · wᵀ + b): the MLP's shape of fusion, with W stored as [N, K] like the LM head.
    impl.run([&](ops::Encoder& enc) {
        ops::MatmulEpilogue ep;
        ep.bias = &tb.impl().buffer;
        ep.gelu = true;
        ep.accumulate = true;
        ops::record_matmul(enc, ops::matrix(tx.impl().buffer, DType::f32, M, K),
                           ops::matrix(tw.impl().buffer, DType::f32, N, K), true,
                           ops::matrix(ty.impl().buffer, DType::f32, M, N), ep);
    });
    std::vector<float> ref(size_t(M) * N);
    cpu::matmul_transposed_b(M, K, N, x.data(), w.data(), ref.data());
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            float& r = ref[size_t(m) * N + n];
            float v = r + b[size_t(n)];
            cpu::gelu(1, &v, &v);
            r = y0[size_t(m) * N + n] + v;
        }
    const auto cmp = compare(ty.download(), ref, 1e-5, 1e-5);  // K = 40 fp32 products, tanh in fp32
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("matmul rejects mismatched shapes", "[gpu][matmul][errors]") {
    Context& ctx = test::gpu();
    Tensor x(ctx, {3, 4}), w(ctx, {5, 6}), y(ctx, {3, 6});
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { matmul(ctx, x, w, y); }), "w must have 4 rows");
}
