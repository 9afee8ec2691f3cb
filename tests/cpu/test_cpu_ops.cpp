// The CPU reference ops of the GPT-2 forward pass against hand-computed cases and algebraic properties.
#include "catch.hpp"

#include "cpu/add.hpp"
#include "cpu/embedding.hpp"
#include "cpu/gelu.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

using namespace vkattn;
#ifdef VKATTN_CATCH3
using Catch::Approx;  // v2 declares Approx at global scope, v3 only in Catch::
#endif

namespace {

// Values in [-1, 1) from a fixed linear congruential sequence: reproducible everywhere, no <random>.
std::vector<float> filled(long n, uint32_t seed) {
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 1u;
    for (auto& x : v) {
        s = s * 1664525u + 1013904223u;
        x = static_cast<float>(s >> 8) / float(1u << 23) - 1.0f;
    }
    return v;
}

// out [M, N] = x [M, K] · w [K, N] + bias [N], the textbook triple loop in double.
std::vector<float> naive_matmul(int M, int K, int N, const std::vector<float>& x, const std::vector<float>& w,
                                const float* bias) {
    std::vector<float> out(static_cast<long>(M) * N);
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < K; ++k) s += double(x[static_cast<long>(i) * K + k]) * w[static_cast<long>(k) * N + j];
            out[static_cast<long>(i) * N + j] = static_cast<float>(s);
        }
    return out;
}

}  // namespace

TEST_CASE("layernorm of a hand-computed row", "[cpu]") {
    // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
    const std::vector<float> x = {1, 2, 3, 4};
    const std::vector<float> w = {1, 2, 0.5f, -1};
    const std::vector<float> b = {0, 1, -1, 0.25f};
    std::vector<float> out(4);
    cpu::layernorm(1, 4, x.data(), w.data(), b.data(), 0.0f, out.data());
    const double rstd = 1.0 / std::sqrt(1.25);
    CHECK(out[0] == Approx(-1.5 * rstd * 1 + 0).margin(1e-6));
    CHECK(out[1] == Approx(-0.5 * rstd * 2 + 1).margin(1e-6));
    CHECK(out[2] == Approx(0.5 * rstd * 0.5 - 1).margin(1e-6));
    CHECK(out[3] == Approx(1.5 * rstd * -1 + 0.25).margin(1e-6));
}

TEST_CASE("layernorm rows have zero mean and unit variance, whatever their offset", "[cpu]") {
    const int T = 3, C = 67;
    std::vector<float> x = filled(T * C, 1);
    // Row 2 rides on a large offset: a one-pass E[x²] - E[x]² would lose most of its digits here.
    for (int c = 0; c < C; ++c) x[2 * C + c] += 1000.0f;
    const std::vector<float> w(C, 1.0f), b(C, 0.0f);
    std::vector<float> out(T * C);
    const float eps = 1e-5f;
    cpu::layernorm(T, C, x.data(), w.data(), b.data(), eps, out.data());
    for (int t = 0; t < T; ++t) {
        double mean = 0, var = 0;
        for (int c = 0; c < C; ++c) mean += out[t * C + c];
        mean /= C;
        for (int c = 0; c < C; ++c) var += (out[t * C + c] - mean) * (out[t * C + c] - mean);
        var /= C;
        INFO("row " << t);
        CHECK(std::abs(mean) < 1e-5);
        // var(out) = var(x) / (var(x) + eps); the row variance here is about 1/3.
        CHECK(var == Approx(1.0).epsilon(1e-4));
    }
}

TEST_CASE("matmul of a hand-computed case, with and without bias", "[cpu]") {
    const std::vector<float> x = {1, 2, 3,
                                  4, 5, 6};  // [2, 3]
    const std::vector<float> w = {1, 0,
                                  0, 1,
                                  1, -1};  // [3, 2]
    const std::vector<float> bias = {10, 20};
    std::vector<float> out(4);
    cpu::matmul(2, 3, 2, x.data(), w.data(), bias.data(), out.data());
    CHECK(out == std::vector<float>{14, 19, 20, 19});
    cpu::matmul(2, 3, 2, x.data(), w.data(), nullptr, out.data());
    CHECK(out == std::vector<float>{4, -1, 10, -1});
}

