// swiglu against cpu::swiglu: gate and up as the halves of one [T, 2F] matmul output, as separate buffers,
// written in place over the gate half; and the tails of silu, which must give no NaN.
#include "api/context_impl.hpp"
#include "catch.hpp"
#include "cpu/swiglu.hpp"
#include "ops/llama_ops.hpp"
#include "support.hpp"

#include <cmath>
#include <string>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;
#ifdef VKATTN_CATCH3
using Catch::Approx;
#endif

namespace {

enum class Layout { fused, separate, in_place };

// The GPU result for gate and up [T, F] (row-major), laid out as `layout` asks.
std::vector<float> run_swiglu(uint32_t T, uint32_t F, const std::vector<float>& gate, const std::vector<float>& up,
                              Layout layout) {
    Context& ctx = test::gpu();
    if (layout == Layout::separate) {
        Tensor tg(ctx, {int64_t(gate.size())}, gate), tu(ctx, {int64_t(up.size())}, up);
        Tensor ty(ctx, {int64_t(gate.size())}, std::vector<float>(gate.size(), NAN));
        ctx.impl().run([&](ops::Encoder& enc) {
            ops::record_swiglu(enc, T, F, {&tg.impl().buffer, 0, F}, {&tu.impl().buffer, 0, F},
                               {&ty.impl().buffer, 0, F});
        });
        return ty.download();
    }
    // [T, 2F] rows: gate | up, as one matmul against the concatenated weights writes them.
    std::vector<float> gu(size_t(T) * 2 * F);
    for (uint32_t t = 0; t < T; ++t)
        for (uint32_t f = 0; f < F; ++f) {
            gu[size_t(t) * 2 * F + f] = gate[size_t(t) * F + f];
            gu[size_t(t) * 2 * F + F + f] = up[size_t(t) * F + f];
        }
    Tensor tgu(ctx, {int64_t(gu.size())}, gu);
    Tensor ty(ctx, {int64_t(gate.size())}, std::vector<float>(gate.size(), NAN));
    ctx.impl().run([&](ops::Encoder& enc) {
        const ops::RowsRef g{&tgu.impl().buffer, 0, 2 * F}, u{&tgu.impl().buffer, F, 2 * F};
        const ops::RowsRef y = layout == Layout::in_place ? g : ops::RowsRef{&ty.impl().buffer, 0, F};
        ops::record_swiglu(enc, T, F, g, u, y);
    });
    if (layout == Layout::fused) return ty.download();
    const auto out = tgu.download();
    std::vector<float> y(gate.size());
    size_t up_changed = 0;  // the up half must be untouched
    for (uint32_t t = 0; t < T; ++t)
        for (uint32_t f = 0; f < F; ++f) {
            y[size_t(t) * F + f] = out[size_t(t) * 2 * F + f];
            up_changed += out[size_t(t) * 2 * F + F + f] != up[size_t(t) * F + f];
        }
    CHECK(up_changed == 0);
    return y;
}

}  // namespace

TEST_CASE("swiglu matches the CPU reference", "[gpu][swiglu]") {
    const uint32_t T = GENERATE(1u, 7u, 64u);
    const uint32_t F = GENERATE(1u, 17u, 64u, 1536u);
    const Layout layout = GENERATE(Layout::fused, Layout::separate, Layout::in_place);
    const std::string name = "swiglu T " + std::to_string(T) + " F " + std::to_string(F) + " layout " +
                             std::to_string(int(layout));
    INFO(name);
    const uint64_t seed = test::seed_of(name);
    const auto gate = random_values(size_t(T) * F, seed, -8.0f, 8.0f);
    const auto up = random_values(size_t(T) * F, seed + 1, -2.0f, 2.0f);
    std::vector<float> ref(gate.size());
    cpu::swiglu(long(ref.size()), gate.data(), up.data(), ref.data());
    const auto got = run_swiglu(T, F, gate, up, layout);
    // Vulkan allows exp (3 + 2|x|) ulp and division 2.5 ulp: for |gate| <= 8 under 2e−6 relative; 1e−5 leaves
    // room for the product, and the absolute term covers silu's values near zero.
    const auto cmp = compare(got, ref, 1e-6, 1e-5);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("swiglu gives the limits of silu in the tails, never NaN", "[gpu][swiglu]") {
    const std::vector<float> gate = {-1000.0f, -100.0f, -88.0f, 0.0f, 88.0f, 100.0f, 1000.0f, -1e30f, 1e30f};
    const std::vector<float> up(gate.size(), 2.0f);
    const auto got = run_swiglu(1, uint32_t(gate.size()), gate, up, Layout::separate);
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("gate " << gate[i] << " got " << got[i]);
        CHECK(!std::isnan(got[i]));
        if (gate[i] <= -88.0f) CHECK(std::abs(got[i]) < 1e-30f);
        if (gate[i] >= 88.0f) CHECK(got[i] == Approx(2.0 * gate[i]).epsilon(1e-6));
    }
    CHECK(got[3] == 0.0f);
}
