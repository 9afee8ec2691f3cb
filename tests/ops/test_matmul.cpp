// matmul against the CPU reference: every kernel (tiled, simd, matvec) forced in turn, f32, f16 and bf16 weights,
// [K, N] and transposed [N, K] weights, odd shapes, strides and offsets, every epilogue, and the W splits.
#include "ops/runtime.hpp"
#include "catch.hpp"
#include "cpu/gelu.hpp"
#include "cpu/half.hpp"
#include "cpu/matmul.hpp"
#include "ops/matmul.hpp"
#include "ops/matmul_coopmat.hpp"
#include "support.hpp"

#include <vkattn/matmul.hpp>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;

namespace {

// A kernel forced through MatmulOverride, with the device's tuning or, for matvec, a GPU's: many K slices
// and their shared-memory reduction, which the CPU tuning (one slice) never runs.
struct Variant {
    const char* name;
    ops::MatmulKernel kernel;
    bool gpu_tuning = false;
    bool loads32 = false;  // simd: the 32-bit weight loads of devices without shaderInt64
};

ops::MatmulOverride override_for(const Variant& v) {
    ops::MatmulOverride o;
    o.kernel = v.kernel;
    if (v.gpu_tuning) {
        ops::Tuning t = ops::tuning_for(test::gpu().device());
        t.mv_wg = 256;
        t.mv_split = 64;
        t.mv_wg_t = 64;
        t.mv_split_t = 4;
        o.tuning = t;
    }
    if (v.loads32) {
        ops::Tuning t = ops::tuning_for(test::gpu().device());
        t.simd_w64 = false;
        o.tuning = t;
    }
    return o;
}

const Variant kVariants[] = {{"tiled", ops::MatmulKernel::tiled},
                             {"simd", ops::MatmulKernel::simd},
                             {"simd, 32-bit loads", ops::MatmulKernel::simd, false, true},
                             {"matvec", ops::MatmulKernel::matvec},
                             {"matvec, GPU tuning", ops::MatmulKernel::matvec, true}};

// One matmul problem laid out awkwardly: X and Y rows padded apart and offset inside their buffers, W offset.
struct Problem {
    int M, K, N;
    bool bias = false, gelu = false, accumulate = false;
    int x_pad = 0, y_pad = 0;        // extra elements between rows
    int x_offset = 0, w_offset = 0;  // elements before the first row
};

std::string describe(const Problem& p, DType wt, bool transposed) {
    return "M " + std::to_string(p.M) + " K " + std::to_string(p.K) + " N " + std::to_string(p.N) +
           " " + std::string(dtype_name(wt)) + (transposed ? " W [N, K]" : " W [K, N]") + (p.bias ? " +bias" : "") +
           (p.gelu ? " gelu" : "") + (p.accumulate ? " +=Y" : "") + " x_pad " + std::to_string(p.x_pad) +
           " y_pad " + std::to_string(p.y_pad) + " x_off " + std::to_string(p.x_offset) + " w_off " +
           std::to_string(p.w_offset);
}

constexpr float kGuard = 777.0f;  // Y's padding: a kernel that writes outside [M, N] changes it

// Runs the problem on the GPU with `override_` and checks Y against cpu::matmul / cpu::matmul_transposed_b.
void check(const Problem& p, DType wt, bool transposed, const ops::MatmulOverride& override_) {
    Context& ctx = test::gpu();
    const uint64_t seed = test::seed_of("matmul " + describe(p, wt, transposed));
    const int xs = p.K + p.x_pad, ys = p.N + p.y_pad;

    // Host data. W is rounded to its storage type first, so the reference multiplies the same numbers.
    const auto x_buf = random_values(size_t(p.x_offset) + size_t(p.M) * xs, seed);  // padding holds junk too
    auto w = random_values(size_t(p.K) * p.N, seed + 1);  // [K, N] or [N, K]
    for (float& v : w) v = round_to_dtype(v, wt);
    std::vector<float> w_buf(size_t(p.w_offset), 9.0f);
    w_buf.insert(w_buf.end(), w.begin(), w.end());
    const auto b = random_values(size_t(p.N), seed + 2);
    const auto y0 = random_values(size_t(p.M) * p.N, seed + 3);
    // NaN where Y is overwritten, so an output never stored stays NaN.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y_buf(size_t(p.M) * ys, kGuard);
    for (int m = 0; m < p.M; ++m)
        for (int n = 0; n < p.N; ++n) y_buf[size_t(m) * ys + n] = p.accumulate ? y0[size_t(m) * p.N + n] : nan;

    // Reference: [M, N] = x · w (double accumulation), then the epilogue in the same order as the kernels.
    std::vector<float> x(size_t(p.M) * p.K);
    for (int m = 0; m < p.M; ++m)
        for (int k = 0; k < p.K; ++k) x[size_t(m) * p.K + k] = x_buf[size_t(p.x_offset) + size_t(m) * xs + k];
    std::vector<float> ref(size_t(p.M) * p.N);
    if (transposed) {
        cpu::matmul_transposed_b(p.M, p.K, p.N, x.data(), w.data(), ref.data());
    } else {
        cpu::matmul(p.M, p.K, p.N, x.data(), w.data(), nullptr, ref.data());
    }
    for (size_t i = 0; i < ref.size(); ++i) {
        float v = ref[i] + (p.bias ? b[i % size_t(p.N)] : 0.0f);
        if (p.gelu) cpu::gelu(1, &v, &v);
        ref[i] = v + (p.accumulate ? y0[i] : 0.0f);
    }

    Tensor tx(ctx, {int64_t(x_buf.size())}, x_buf), tw(ctx, {int64_t(w_buf.size())}, w_buf, wt);
    Tensor tb(ctx, {p.N}, b), ty(ctx, {int64_t(y_buf.size())}, y_buf);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        const ops::MatrixRef xm{&ops::buffer(tx), DType::f32, uint64_t(p.x_offset), uint32_t(p.M), uint32_t(p.K),
                                uint32_t(xs)};
        const ops::MatrixRef wm = transposed ? ops::matrix(ops::buffer(tw), wt, p.N, p.K, p.w_offset)
                                             : ops::matrix(ops::buffer(tw), wt, p.K, p.N, p.w_offset);
        const ops::MatrixRef ym{&ops::buffer(ty), DType::f32, 0, uint32_t(p.M), uint32_t(p.N), uint32_t(ys)};
        ops::MatmulEpilogue ep;
        if (p.bias) ep.bias = &ops::buffer(tb);
        ep.gelu = p.gelu;
        ep.accumulate = p.accumulate;
        ops::record_matmul(enc, xm, wm, transposed, ym, ep, override_);
    });

    const auto y_out = ty.download();
    std::vector<float> got(size_t(p.M) * p.N);
    size_t guard_changed = 0;
    for (int m = 0; m < p.M; ++m) {
        for (int n = 0; n < p.N; ++n) got[size_t(m) * p.N + n] = y_out[size_t(m) * ys + n];
        for (int n = p.N; n < ys; ++n) guard_changed += y_out[size_t(m) * ys + n] != kGuard;
    }
    CHECK(guard_changed == 0);
    // fp32 accumulation of K products of magnitude <= 1 (in any order) against a double reference grows like
    // sqrt(K)·2^-24 relative to the terms; the fp32 tanh of GELU and the add of Y stay within the rtol.
    const auto cmp = compare(got, ref, 1e-5 * std::sqrt(double(p.K)) + 1e-6, 1e-5);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

}  // namespace

