// The cooperative-matrix matmul (shaders/matmul_coopmat.comp) against the CPU reference, and record_matmul's
// choice of it. Everywhere the emulated kernel checks the indexing (tiling, padding past M, N and K, both W
// layouts, strided views, the epilogue); on devices with VK_NV_cooperative_matrix the real one runs too.
#include "ops/runtime.hpp"
#include "catch.hpp"
#include "cpu/gelu.hpp"
#include "cpu/matmul.hpp"
#include "ops/matmul.hpp"
#include "ops/matmul_coopmat.hpp"
#include "ops/self_check.hpp"
#include "support.hpp"

#include <vkattn/tensor.hpp>

#include <cmath>
#include <optional>
#include <sstream>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;

namespace {

struct Case {
    int M, K, N;
    bool transposed;   // W stored [N, K] (the LM head) instead of [K, N]
    bool epilogue;     // + bias, GELU, + Y
    bool strided;      // X, W and Y are views with an offset and a row stride wider than the matrix
    bool huge_x = false;  // a few X values beyond fp16's range: their blocks take the kernel's fp32 path
};

std::string describe(const Case& c) {
    std::ostringstream s;
    s << "M " << c.M << " K " << c.K << " N " << c.N << (c.transposed ? " W [N, K]" : " W [K, N]")
      << (c.epilogue ? ", bias + GELU + Y" : "") << (c.strided ? ", strided views" : "")
      << (c.huge_x ? ", X beyond fp16" : "");
    return s.str();
}

struct Result {
    test::Comparison cmp;
    std::vector<std::string> kernels;  // dispatch labels, when the device has timestamps
};

// Runs one case through record (record_matmul, or record_matmul_coopmat with a config) and compares it with
// the double-precision reference on the same f16 weights and f32 X.
template <class Record>
Result run_case(const Case& c, uint64_t seed, Record&& record) {
    Context& ctx = test::gpu();
    const uint32_t pad = c.strided ? 5 : 0;        // extra columns of each view's rows
    const uint64_t off = c.strided ? 7 : 0;        // elements before each view
    const uint32_t x_stride = c.K + pad, y_stride = c.N + pad;
    const uint32_t w_rows = c.transposed ? c.N : c.K, w_cols = c.transposed ? c.K : c.N, w_stride = w_cols + pad;

    // Whole buffers, views inside: values outside the views are garbage the kernel must neither read nor write.
    auto xb = random_values(off + size_t(c.M) * x_stride, seed);
    if (c.huge_x) {
        xb[off + 3] = 1e5f;                                 // in the first row block
        xb[off + size_t(c.M - 1) * x_stride] = -3.5e6f;     // in the last
    }
    auto wb = random_values(off + size_t(w_rows) * w_stride, seed + 1);
    for (float& v : wb) v = round_to_dtype(v, DType::f16);
    const auto bias = random_values(size_t(c.N), seed + 2);
    const auto yb = random_values(off + size_t(c.M) * y_stride, seed + 3);

    // Reference: contiguous copies through cpu::matmul, then the epilogue, written into a copy of yb.
    std::vector<float> x(size_t(c.M) * c.K), w(size_t(w_rows) * w_cols), prod(size_t(c.M) * c.N);
    for (int m = 0; m < c.M; ++m)
        for (int k = 0; k < c.K; ++k) x[size_t(m) * c.K + k] = xb[off + size_t(m) * x_stride + k];
    for (uint32_t r = 0; r < w_rows; ++r)
        for (uint32_t q = 0; q < w_cols; ++q) w[size_t(r) * w_cols + q] = wb[off + size_t(r) * w_stride + q];
    if (c.transposed) {
        cpu::matmul_transposed_b(c.M, c.K, c.N, x.data(), w.data(), prod.data());
    } else {
        cpu::matmul(c.M, c.K, c.N, x.data(), w.data(), nullptr, prod.data());
    }
    std::vector<float> ref = yb;
    for (int m = 0; m < c.M; ++m)
        for (int n = 0; n < c.N; ++n) {
            float v = prod[size_t(m) * c.N + n];
            float& out = ref[off + size_t(m) * y_stride + n];
            if (c.epilogue) {
                v += bias[size_t(n)];
                cpu::gelu(1, &v, &v);
                v += out;
            }
            out = v;
        }

    Tensor tx(ctx, {int64_t(xb.size())}, xb), tw(ctx, {int64_t(wb.size())}, wb, DType::f16);
    Tensor tb(ctx, {c.N}, bias), ty(ctx, {int64_t(yb.size())}, yb);
    ops::MatrixRef mx{&ops::buffer(tx), DType::f32, off, uint32_t(c.M), uint32_t(c.K), x_stride};
    ops::MatrixRef mw{&ops::buffer(tw), DType::f16, off, w_rows, w_cols, w_stride};
    ops::MatrixRef my{&ops::buffer(ty), DType::f32, off, uint32_t(c.M), uint32_t(c.N), y_stride};
    ops::MatmulEpilogue ep;
    if (c.epilogue) {
        ep.bias = &ops::buffer(tb);
        ep.gelu = true;
        ep.accumulate = true;
    }
    const bool profiling = ctx.profiling();
    ctx.set_profiling(true);
    ops::runtime(ctx).run([&](ops::Encoder& enc) { record(enc, mx, mw, c.transposed, my, ep); });
    ctx.set_profiling(profiling);

    Result r;
    for (const auto& t : ctx.last_timings()) r.kernels.push_back(t.name);
    // X enters as fp16 hi + lo (22 of its 24 bits: 2^-22 relative) and the exact products are summed in fp32
    // (tensor cores truncate where fp32 rounds, ≤ 2^-23 per sum): for K products of magnitude <= 1 that is
    // < 1e-6·sqrt(K) typically and < 1e-4 at K = 3072 at worst, so 2e-5·sqrt(K) + 1e-5 holds with a margin.
    // X rounded to plain fp16 would miss by ~3e-4·sqrt(K); a wrong index by O(1).
    r.cmp = compare(ty.download(), ref, 2e-5 * std::sqrt(double(c.K)) + 1e-5, 1e-5);
    return r;
}

std::string kernels_of(const Result& r) {
    std::string s;
    for (const auto& k : r.kernels) s += (s.empty() ? "" : ", ") + k;
    return s.empty() ? "(no timestamps)" : s;
}

bool has_fp16(const Context& ctx) { return ctx.device().fp16_arithmetic && ctx.device().storage_16bit; }

const Case kCases[] = {
    {1, 768, 2304, false, false, false},   // a GPT-2 decode step's QKV projection
    {17, 33, 65, false, true, false},      // nothing a multiple of 16
    {17, 33, 65, true, true, true},
    {65, 130, 63, true, false, false},
    {64, 64, 64, false, false, true},      // exact blocks
    {128, 768, 3072, false, true, false},  // GPT-2's MLP up-projection over a 128-token prompt
    {40, 768, 1000, true, false, false},   // the LM head's layout, a vocabulary not a multiple of the block
    {70, 50, 90, false, true, false, true},  // X beyond fp16 in two row blocks
    {70, 50, 90, true, false, true, true},
};

}  // namespace

