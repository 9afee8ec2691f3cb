// The CPU reference ops of the Llama family (RMSNorm, RoPE and its frequency table, SwiGLU) against
// hand-computed cases and the algebraic properties they must have.
#include "catch.hpp"

#include "cpu/rmsnorm.hpp"
#include "cpu/rope.hpp"
#include "cpu/swiglu.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
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

}  // namespace

TEST_CASE("rmsnorm of a hand-computed row", "[cpu]") {
    // x = [1, 2, 3, 4]: mean of squares 30 / 4 = 7.5; no mean is subtracted and there is no bias.
    const std::vector<float> x = {1, 2, 3, 4};
    const std::vector<float> w = {1, 2, 0.5f, -1};
    std::vector<float> out(4);
    cpu::rmsnorm(1, 4, x.data(), w.data(), 0.0f, out.data());
    const double r = 1.0 / std::sqrt(7.5);
    CHECK(out[0] == Approx(1 * r * 1).margin(1e-7));
    CHECK(out[1] == Approx(2 * r * 2).margin(1e-7));
    CHECK(out[2] == Approx(3 * r * 0.5).margin(1e-7));
    CHECK(out[3] == Approx(4 * r * -1).margin(1e-7));

    // eps enters under the root: with eps = 2.5 the denominator is sqrt(10).
    cpu::rmsnorm(1, 4, x.data(), w.data(), 2.5f, out.data());
    CHECK(out[3] == Approx(-4 / std::sqrt(10.0)).margin(1e-7));
}

TEST_CASE("rmsnorm rows have unit mean square, whatever their scale; in place is allowed", "[cpu]") {
    const int T = 3, C = 67;
    std::vector<float> x = filled(T * C, 11);
    for (int c = 0; c < C; ++c) x[C + c] *= 1e-3f;   // a tiny row
    for (int c = 0; c < C; ++c) x[2 * C + c] *= 1e4f;  // a large row
    const std::vector<float> w(C, 1.0f);
    cpu::rmsnorm(T, C, x.data(), w.data(), 0.0f, x.data());
    for (int t = 0; t < T; ++t) {
        double ms = 0;
        for (int c = 0; c < C; ++c) ms += double(x[t * C + c]) * x[t * C + c];
        INFO("row " << t);
        CHECK(ms / C == Approx(1.0).epsilon(1e-6));
    }
}

TEST_CASE("swiglu: silu(gate) · up at known values, no NaN in the tails", "[cpu]") {
    const std::vector<float> gate = {0.0f, 1.0f, -1.0f, 2.0f, -100.0f, 100.0f, -1000.0f};
    const std::vector<float> up = {5.0f, 1.0f, 2.0f, -0.5f, 3.0f, 2.0f, 1.0f};
    std::vector<float> out(gate.size());
    cpu::swiglu(static_cast<long>(gate.size()), gate.data(), up.data(), out.data());
    // silu(x) = x / (1 + e^−x), computed by hand in double.
    CHECK(out[0] == 0.0f);
    CHECK(out[1] == Approx(0.7310585786300049).margin(1e-7));
    CHECK(out[2] == Approx(-0.5378828427399902).margin(1e-7));    // silu(−1) · 2
    CHECK(out[3] == Approx(-0.5 * 2 / (1 + std::exp(-2.0))).margin(1e-7));
    CHECK(std::abs(out[4]) < 1e-38);                               // silu(−100) = −3.7e−42 · 3
    CHECK(out[5] == Approx(200.0).margin(1e-4));
    CHECK(out[6] == 0.0f);                                         // e^1000 overflows to inf: −0, not NaN
    for (float v : out) CHECK(!std::isnan(v));

    // silu(x) − silu(−x) = x, since sigmoid(x) + sigmoid(−x) = 1; and out may alias gate.
    std::vector<float> g = filled(41, 12), ng(41), ones(41, 1.0f), a(41), b(41);
    for (int i = 0; i < 41; ++i) { g[i] *= 6.0f; ng[i] = -g[i]; }
    cpu::swiglu(41, g.data(), ones.data(), a.data());
    cpu::swiglu(41, ng.data(), ones.data(), ng.data());
    for (int i = 0; i < 41; ++i) CHECK(a[i] - ng[i] == Approx(g[i]).margin(1e-6));
}

