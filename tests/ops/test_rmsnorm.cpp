// rmsnorm against cpu::rmsnorm: rows from one to SmolLM2's 576 and Llama 3.2's 2048 channels, padded and
// offset rows, in place.
#include "api/context_impl.hpp"
#include "catch.hpp"
#include "cpu/rmsnorm.hpp"
#include "ops/llama_ops.hpp"
#include "support.hpp"

#include <string>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;

namespace {

constexpr float kGuard = 777.0f;  // padding between rows: a kernel that writes outside [T, C] changes it

void check_rmsnorm(uint32_t T, uint32_t C, uint32_t pad, uint32_t offset, bool in_place) {
    Context& ctx = test::gpu();
    const std::string name = "rmsnorm T " + std::to_string(T) + " C " + std::to_string(C) + " pad " +
                             std::to_string(pad) + " off " + std::to_string(offset) + (in_place ? " in place" : "");
    INFO(name);
    const uint64_t seed = test::seed_of(name);
    const uint32_t stride = C + pad;
    // Rows of different scales: the normalisation must not care.
    std::vector<float> buf(offset + size_t(T) * stride, kGuard);
    std::vector<float> x(size_t(T) * C);
    const auto values = random_values(x.size(), seed, -3.0f, 3.0f);
    for (uint32_t t = 0; t < T; ++t)
        for (uint32_t c = 0; c < C; ++c) {
            const float scale = t % 3 == 0 ? 1.0f : t % 3 == 1 ? 1e-2f : 50.0f;
            x[size_t(t) * C + c] = values[size_t(t) * C + c] * scale;
            buf[offset + size_t(t) * stride + c] = x[size_t(t) * C + c];
        }
    const auto w = random_values(C, seed + 1, 0.5f, 1.5f);
    const float eps = 1e-5f;
    std::vector<float> ref(x.size());
    cpu::rmsnorm(int(T), int(C), x.data(), w.data(), eps, ref.data());

    Tensor tx(ctx, {int64_t(buf.size())}, buf), tw(ctx, {int64_t(C)}, w);
    Tensor ty(ctx, {int64_t(buf.size())}, std::vector<float>(buf.size(), kGuard));
    ctx.impl().run([&](ops::Encoder& enc) {
        const ops::RowsRef xr{&tx.impl().buffer, offset, stride};
        const ops::RowsRef yr{in_place ? &tx.impl().buffer : &ty.impl().buffer, offset, stride};
        ops::record_rmsnorm(enc, T, C, xr, tw.impl().buffer, yr, eps);
    });
    const auto out = (in_place ? tx : ty).download();
    std::vector<float> got(x.size());
    size_t guard_changed = 0;
    for (size_t i = 0; i < offset; ++i) guard_changed += out[i] != kGuard;
    for (uint32_t t = 0; t < T; ++t) {
        for (uint32_t c = 0; c < C; ++c) got[size_t(t) * C + c] = out[offset + size_t(t) * stride + c];
        for (uint32_t c = C; c < stride; ++c) guard_changed += out[offset + size_t(t) * stride + c] != kGuard;
    }
    CHECK(guard_changed == 0);
    // The fp32 sum of C squares (strided partial sums, then a subgroup tree) against a double one is off by a
    // few C/WG · 2^−24 relative, inversesqrt by 2 ulp: far below 1e−5 relative for C up to 2048.
    const auto cmp = compare(got, ref, 1e-6, 1e-5);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

}  // namespace

TEST_CASE("rmsnorm matches the CPU reference", "[gpu][rmsnorm]") {
    const uint32_t T = GENERATE(1u, 7u, 64u);
    const uint32_t C = GENERATE(1u, 8u, 17u, 64u, 65u, 576u, 2048u);
    check_rmsnorm(T, C, 0, 0, false);
}

TEST_CASE("rmsnorm on padded, offset rows and in place", "[gpu][rmsnorm]") {
    const bool in_place = GENERATE(false, true);
    check_rmsnorm(7, 96, 5, 3, in_place);
    check_rmsnorm(65, 1023, 1, 0, in_place);
}