TEST_CASE("the cooperative-matrix matmul's indexing, emulated, matches the CPU reference", "[gpu][matmul][coopmat]") {
    Context& ctx = test::gpu();
    if (!has_fp16(ctx)) {
        WARN("no shaderFloat16 / 16-bit storage on " << ctx.device().name << ": the coopmat kernel cannot run there");
        return;
    }
    // The blockings the device code chooses (64 × 64 and 128 × 128 blocks of 16 × 16 × 16 matrices; the
    // latter with BK = LK, to fit lavapipe's 32 KiB of shared memory), and an asymmetric one: 2 × 1 subgroups
    // of 1 × 3 matrices of 16 × 8 × 8, four steps of LK per BK.
    ops::CoopmatConfig small, big, odd;
    big.tm = big.tn = 4;
    big.bk = 16;
    odd.shape = {16, 8, 8};
    odd.tm = 1;
    odd.tn = 3;
    odd.sgn = 1;
    for (auto* cfg : {&small, &big, &odd}) cfg->emulate = true;
    const int which = GENERATE(0, 1, 2);
    const ops::CoopmatConfig& cfg = which == 0 ? small : which == 1 ? big : odd;
    const Case c = GENERATE(from_range(std::begin(kCases), std::end(kCases)));
    if (which == 1 && c.M * c.N > 100000) return;  // the 128 × 128 blocking is slow to emulate; smaller cases cover it
    INFO(describe(c) << "; config " << which << ": block " << cfg.block_m() << " x " << cfg.block_n());
    const auto r = run_case(c, test::seed_of("coopmat emu " + describe(c)),
                            [&](ops::Encoder& enc, const ops::MatrixRef& x, const ops::MatrixRef& w, bool t,
                                const ops::MatrixRef& y, const ops::MatmulEpilogue& ep) {
                                REQUIRE(ops::coopmat_fits(enc.device, x, w, t, y, ep, cfg));
                                ops::record_matmul_coopmat(enc, x, w, t, y, ep, cfg);
                            });
    INFO(r.cmp.describe() << "; kernels " << kernels_of(r));
    CHECK(r.cmp.ok);
    if (!r.kernels.empty()) CHECK(r.kernels == std::vector<std::string>{c.transposed ? "matmul_coopmat_emu_nt_f16"
                                                                                     : "matmul_coopmat_emu_f16"});
}