TEST_CASE("every matmul kernel matches the CPU reference", "[gpu][matmul]") {
    const Variant variant = GENERATE(from_range(std::begin(kVariants), std::end(kVariants)));
    const DType wt = GENERATE(DType::f32, DType::f16, DType::bf16);
    const bool transposed = GENERATE(false, true);
    // Multiples of 4 everywhere take the vec4 loads of simd and matvec; the odd ones their element-wise path.
    const Problem p = GENERATE(Problem{1, 33, 65, false, false, false, 0, 1},
                               Problem{1, 768, 3072, true, false, false, 0, 0, 0, 4},
                               Problem{2, 64, 100, true, true, false, 0, 0, 4, 8},
                               Problem{3, 130, 63, true, false, true, 3, 2, 1, 2},
                               Problem{17, 68, 36, false, true, true, 4, 4, 8, 0},
                               Problem{65, 96, 129, true, true, false, 0, 0, 0, 1},
                               Problem{128, 72, 96, true, false, true, 0, 5, 4, 4},
                               Problem{17, 768, 2304, true, false, false});  // GPT-2's fused QKV, 17 tokens
    INFO(variant.name << ": " << describe(p, wt, transposed));
    check(p, wt, transposed, override_for(variant));
}

TEST_CASE("matmul splits a weight larger than one binding", "[gpu][matmul]") {
    // A 4 KiB binding limit cuts W into ~10-row pieces: [K, N] into K slices accumulating in Y (bias with the
    // last), [N, K] into column blocks of Y.
    const Variant variant = GENERATE(from_range(std::begin(kVariants), std::end(kVariants)));
    const DType wt = GENERATE(DType::f32, DType::f16, DType::bf16);
    const bool transposed = GENERATE(false, true);
    Problem p{5, 300, 72, true, false, true};
    if (transposed) p = {5, 72, 300, true, true, true, 0, 3};
    INFO(variant.name << ": " << describe(p, wt, transposed));
    ops::MatmulOverride o = override_for(variant);
    o.max_binding_bytes = 4096;
    check(p, wt, transposed, o);
}