TEST_CASE("matmul matches the triple loop on awkward shapes", "[cpu]") {
    struct Shape { int M, K, N; };
    // Shapes straddle the 4-row and 256-column tiles; the last one is large enough to run on several threads.
    const Shape shape = GENERATE(Shape{1, 1, 1}, Shape{5, 7, 3}, Shape{9, 17, 257}, Shape{1, 64, 513},
                                 Shape{33, 64, 600});
    const auto [M, K, N] = shape;
    const auto x = filled(static_cast<long>(M) * K, 2);
    const auto w = filled(static_cast<long>(K) * N, 3);
    const auto bias = filled(N, 4);
    std::vector<float> out(static_cast<long>(M) * N);
    cpu::matmul(M, K, N, x.data(), w.data(), bias.data(), out.data());
    const auto expected = naive_matmul(M, K, N, x, w, bias.data());
    INFO("M " << M << " K " << K << " N " << N);
    // Both accumulate in double and round once, so only the summation order differs: far below float epsilon.
    for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(expected[i]).margin(1e-6));
}

TEST_CASE("matmul_transposed_b equals matmul against the explicit transpose", "[cpu]") {
    const int M = GENERATE(1, 7, 20);
    const int K = 37, N = 301;  // K not a multiple of the 4-way unroll, N not of the 16-row block
    const auto x = filled(static_cast<long>(M) * K, 5);
    const auto w = filled(static_cast<long>(N) * K, 6);  // [N, K]
    std::vector<float> wt(static_cast<long>(K) * N);     // [K, N]
    for (int n = 0; n < N; ++n)
        for (int k = 0; k < K; ++k) wt[static_cast<long>(k) * N + n] = w[static_cast<long>(n) * K + k];
    std::vector<float> out(static_cast<long>(M) * N);
    cpu::matmul_transposed_b(M, K, N, x.data(), w.data(), out.data());
    const auto expected = naive_matmul(M, K, N, x, wt, nullptr);
    INFO("M " << M);
    for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(expected[i]).margin(1e-6));
}

TEST_CASE("gelu tanh form: known values, tails and the odd identity", "[cpu]") {
    const std::vector<float> x = {0.0f, 1.0f, -1.0f, 2.0f, 10.0f, -10.0f};
    std::vector<float> out(x.size());
    cpu::gelu(static_cast<long>(x.size()), x.data(), out.data());
    // Reference values of 0.5·x·(1 + tanh(sqrt(2/π)(x + 0.044715x³))), computed by hand in double.
    CHECK(out[0] == 0.0f);
    CHECK(out[1] == Approx(0.8411919906).margin(1e-6));
    CHECK(out[2] == Approx(-0.1588080094).margin(1e-6));
    CHECK(out[3] == Approx(1.9545976941).margin(1e-6));
    CHECK(out[4] == Approx(10.0).margin(1e-6));
    CHECK(out[5] == Approx(0.0).margin(1e-6));

    // tanh is odd, so gelu(x) - gelu(-x) = x exactly in the math.
    const auto v = filled(101, 7);
    std::vector<float> neg(v.size()), gv(v.size()), gneg(v.size());
    for (size_t i = 0; i < v.size(); ++i) neg[i] = -3.0f * v[i];
    for (size_t i = 0; i < v.size(); ++i) gv[i] = 3.0f * v[i];
    cpu::gelu(101, gv.data(), gv.data());  // in place is allowed
    cpu::gelu(101, neg.data(), gneg.data());
    for (size_t i = 0; i < v.size(); ++i) CHECK(gv[i] - gneg[i] == Approx(3.0f * v[i]).margin(1e-6));
}

TEST_CASE("embedding adds the token row and the position row", "[cpu]") {
    const int C = 2;
    const std::vector<float> wte = {1, 2, 3, 4, 5, 6};     // [V = 3, C]
    const std::vector<float> wpe = {10, 20, 30, 40};       // [P = 2, C]
    const std::vector<int> tokens = {2, 0}, positions = {1, 0};
    std::vector<float> out(4);
    cpu::embedding(2, C, tokens.data(), positions.data(), wte.data(), wpe.data(), out.data());
    CHECK(out == std::vector<float>{35, 46, 11, 22});
}

TEST_CASE("add sums elementwise, in place too", "[cpu]") {
    std::vector<float> a = {1, 2, 3}, b = {0.5f, -2, 10};
    cpu::add(3, a.data(), b.data(), a.data());
    CHECK(a == std::vector<float>{1.5f, 0, 13});
}