TEST_CASE("rope_inv_freq: theta^(−2i/D), and llama3 scaling derived by hand", "[cpu]") {
    // D = 8, theta = 10000: 10000^(−i/4) = 1, 0.1, 0.01, 0.001.
    const auto plain = cpu::rope_inv_freq(8, 10000.0);
    REQUIRE(plain.size() == 4);
    CHECK(plain[0] == 1.0f);
    CHECK(plain[1] == Approx(0.1).epsilon(1e-7));
    CHECK(plain[2] == Approx(0.01).epsilon(1e-7));
    CHECK(plain[3] == Approx(0.001).epsilon(1e-7));

    // factor 8, low 1, high 4, original context 1024: wavelengths 2π/f are 6.28, 62.8, 628, 6283 against the
    // thresholds 1024 / 4 = 256 and 1024 / 1 = 1024.
    cpu::Llama3RopeScaling s;
    s.factor = 8;
    s.low_freq_factor = 1;
    s.high_freq_factor = 4;
    s.original_max_position_embeddings = 1024;
    const auto scaled = cpu::rope_inv_freq(8, 10000.0, s);
    REQUIRE(scaled.size() == 4);
    CHECK(scaled[0] == plain[0]);  // wavelength 6.28 < 256: high frequency, kept
    CHECK(scaled[1] == plain[1]);  // 62.8 < 256: kept
    // 628.3 is between: smooth = (1024 / 628.3185 − 1) / (4 − 1) = 0.2099155391,
    // f = (1 − smooth) · 0.01 / 8 + smooth · 0.01 = 0.003086760967.
    CHECK(scaled[2] == Approx(0.003086760967011274).epsilon(1e-6));
    CHECK(scaled[3] == Approx(0.001 / 8).epsilon(1e-7));  // 6283 > 1024: low frequency, divided by factor

    // Llama 3.2's own numbers (D 64, theta 500000, factor 32, original 8192): the fastest pair is untouched,
    // the slowest slowed 32-fold, and the table never increases.
    cpu::Llama3RopeScaling l32;
    l32.factor = 32;
    const auto l = cpu::rope_inv_freq(64, 500000.0, l32);
    const auto lp = cpu::rope_inv_freq(64, 500000.0);
    CHECK(l[0] == lp[0]);
    CHECK(l[31] == Approx(lp[31] / 32.0).epsilon(1e-6));
    for (int i = 1; i < 32; ++i) CHECK(l[i] <= l[i - 1]);
}

TEST_CASE("rope of a hand-computed case, in the rotate-half pairing", "[cpu]") {
    // D = 4, theta = 10000: inv_freq = [1, 0.01]. The pairs are (x0, x2) and (x1, x3); position 1.
    const auto inv = cpu::rope_inv_freq(4, 10000.0);
    std::vector<float> x = {1, 2, 3, 4};  // [T 1, H 1, D 4]
    cpu::rope(1, 1, 4, 1, inv.data(), x.data());
    CHECK(x[0] == Approx(1 * std::cos(1.0) - 3 * std::sin(1.0)).margin(1e-6));   // −1.98411
    CHECK(x[2] == Approx(3 * std::cos(1.0) + 1 * std::sin(1.0)).margin(1e-6));   //  2.46238
    CHECK(x[1] == Approx(1.959900667496664).margin(1e-6));                       // 2cos(.01) − 4sin(.01)
    CHECK(x[3] == Approx(4.019799668334994).margin(1e-6));                       // 4cos(.01) + 2sin(.01)

    // Position 0 is the identity.
    std::vector<float> y = {1, 2, 3, 4};
    cpu::rope(1, 1, 4, 0, inv.data(), y.data());
    CHECK(y == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("rope is a rotation: pair norms kept, q·k depends only on the distance", "[cpu]") {
    const int D = 16, H = 3;
    const auto inv = cpu::rope_inv_freq(D, 10000.0);
    const auto q0 = filled(H * D, 21), k0 = filled(H * D, 22);

    auto rotated = [&](const std::vector<float>& v, int pos) {
        std::vector<float> r = v;
        cpu::rope(1, H, D, pos, inv.data(), r.data());
        return r;
    };
    auto dot = [&](const std::vector<float>& a, const std::vector<float>& b, int h) {
        double s = 0;
        for (int d = 0; d < D; ++d) s += double(a[h * D + d]) * b[h * D + d];
        return s;
    };

    const auto q = rotated(q0, 37);
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < D / 2; ++i) {
            const double before = std::hypot(q0[h * D + i], q0[h * D + i + D / 2]);
            const double after = std::hypot(q[h * D + i], q[h * D + i + D / 2]);
            CHECK(after == Approx(before).margin(1e-6));
        }

    // ⟨R(m)q, R(n)k⟩ = ⟨q, R(n − m)k⟩: the same for (7, 3), (107, 103) and (1007, 1003).
    for (int h = 0; h < H; ++h) {
        const double near = dot(rotated(q0, 7), rotated(k0, 3), h);
        CHECK(dot(rotated(q0, 107), rotated(k0, 103), h) == Approx(near).margin(1e-5));
        CHECK(dot(rotated(q0, 1007), rotated(k0, 1003), h) == Approx(near).margin(1e-5));
        CHECK(dot(rotated(q0, 4), k0, h) == Approx(near).margin(1e-5));
    }
}

TEST_CASE("rope over T rows at pos0 equals row by row, and a strided view leaves its neighbours alone", "[cpu]") {
    const int T = 5, H = 2, D = 8, pos0 = 9;
    const long row = 3L * H * D + 3;  // a fused [Q | K | V] row with padding: the view is the K part
    const long k_off = static_cast<long>(H) * D;
    const auto inv = cpu::rope_inv_freq(D, 500000.0);
    std::vector<float> fused = filled(T * row, 31);
    const std::vector<float> before = fused;
    cpu::rope(T, H, D, row, pos0, inv.data(), fused.data() + k_off);
    for (int t = 0; t < T; ++t) {
        std::vector<float> one(before.begin() + t * row + k_off, before.begin() + t * row + k_off + H * D);
        cpu::rope(1, H, D, pos0 + t, inv.data(), one.data());
        for (long j = 0; j < row; ++j) {
            const float got = fused[t * row + j];
            INFO("t " << t << " j " << j);
            if (j >= k_off && j < k_off + H * D) {
                CHECK(got == one[j - k_off]);
            } else {
                CHECK(got == before[t * row + j]);
            }
        }
    }
}