TEST_CASE("matmul refuses GELU after a K-split", "[gpu][matmul][errors]") {
    ops::MatmulOverride o;
    o.max_binding_bytes = 4096;
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { check({5, 300, 72, true, true, false}, DType::f32, false, o); }),
                            "GELU epilogue cannot follow a matmul split along K");
}

TEST_CASE("matmul picks the decode kernel for a few rows", "[gpu][matmul]") {
    Context& ctx = test::gpu();
    const int K = 64, N = 96;
    const int M = GENERATE(1, 4, 5);
    Tensor x(ctx, {M, K}, random_values(size_t(M) * K, 1)), w(ctx, {K, N}, random_values(size_t(K) * N, 2));
    Tensor y(ctx, {M, N});
    const bool was = ctx.profiling();
    ctx.set_profiling(true);
    matmul(ctx, x, w, y);
    ctx.set_profiling(was);
    REQUIRE(ctx.last_timings().size() == 1);
    const std::string name = ctx.last_timings()[0].name;
    INFO("M " << M << " ran " << name);
    const ops::Tuning t = ops::tuning_for(ctx.device());
    const ops::MatmulKernel want = uint32_t(M) <= t.mv_rows ? t.decode_kernel : t.gemm_kernel;
    const char* prefix = want == ops::MatmulKernel::matvec ? "matmul_vec_"
                         : want == ops::MatmulKernel::simd ? (t.simd_w64 ? "matmul_simd64_" : "matmul_simd_")
                                                           : "matmul_f32";
    CHECK(name.rfind(prefix, 0) == 0);
}