TEST_CASE("record_matmul runs f16 weights on cooperative matrices where the device has them",
          "[gpu][matmul][coopmat]") {
    Context& ctx = test::gpu();
    const DeviceInfo& d = ctx.device();
    if (!has_fp16(ctx)) {
        WARN("no shaderFloat16 / 16-bit storage on " << d.name << ": f16 weights are refused there");
        return;
    }
    if (!d.timestamps) WARN("no timestamps on " << d.name << ": the kernel labels cannot be checked");
    const bool available = d.matmul_f16_path == "coopmat_nv";
    if (available) {
        CHECK(d.cooperative_matrix);
        CHECK(d.coopmat_shape[0] != 0);
        CHECK(d.coopmat_note.empty());
    } else {
        CHECK(d.coopmat_shape == std::array<uint32_t, 3>{});
        WARN("cooperative-matrix path not available on " << d.name << ": not exercised ("
                                                        << (d.coopmat_note.empty() ? "no cooperative-matrix extension"
                                                                                   : d.coopmat_note)
                                                        << ")");
    }
    auto through_record_matmul = [](ops::Encoder& enc, const ops::MatrixRef& x, const ops::MatrixRef& w, bool t,
                                    const ops::MatrixRef& y, const ops::MatmulEpilogue& ep) {
        ops::record_matmul(enc, x, w, t, y, ep);
    };
    for (const Case& c : kCases) {
        INFO(describe(c));
        const auto r = run_case(c, test::seed_of("coopmat routing " + describe(c)), through_record_matmul);
        INFO(r.cmp.describe() << "; kernels " << kernels_of(r));
        CHECK(r.cmp.ok);
        if (r.kernels.empty()) continue;
        // The label names the kernel that ran: the cooperative-matrix one exactly when the device has it and
        // the product has more rows than a decode step.
        const bool expect_coopmat = available && c.M >= int(ops::kCoopmatMinRows);
        const std::string coopmat = c.transposed ? "matmul_coopmat_nt_f16" : "matmul_coopmat_f16";
        if (expect_coopmat) {
            CHECK(r.kernels == std::vector<std::string>{coopmat});
        } else {
            for (const auto& k : r.kernels) CHECK(k.rfind("matmul_coopmat", 0) == std::string::npos);
        }
    }
}

TEST_CASE("the cooperative-matrix matmul on the device's tensor cores matches the CPU reference",
          "[gpu][matmul][coopmat]") {
    Context& ctx = test::gpu();
    const DeviceInfo& d = ctx.device();
    if (d.matmul_f16_path != "coopmat_nv") {
        WARN("cooperative-matrix path not available on " << d.name << ": not exercised");
        return;
    }
    // Both blockings on every case, whatever coopmat_config would pick for the shape.
    const bool big = GENERATE(false, true);
    ops::CoopmatConfig cfg = ops::coopmat_config(d, 1, 1);
    cfg.tm = cfg.tn = big ? 4 : 2;
    const Case c = GENERATE(from_range(std::begin(kCases), std::end(kCases)));
    INFO(describe(c) << "; block " << cfg.block_m() << " x " << cfg.block_n() << " of " << cfg.shape[0] << "x"
                     << cfg.shape[1] << "x" << cfg.shape[2] << ", subgroup " << cfg.subgroup);
    const auto r = run_case(c, test::seed_of("coopmat hw " + describe(c)),
                            [&](ops::Encoder& enc, const ops::MatrixRef& x, const ops::MatrixRef& w, bool t,
                                const ops::MatrixRef& y, const ops::MatmulEpilogue& ep) {
                                REQUIRE(ops::coopmat_fits(enc.device, x, w, t, y, ep, cfg));
                                ops::record_matmul_coopmat(enc, x, w, t, y, ep, cfg);
                            });
    INFO(r.cmp.describe() << "; kernels " << kernels_of(r));
    CHECK(r.cmp.ok);
}