TEST_CASE("the LM head splits over N when wte exceeds a binding", "[gpu][matmul]") {
    // [1, 768] · [50257, 768]ᵀ in f32: 154 MB of weights, more than lavapipe's 128 MiB binding range.
    Context& ctx = test::gpu();
    const int K = 768, N = 50257;
    const uint64_t w_bytes = uint64_t(N) * K * 4;
    if (w_bytes <= ctx.device().max_storage_buffer_range || w_bytes > ctx.device().max_memory_allocation) {
        SUCCEED("this device binds wte whole, or cannot allocate it: nothing to split");
        return;
    }
    const auto x = random_values(size_t(K), 11), w = random_values(size_t(N) * K, 12);
    std::vector<float> ref(static_cast<size_t>(N));
    cpu::matmul_transposed_b(1, K, N, x.data(), w.data(), ref.data());
    Tensor tx(ctx, {1, K}, x), tw(ctx, {N, K}, w), ty(ctx, {1, N});
    const bool was = ctx.profiling();
    ctx.set_profiling(true);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_matmul(enc, ops::matrix(ops::buffer(tx), DType::f32, 1, K),
                           ops::matrix(ops::buffer(tw), DType::f32, N, K), true,
                           ops::matrix(ops::buffer(ty), DType::f32, 1, N));
    });
    ctx.set_profiling(was);
    CHECK(ctx.last_timings().size() >= 2);
    const auto cmp = compare(ty.download(), ref, 1e-5 * std::sqrt(double(K)) + 1e-6, 1e-5);  // as above
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("matmul matches the CPU reference through the public API", "[gpu][matmul]") {
    struct Shape { int M, K, N; };
    const Shape s = GENERATE(Shape{1, 1, 1}, Shape{1, 768, 2304}, Shape{17, 33, 65}, Shape{64, 64, 64},
                             Shape{65, 130, 63}, Shape{128, 768, 768});
    const DType wt = GENERATE(DType::f32, DType::f16, DType::bf16);
    const bool nt = GENERATE(false, true);  // matmul_nt: w [N, K]
    INFO("M " << s.M << " K " << s.K << " N " << s.N << " " << dtype_name(wt) << " weights" << (nt ? ", [N, K]" : ""));
    Context& ctx = test::gpu();
    const auto x = random_values(size_t(s.M) * s.K, 1);
    auto w = random_values(size_t(s.K) * s.N, 2);  // [K, N], or [N, K] for matmul_nt
    for (float& v : w) v = round_to_dtype(v, wt);
    const auto b = random_values(size_t(s.N), 3);
    std::vector<float> ref(size_t(s.M) * s.N);
    if (nt) {
        cpu::matmul_transposed_b(s.M, s.K, s.N, x.data(), w.data(), ref.data());
        for (size_t i = 0; i < ref.size(); ++i) ref[i] += b[i % size_t(s.N)];
    } else {
        cpu::matmul(s.M, s.K, s.N, x.data(), w.data(), b.data(), ref.data());
    }

    Tensor tx(ctx, {s.M, s.K}, x), tb(ctx, {s.N}, b), ty(ctx, {s.M, s.N});
    Tensor tw(ctx, nt ? std::vector<int64_t>{s.N, s.K} : std::vector<int64_t>{s.K, s.N}, w, wt);
    const bool was = ctx.profiling();
    ctx.set_profiling(true);
    if (nt) {
        matmul_nt(ctx, tx, tw, ty, &tb);
    } else {
        matmul(ctx, tx, tw, ty, &tb);
    }
    ctx.set_profiling(was);
    const bool fp16_products = ctx.last_timings().at(0).name.find("coopmat") != std::string::npos;
    INFO("kernel " << ctx.last_timings().at(0).name);
    // fp32 accumulation of K products of magnitude <= 1 against a double reference: ~sqrt(K)·2^-24 relative
    // growth. Tensor cores (the coopmat kernel, f16 weights on some GPUs) also round X to fp16: each product
    // off by up to 2^-11, ~sqrt(K)·2^-12 in the sum.
    const double atol = (fp16_products ? 1e-3 : 1e-5) * std::sqrt(double(s.K)) + 1e-6;
    const auto cmp = compare(ty.download(), ref, atol, fp16_products ? 1e-3 : 1e-5);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("matmul epilogues and the transposed form", "[gpu][matmul]") {
    Context& ctx = test::gpu();
    auto& impl = ops::runtime(ctx);
    const int M = 9, K = 40, N = 70;
    const auto x = random_values(size_t(M) * K, 4), w = random_values(size_t(N) * K, 5);
    const auto b = random_values(size_t(N), 6), y0 = random_values(size_t(M) * N, 7);
    Tensor tx(ctx, {M, K}, x), tw(ctx, {N, K}, w), tb(ctx, {N}, b), ty(ctx, {M, N}, y0);

    // y = y0 + gelu(x · wᵀ + b): the MLP's shape of fusion, with W stored as [N, K] like the LM head.
    impl.run([&](ops::Encoder& enc) {
        ops::MatmulEpilogue ep;
        ep.bias = &ops::buffer(tb);
        ep.gelu = true;
        ep.accumulate = true;
        ops::record_matmul(enc, ops::matrix(ops::buffer(tx), DType::f32, M, K),
                           ops::matrix(ops::buffer(tw), DType::f32, N, K), true,
                           ops::matrix(ops::buffer(ty), DType::f32, M, N), ep);
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

TEST_CASE("bf16 weights are widened exactly, at every element position of a word", "[gpu][matmul]") {
    // Y = I · W with X the identity: each output is one weight times 1 plus zeros, so Y must equal the bf16
    // values bit for bit. An odd W offset puts the pair boundaries of the 32-bit words the other way round.
    const Variant variant = GENERATE(from_range(std::begin(kVariants), std::end(kVariants)));
    const bool transposed = GENERATE(false, true);
    const uint32_t w_offset = GENERATE(0u, 1u, 4u);
    const uint32_t K = 12, N = 20;
    INFO(variant.name << (transposed ? " W [N, K]" : " W [K, N]") << " w_offset " << w_offset);
    Context& ctx = test::gpu();
    std::vector<float> w = random_values(size_t(K) * N, 41, -4.0f, 4.0f);
    // Values beyond f16's range both ways, the smallest normal floats, negative zero, exact small numbers.
    // (No subnormals: whether a device flushes them is its own choice.)
    const float special[] = {1e30f, -3e38f, 1e-30f, 1.5e-38f, -0.0f, 3.0f, -1.0f / 128, 65504.0f * 4};
    for (size_t i = 0; i < std::size(special); ++i) w[i * 7] = special[i];
    std::vector<uint16_t> bits(w_offset, 0x7fc0u);  // NaN before W: read by mistake, it would show
    for (float v : w) bits.push_back(cpu::float_to_bf16(v));
    if (bits.size() % 2) bits.push_back(0x7fc0u);
    std::vector<float> eye(size_t(K) * K, 0.0f);
    for (uint32_t k = 0; k < K; ++k) eye[size_t(k) * K + k] = 1.0f;

    Tensor tx(ctx, {K, K}, eye), ty(ctx, {K, N});
    vk::Buffer wbuf(ops::runtime(ctx).device(), bits.size() * 2);
    ops::runtime(ctx).device().upload(wbuf, 0, bits.data(), bits.size() * 2);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        const ops::MatrixRef wm = transposed ? ops::matrix(wbuf, DType::bf16, N, K, w_offset)
                                             : ops::matrix(wbuf, DType::bf16, K, N, w_offset);
        ops::record_matmul(enc, ops::matrix(ops::buffer(tx), DType::f32, K, K), wm, transposed,
                           ops::matrix(ops::buffer(ty), DType::f32, K, N), {}, override_for(variant));
    });
    const auto y = ty.download();  // [K, N]: y[k, n] = W[k, n], or W[n, k] when transposed
    size_t mismatches = 0;
    for (uint32_t k = 0; k < K; ++k)
        for (uint32_t n = 0; n < N; ++n) {
            const float want = cpu::bf16_to_float(bits[w_offset + (transposed ? n * K + k : k * N + n)]);
            const float got = y[size_t(k) * N + n];
            if (std::memcmp(&want, &got, 4) != 0 && !(want == 0.0f && got == 0.0f)) {
                if (mismatches++ < 5) UNSCOPED_INFO("y[" << k << ", " << n << "] = " << got << ", want " << want);
            }
        }
    CHECK(mismatches == 0);
}

TEST_CASE("the cooperative-matrix matmul refuses bf16 weights by name", "[gpu][matmul][errors]") {
    Context& ctx = test::gpu();
    Tensor x(ctx, {16, 16}, random_values(256, 1)), y(ctx, {16, 16});
    vk::Buffer w(ops::runtime(ctx).device(), 16 * 16 * 2);
    const std::string message = test::error_message([&] {
        ops::runtime(ctx).run([&](ops::Encoder& enc) {
            ops::record_matmul_coopmat(enc, ops::matrix(ops::buffer(x), DType::f32, 16, 16),
                                       ops::matrix(w, DType::bf16, 16, 16), false,
                                       ops::matrix(ops::buffer(y), DType::f32, 16, 16), {}, ops::CoopmatConfig{});
        });
    });
    VKATTN_REQUIRE_CONTAINS(message, "takes f16 weights, not bf16");
}

TEST_CASE("matmul and matmul_nt name the shape they expected", "[gpu][matmul][errors]") {
    Context& ctx = test::gpu();
    Tensor x(ctx, {2, 3}), w_kn(ctx, {3, 5}), w_nk(ctx, {5, 3}), y(ctx, {2, 5}), y_bad(ctx, {2, 4});
    matmul(ctx, x, w_kn, y);  // the shapes each form accepts
    matmul_nt(ctx, x, w_nk, y);
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { matmul_nt(ctx, x, w_kn, y); }),
                            "matmul_nt: x is [2, 3] so w must have 3 columns, got [3, 5]");
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { matmul(ctx, x, w_nk, y); }),
                            "matmul: x is [2, 3] so w must have 3 rows, got [5, 3]");
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { matmul_nt(ctx, x, w_nk, y_bad); }),
                            "matmul_nt: y must be [2, 5], got [2, 4]");
}
// llvmpipe ends an invocation's loops after 65,535 iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS),
// silently, and matmul_simd's invocations loop about K times ([K, N]) or K / 4 ([N, K]): a long K is cut into
// slices that accumulate in Y. Before that, these gave wrong sums on lavapipe with no error.
TEST_CASE("matmul sums a K longer than llvmpipe's loop budget", "[gpu][matmul]") {
    const bool transposed = GENERATE(false, true);
    const int K = transposed ? GENERATE(140000, 300001) : GENERATE(70000, 140001);
    check(Problem{1, K, 8, true, false, true}, DType::f32, transposed, ops::MatmulOverride{});
    check(Problem{3, K, 40, true, false, false, 0, 2, 0, 4}, DType::bf16, transposed, ops::MatmulOverride{});
}

TEST_CASE("matmul refuses a GELU epilogue over a K it must split", "[gpu][matmul][errors]") {
    ops::MatmulOverride o;
    ops::Tuning t = ops::tuning_for(test::gpu().device());
    t.loop_budget = 16;
    o.tuning = t;
    const bool transposed = GENERATE(false, true);
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { check({2, 100, 8, true, true, false}, DType::f32, transposed, o); }),
                            "GELU epilogue cannot follow a matmul split along K");
}