TEST_CASE("f32 weights never take the cooperative-matrix matmul", "[gpu][matmul][coopmat]") {
    Context& ctx = test::gpu();
    Tensor x(ctx, {64, 64}, random_values(64 * 64, 11)), w(ctx, {64, 64}, random_values(64 * 64, 12));
    Tensor y(ctx, {64, 64});
    const auto mx = ops::matrix(ops::buffer(x), DType::f32, 64, 64);
    const auto mw = ops::matrix(ops::buffer(w), DType::f32, 64, 64);
    const auto my = ops::matrix(ops::buffer(y), DType::f32, 64, 64);
    {
        const ops::CoopmatTestScope hooks;  // even where the device is taken to have cooperative matrices
        ops::runtime(ctx).run([&](ops::Encoder& enc) { CHECK_FALSE(ops::coopmat_choice(enc, mx, mw, false, my, {})); });
    }
    ops::CoopmatConfig cfg;
    cfg.emulate = true;
    CHECK_FALSE(ops::coopmat_fits(ops::runtime(ctx).device(), mx, mw, false, my, {}, cfg));
}

TEST_CASE("the cooperative-matrix matmul checks itself on first use and gives way when it disagrees",
          "[gpu][matmul][coopmat][self_check]") {
    // With the test hook record_matmul treats this device as having cooperative matrices and runs the emulated
    // kernel after its self-check; each section has its own Context, so the check runs afresh on its device.
    const ops::CoopmatTestScope hooks;
    Context ctx;
    if (!has_fp16(ctx)) {
        WARN("no shaderFloat16 / 16-bit storage on " << ctx.device().name << ": the coopmat kernel cannot run there");
        return;
    }
    const int M = 20, K = 40, N = 36;
    auto wv = random_values(size_t(K) * N, 22);
    for (float& v : wv) v = round_to_dtype(v, DType::f16);
    const auto xv = random_values(size_t(M) * K, 21);
    Tensor x(ctx, {M, K}, xv), w(ctx, {K, N}, wv, DType::f16), y(ctx, {M, N});
    std::vector<float> ref(size_t(M) * N);
    cpu::matmul(M, K, N, xv.data(), wv.data(), nullptr, ref.data());
    const auto mx = ops::matrix(ops::buffer(x), DType::f32, M, K);
    const auto mw = ops::matrix(ops::buffer(w), DType::f16, K, N);
    const auto my = ops::matrix(ops::buffer(y), DType::f32, M, N);
    auto& verdicts = ops::runtime(ctx).device().self_checks();
    const auto run = [&] {
        ops::runtime(ctx).run([&](ops::Encoder& enc) { ops::record_matmul(enc, mx, mw, false, my); });
        return y.download();
    };
    const auto key_of = [&](const std::string& kernel) {
        for (const auto& [key, ok] : verdicts) {
            if (key.rfind(kernel + " ", 0) == 0) return key;
        }
        return std::string();
    };

    SECTION("the kernel agrees: record_matmul runs it, no warning") {
        const auto cmp = compare(run(), ref, 2e-5 * std::sqrt(double(K)) + 1e-5, 1e-5);
        INFO(cmp.describe());
        CHECK(cmp.ok);
        const std::string key = key_of("matmul_coopmat_emu_f16");
        REQUIRE_FALSE(key.empty());
        CHECK(verdicts.at(key));
        CHECK(ctx.warnings().empty());
    }
    SECTION("a forced mismatch: the shader kernels run, one warning names the kernel and the error") {
        ops::corrupt_self_checks_for_testing(true);
        for (int i = 0; i < 2; ++i) {  // the verdict is kept: one check, one warning
            const auto cmp = compare(run(), ref, 1e-4, 1e-4);
            INFO(cmp.describe());
            CHECK(cmp.ok);
        }
        const std::string key = key_of("matmul_coopmat_emu_f16");
        REQUIRE_FALSE(key.empty());
        CHECK_FALSE(verdicts.at(key));
        const auto warnings = ctx.warnings();
        REQUIRE(warnings.size() == 1);
        VKATTN_REQUIRE_CONTAINS(warnings[0], key + " failed its self-check against the CPU reference: element 0 is ");
        VKATTN_REQUIRE_CONTAINS(warnings[0], "; using the scalar kernels on this device");
    }
}
