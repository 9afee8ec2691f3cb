// The fused attention kernels (flash_rows, flash_tiled, flash_split + flash_merge), each forced in turn, against
// the CPU reference, over the shapes of test_attention.cpp; then the public API's choice, strided and unaligned
// views, and work split across dispatches to fit the binding limit.
#include "catch.hpp"
#include "ops/runtime.hpp"
#include "cpu/attention.hpp"
#include "cpu/half.hpp"
#include "ops/attention.hpp"
#include "ops/flash_partial.hpp"
#include "ops/tuning.hpp"
#include "vulkan/device.hpp"
#include "attention_cases.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/tensor.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::gpu;
using vkattn::test::random_values;
using namespace vkattn::test;

namespace {

const char* variant_name(ops::FlashVariant v) {
    switch (v) {
        case ops::FlashVariant::rows: return "rows";
        case ops::FlashVariant::tiled: return "tiled";
        case ops::FlashVariant::split: return "split";
        default: return "automatic";
    }
}

// A case's inputs on the device: Q, K, V contiguous, and the masks.
struct DeviceInputs {
    Tensor q, k, v;
    std::optional<Tensor> additive, padding;
    ops::MaskArgs mask;
    ops::AttentionDims dims;
    std::array<int64_t, 4> q_shape, kv_shape;

    DeviceInputs(Context& ctx, const Case& c, const Inputs& in)
        : q(ctx, {c.B, c.H, c.Lq, c.D}, in.q, c.dtype), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k, c.dtype),
          v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v, c.dtype),
          dims{uint32_t(c.B), uint32_t(c.H), uint32_t(c.Hkv), uint32_t(c.Lq), uint32_t(c.Lk), uint32_t(c.D)},
          q_shape{c.B, c.H, c.Lq, c.D}, kv_shape{c.B, c.Hkv, c.Lk, c.D} {
        mask.causal = c.causal;
        mask.window = uint32_t(c.window);
        if (c.additive) mask.additive = &ops::buffer(additive.emplace(ctx, std::vector<int64_t>{c.Lq, c.Lk}, in.additive));
        if (c.padding) mask.key_padding = &ops::buffer(padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding));
    }
    ops::TensorRef ref(const Tensor& t, const std::array<int64_t, 4>& shape) const {
        return ops::contiguous(ops::buffer(t), t.dtype(), shape);
    }
};

// Runs record_flash on contiguous tensors with the variant forced.
std::vector<float> run_flash(const Case& c, const Inputs& in, const ops::FlashConfig& config) {
    Context& ctx = gpu();
    const DeviceInputs d(ctx, c, in);
    Tensor out(ctx, {c.B, c.H, c.Lq, c.D}, c.dtype);
    const float scale = float(1.0 / std::sqrt(double(c.D)));
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_flash(enc, d.dims, d.ref(d.q, d.q_shape), d.ref(d.k, d.kv_shape), d.ref(d.v, d.kv_shape),
                          d.ref(out, d.q_shape), d.mask, scale, config);
    });
    return out.download();
}

void check_variant(const Case& c, const ops::FlashConfig& config) {
    INFO(c.name() << ", variant " << variant_name(config.variant) << ", splits " << config.splits);
    const Inputs in = make_inputs(c);
    const std::vector<float> got = run_flash(c, in, config);
    const auto cmp = compare(got, in.ref, atol_for(c.dtype), rtol_for(c.dtype));
    INFO(cmp.describe());
    CHECK(cmp.ok);
    check_masked_rows(c, in, got);
}

// The shapes of test_attention.cpp, plus fully masked rows, long decodes and more fp16.
const Case kGrid[] = {
    {1, 1, 1, 1, 1, 64},                          // L = 1
    {1, 2, 2, 17, 17, 64},                        // L not a multiple of any tile
    {1, 2, 2, 63, 63, 32, true},
    {1, 2, 2, 64, 64, 32, true},
    {1, 2, 2, 65, 65, 32, true},
    {2, 3, 3, 5, 33, 64},                         // Lq < Lk (cross attention)
    {1, 4, 4, 1, 100, 64, true},                  // decode: one query against a cache
    {1, 3, 3, 3, 700, 64, true},                  // a few decode rows against a long cache
    {2, 4, 4, 33, 20, 64, true},                  // Lq > Lk with causal: the first 13 rows see nothing
    {1, 8, 2, 19, 23, 64, true},                  // GQA
    {2, 4, 1, 9, 40, 32},                         // MQA
    {1, 2, 2, 20, 20, 80},                        // each head dim
    {1, 2, 2, 20, 20, 96},
    {1, 2, 2, 20, 20, 128},
    {1, 2, 2, 20, 20, 256},
    {1, 2, 2, 40, 40, 64, true, 7},               // sliding window with causal: blocks before it are skipped
    {1, 2, 2, 12, 30, 64, false, 5},              // window alone
    {3, 2, 2, 9, 13, 64, false, 0, true},         // key padding
    {3, 2, 1, 1, 1, 32, false, 0, true},          // padding hides the only key: zeros
    {1, 2, 2, 11, 19, 64, true, 0, false, true},  // additive mask, row 1 all -inf
    {1, 12, 12, 128, 128, 64, true},              // a GPT-2 head shape
    {1, 2, 2, 17, 17, 64, false, 0, false, false, DType::f16},
    {1, 8, 2, 33, 47, 128, true, 0, false, false, DType::f16},
    {2, 4, 4, 1, 65, 96, true, 9, true, false, DType::f16},
    {1, 2, 1, 2, 300, 64, false, 0, true, true, DType::f16},
};

}  // namespace

TEST_CASE("flash_rows matches the CPU reference over awkward shapes", "[gpu][attention][flash]") {
    const Case c = GENERATE(from_range(std::begin(kGrid), std::end(kGrid)));
    check_variant(c, {ops::FlashVariant::rows});
}

TEST_CASE("flash_tiled matches the CPU reference over awkward shapes", "[gpu][attention][flash]") {
    const Case c = GENERATE(from_range(std::begin(kGrid), std::end(kGrid)));
    check_variant(c, {ops::FlashVariant::tiled});
}

TEST_CASE("split-KV matches the CPU reference over awkward shapes", "[gpu][attention][flash]") {
    // Three key slices, so most rows merge partials from slices that saw keys and slices that saw none.
    const Case c = GENERATE(from_range(std::begin(kGrid), std::end(kGrid)));
    check_variant(c, {ops::FlashVariant::split, 3});
}

TEST_CASE("flash_rows with row states: the output, and each row's log-sum-exp as the CPU's", "[gpu][attention][flash]") {
    // flash_partial on a CPU device (lavapipe) runs flash_rows_state: the normalised output plus, per row, the
    // base-2 max m and the sum l of 2^(s - m) of its visible scores. m + log2(l) must be the row's base-2
    // log-sum-exp (scores scaled by scale · log2 e, the additive mask by log2 e), computed here in double.
    Context& ctx = gpu();
    const ops::AttentionDims probe{1, 1, 1, 1, 1, 8};
    if (!ops::flash_partial_layout(ctx.device(), probe, DType::f32).rows) {
        WARN("flash_partial uses split-KV on " << ctx.device().name << ": the row-state kernel is for CPU devices");
        return;
    }
    const Case c = GENERATE(from_range(std::begin(kGrid), std::end(kGrid)));
    INFO(c.name());
    const Inputs in = make_inputs(c);
    const DeviceInputs d(ctx, c, in);
    const ops::FlashPartialLayout layout = ops::flash_partial_layout(ctx.device(), d.dims, c.dtype);
    REQUIRE(layout.parts == 1);
    REQUIRE(layout.out_dtype == c.dtype);
    Tensor out(ctx, {c.B, c.H, c.Lq, c.D}, layout.out_dtype);
    Tensor ml(ctx, {int64_t(layout.ml_floats)});
    const double scale = 1.0 / std::sqrt(double(c.D));
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_flash_partial(enc, d.dims, d.ref(d.q, d.q_shape), d.ref(d.k, d.kv_shape), d.ref(d.v, d.kv_shape),
                                  d.mask, float(scale), ops::buffer(out), ops::buffer(ml));
    });
    const auto cmp = compare(out.download(), in.ref, atol_for(c.dtype), rtol_for(c.dtype));
    INFO(cmp.describe());
    CHECK(cmp.ok);

    const std::vector<float> state = ml.download();
    const double log2e = 1.4426950408889634;
    size_t bad = 0;
    double worst = 0;
    for (int b = 0; b < c.B; ++b)
        for (int h = 0; h < c.H; ++h)
            for (int i = 0; i < c.Lq; ++i) {
                const int hk = h / (c.H / c.Hkv);
                double mx = -std::numeric_limits<double>::infinity();
                std::vector<double> s;
                for (int j = 0; j < c.Lk; ++j) {
                    if (!cpu::key_visible(in.shape, in.mask, b, i, j)) continue;
                    const double add = c.additive ? double(in.additive[size_t(i) * c.Lk + j]) : 0.0;
                    if (std::isinf(add)) continue;
                    double dot = 0;
                    for (int d = 0; d < c.D; ++d) {
                        dot += double(in.q[((size_t(b) * c.H + h) * c.Lq + i) * c.D + d]) *
                               double(in.k[((size_t(b) * c.Hkv + hk) * c.Lk + j) * c.D + d]);
                    }
                    s.push_back((dot * scale + add) * log2e);
                    mx = std::max(mx, s.back());
                }
                const size_t row = (size_t(b) * c.H + h) * c.Lq + i;
                const double m = state[2 * row], l = state[2 * row + 1];
                if (s.empty()) {  // no visible key: (-inf, 0)
                    if (!(std::isinf(m) && m < 0 && l == 0)) ++bad;
                    continue;
                }
                double sum = 0;
                for (const double x : s) sum += std::exp2(x - mx);
                const double err = std::abs((m + std::log2(l)) - (mx + std::log2(sum)));
                worst = std::max(worst, err);
                if (!(err <= 1e-4 * std::max(1.0, std::abs(mx)))) ++bad;
            }
    INFO("worst |log-sum-exp error| " << worst);
    CHECK(bad == 0);
}

TEST_CASE("every fused kernel takes any head dim from 1 to 256", "[gpu][attention][flash][headdim]") {
    // Head dims that are not a multiple of 8 run on the pipeline of the next multiple, loading and storing
    // element by element with zeros past D: 1 and 3 (tiny test checkpoints), 100 (padding 4), and multiples of 8
    // that no head dim used before (8, 16, 24, 40) next to 256. Odd shapes: L = 1, L not a multiple of any tile,
    // Lq != Lk, GQA.
    const int D = GENERATE(1, 3, 8, 16, 24, 40, 100, 256);
    const DType dtype = GENERATE(DType::f32, DType::f16);
    const Case shapes[] = {
        {1, 1, 1, 1, 1, D, false, 0, false, false, dtype},          // L = 1
        {1, 4, 2, 7, 19, D, true, 0, false, false, dtype},          // GQA, Lq != Lk, causal
        {2, 2, 2, 17, 17, D, false, 0, true, false, dtype},         // L = 17, key padding
    };
    for (const Case& c : shapes) {
        check_variant(c, {ops::FlashVariant::rows});
        check_variant(c, {ops::FlashVariant::tiled});
        check_variant(c, {ops::FlashVariant::split, 3});
    }
    // Split-KV as the tuning table picks it: one query against a long cache.
    const Case decode{1, 4, 2, 1, 600, D, true, 0, false, false, dtype};
    const ops::AttentionDims dims{1, 4, 2, 1, 600, uint32_t(D)};
    CHECK(ops::flash_variant(gpu().device(), dims) == ops::FlashVariant::split);
    check_variant(decode, {});
}

TEST_CASE("V near the fp32 limit gives a finite output on every path", "[gpu][attention][flash][overflow]") {
    // |V| up to 3e38 (FLT_MAX is 3.4e38): O is a weighted mean of V rows, so it is finite and representable, but an
    // unnormalized sum of exp-weighted V rows (Lk of them, weights up to 1) overflows to inf. The same with every
    // V element 3e38, where the old sum was inf from the second key on.
    const bool uniform = GENERATE(false, true);
    const Case c = GENERATE(Case{1, 2, 1, 9, 300, 16, true}, Case{1, 2, 2, 1, 600, 64, true},
                            Case{2, 2, 2, 17, 40, 3, false, 0, true});
    INFO(c.name() << (uniform ? ", V all 3e38" : ", V in ±3e38"));
    Inputs in = make_inputs(c);
    for (float& x : in.v) x = uniform ? 3e38f : x * 3e38f;
    cpu::attention(in.shape, in.mask, in.q.data(), in.k.data(), in.v.data(), 0, in.ref.data());
    for (float x : in.ref) REQUIRE(std::isfinite(x));
    // fp32 rounding of a weighted mean, relative to the 3e38 scale of V: as the fp32 tolerance above, scaled.
    const double atol = 1e-4 * 3e38, rtol = 1e-4;
    const auto check = [&](const std::vector<float>& got, const char* path) {
        INFO(path);
        for (float x : got) REQUIRE(std::isfinite(x));
        const auto cmp = compare(got, in.ref, atol, rtol);
        INFO(cmp.describe());
        CHECK(cmp.ok);
    };
    check(run_flash(c, in, {ops::FlashVariant::rows}), "rows");
    check(run_flash(c, in, {ops::FlashVariant::tiled}), "tiled");
    check(run_flash(c, in, {ops::FlashVariant::split, 3}), "split, 3 slices");
    check(run_flash(c, in, {}), "automatic");
    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k),
        v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v), out(ctx, {c.B, c.H, c.Lq, c.D});
    std::optional<Tensor> padding;
    AttentionParams params{.causal = c.causal, .impl = AttentionImpl::naive};
    if (c.padding) params.key_padding_mask = &padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding);
    attention(ctx, q, k, v, out, params);
    check(out.download(), "three kernels");
}

TEST_CASE("NaN at a visible position gives NaN on every path; hidden NaN and masked rows do not",
          "[gpu][attention][flash][nan]") {
    // One NaN planted per case (kNanPlants, attention_cases.hpp), on every path.
    const NanPlant plant = GENERATE(from_range(std::begin(kNanPlants), std::end(kNanPlants)));
    INFO(plant.what);
    const Case c = plant.with(DType::f32);
    const Inputs in = planted_nan_inputs(plant, c.dtype);

    const auto check = [&](const std::vector<float>& got, const char* path) {
        check_planted_nan(c, in, got, plant.is_nan, path);
    };
    check(in.ref, "CPU reference");
    check(run_flash(c, in, {ops::FlashVariant::rows}), "rows");
    check(run_flash(c, in, {ops::FlashVariant::tiled}), "tiled");
    check(run_flash(c, in, {ops::FlashVariant::split, 3}), "split, 3 slices");
    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k),
        v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v), out(ctx, {c.B, c.H, c.Lq, c.D});
    Tensor padding(ctx, {c.B, c.Lk}, in.padding);
    for (AttentionImpl impl : {AttentionImpl::fused, AttentionImpl::naive}) {
        attention(ctx, q, k, v, out, {.causal = true, .key_padding_mask = &padding, .impl = impl});
        check(out.download(), impl == AttentionImpl::fused ? "attention(), fused" : "attention(), three kernels");
    }
}

TEST_CASE("NaN in V reaches the rows that see the key also where every row of a block sees every key",
          "[gpu][attention][flash][nan]") {
    // Causal (and windowed) Lq = Lk = 48 with neither padding nor an additive mask: most key blocks of flash_rows are
    // then seen whole by every row of their workgroup, and there nothing zeroes V's NaNs: plain arithmetic must
    // carry them to exactly the rows that see the key. One plant points key 5's K away from every q (q > 0,
    // K = -1000), so its weight is 0 in fp32 (and in the reference's double): key 5 is still visible, and its NaN
    // must still show (0 · NaN). The three-kernel path is left out: its P · V skips zero probabilities.
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    struct Plant {
        const char* what;
        char tensor;  // 'q', 'k' or 'v'
        int head, row, d;
        bool underflow;  // key `row`'s weight underflows to 0
    };
    const Plant plant = GENERATE(Plant{"NaN in V of key 5", 'v', 0, 5, 3, false},
                                 Plant{"NaN in V of key 5, whose weight is 0", 'v', 0, 5, 3, true},
                                 Plant{"NaN in K of key 9", 'k', 0, 9, 6, false},
                                 Plant{"NaN in q of (h 1, i 30)", 'q', 1, 30, 0, false});
    const Case c = GENERATE(Case{1, 2, 1, 48, 48, 8, true}, Case{1, 2, 1, 48, 48, 8, true, 20},
                            Case{1, 2, 1, 48, 48, 8, true, 0, false, false, DType::f16});
    INFO(plant.what << ", " << c.name());
    Inputs in = make_inputs(c);
    if (plant.underflow) {
        for (float& x : in.q) x = std::fabs(x) + 0.125f;
        in.q = round_to(c.dtype, in.q);
        std::fill_n(in.k.begin() + size_t(plant.row) * c.D, c.D, -1000.0f);
    }
    std::vector<float>& t = plant.tensor == 'q' ? in.q : plant.tensor == 'k' ? in.k : in.v;
    const int len = plant.tensor == 'q' ? c.Lq : c.Lk;
    t[(size_t(plant.head) * len + plant.row) * c.D + size_t(plant.d)] = nan;
    cpu::attention(in.shape, in.mask, in.q.data(), in.k.data(), in.v.data(), 0, in.ref.data());
    const auto is_nan = [&](int h, int i, int d) {
        if (plant.tensor == 'q') return h == plant.head && i == plant.row;
        const bool sees = cpu::key_visible(in.shape, in.mask, 0, i, plant.row);
        return sees && (plant.tensor == 'k' || d == plant.d);
    };
    check_planted_nan(c, in, in.ref, is_nan, "CPU reference");
    check_planted_nan(c, in, run_flash(c, in, {ops::FlashVariant::rows}), is_nan, "rows");
    check_planted_nan(c, in, run_flash(c, in, {ops::FlashVariant::tiled}), is_nan, "tiled");
    check_planted_nan(c, in, run_flash(c, in, {ops::FlashVariant::split, 3}), is_nan, "split, 3 slices");
}

TEST_CASE("every attention kernel folds a grid too long for the device into x and y", "[gpu][attention][grid]") {
    // With the grid's x limit lowered to 3 (test hook), every dispatch of these shapes needs more than 3
    // workgroups along its axis and runs as x · y with y > 1, the last grid row only partly used. Each kernel must
    // still cover every row exactly once.
    struct Limit {
        Limit() { ops::set_grid_limit_for_testing(3); }
        ~Limit() { ops::set_grid_limit_for_testing(0); }
    } limit;
    const Case c = GENERATE(Case{1, 2, 1, 70, 45, 20, true}, Case{2, 2, 2, 3, 300, 8, false, 0, true},
                            Case{1, 1, 1, 9, 9, 3, false, 0, false, false, DType::f16});
    check_variant(c, {ops::FlashVariant::rows});
    check_variant(c, {ops::FlashVariant::tiled});
    check_variant(c, {ops::FlashVariant::split, 5});
    INFO(c.name() << ", three kernels");
    const Inputs in = make_inputs(c);
    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q, c.dtype), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k, c.dtype),
        v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v, c.dtype), out(ctx, {c.B, c.H, c.Lq, c.D}, c.dtype);
    std::optional<Tensor> padding;
    AttentionParams params{.causal = c.causal, .impl = AttentionImpl::naive};
    if (c.padding) params.key_padding_mask = &padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding);
    attention(ctx, q, k, v, out, params);
    const auto cmp = compare(out.download(), in.ref, atol_for(c.dtype), rtol_for(c.dtype));
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("folded_grid spreads workgroups over x and y, and refuses what x · y cannot hold", "[cpu][grid]") {
    DeviceInfo info;
    info.max_workgroup_count = {5, 3, 7};
    CHECK(ops::folded_grid(info, 4, 2, "a") == std::array<uint32_t, 3>{4, 1, 2});
    CHECK(ops::folded_grid(info, 5, 1, "a") == std::array<uint32_t, 3>{5, 1, 1});
    CHECK(ops::folded_grid(info, 11, 1, "a") == std::array<uint32_t, 3>{5, 3, 1});
    CHECK(ops::folded_grid(info, 15, 1, "a") == std::array<uint32_t, 3>{5, 3, 1});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { ops::folded_grid(info, 16, 1, "fused attention"); }),
                            "fused attention needs 16 workgroups, more than the device's 5 × 3 grid");
}

TEST_CASE("query rows just past 65535 workgroups run on the device's own grid", "[gpu][attention][grid]") {
    // Lq = 2^20 + 1 rows: more than 65535 row blocks for flash_rows (16 rows each on an 8-wide lavapipe) and for
    // qk and pv (16-row tiles), whatever the device's limit of at least 65535 allows along x.
    const Case c{1, 1, 1, (1 << 20) + 1, 16, 4};
    const Inputs in = make_inputs(c);
    Context& ctx = gpu();
    Tensor q(ctx, {1, 1, c.Lq, c.D}, in.q), k(ctx, {1, 1, c.Lk, c.D}, in.k), v(ctx, {1, 1, c.Lk, c.D}, in.v),
        out(ctx, {1, 1, c.Lq, c.D});
    for (AttentionImpl impl : {AttentionImpl::fused, AttentionImpl::naive}) {
        INFO("impl " << int(impl));
        out.fill_zero();
        attention(ctx, q, k, v, out, {.impl = impl});
        const auto cmp = compare(out.download(), in.ref, 1e-4, 1e-4);  // fp32, as above
        INFO(cmp.describe());
        CHECK(cmp.ok);
    }
}

TEST_CASE("split-KV decode over a long cache, slices chosen by the tuning table", "[gpu][attention][flash]") {
    const Case c = GENERATE(Case{1, 12, 12, 1, 4096, 64, true, 0, false, false, DType::f16},
                            Case{2, 8, 2, 1, 1500, 128, true},               // GQA decode
                            Case{1, 4, 4, 4, 2000, 64, true, 700},          // a few rows, window
                            Case{1, 2, 2, 1, 3000, 64, false, 0, true});    // padding
    const Inputs in = make_inputs(c);
    const ops::AttentionDims dims{uint32_t(c.B), uint32_t(c.H), uint32_t(c.Hkv), uint32_t(c.Lq), uint32_t(c.Lk),
                                  uint32_t(c.D)};
    CHECK(ops::flash_variant(gpu().device(), dims) == ops::FlashVariant::split);
    check_variant(c, {});
    check_variant(c, {ops::FlashVariant::split, 37});  // many slices, some shorter than one workgroup's stride
}

// llvmpipe ends an invocation's loops after 65,535 iterations in all, silently: past Tuning::loop_budget blocks
// of keys, fused attention takes split-KV with slices within it (before, Lq = 16, Lk = 600,000 gave wrong rows on
// lavapipe with no error). On GPUs, which have no such budget, the same cases run their usual kernel.
TEST_CASE("fused attention over more keys than llvmpipe's loop budget", "[gpu][attention][flash]") {
    const Case c = GENERATE(Case{1, 1, 1, 16, 600000, 8, true},
                            Case{1, 2, 1, 9, 530000, 8, false, 0, false, false, DType::f16});
    check_variant(c, {});
}

TEST_CASE("attention() runs fused by default and naive on request, both matching", "[gpu][attention][flash]") {
    const Case c = GENERATE(Case{1, 4, 2, 37, 37, 64, true}, Case{1, 4, 4, 1, 600, 64, true},
                            Case{2, 2, 2, 9, 13, 32, false, 3, true, true},
                            Case{1, 4, 2, 9, 13, 3, true});  // a head dim that is no multiple of 8
    INFO(c.name());
    const Inputs in = make_inputs(c);
    Context& ctx = gpu();
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k),
        v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v), out(ctx, {c.B, c.H, c.Lq, c.D});
    std::optional<Tensor> additive, padding;
    AttentionParams params;
    params.causal = c.causal;
    params.window = c.window;
    if (c.additive) params.additive_mask = &additive.emplace(ctx, std::vector<int64_t>{c.Lq, c.Lk}, in.additive);
    if (c.padding) params.key_padding_mask = &padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding);
    for (AttentionImpl impl : {AttentionImpl::automatic, AttentionImpl::fused, AttentionImpl::naive}) {
        params.impl = impl;
        out.fill_zero();
        attention(ctx, q, k, v, out, params);
        const std::vector<float> got = out.download();
        const auto cmp = compare(got, in.ref, 1e-4, 1e-4);  // fp32, as above
        INFO("impl " << int(impl) << ": " << cmp.describe());
        CHECK(cmp.ok);
        check_masked_rows(c, in, got);
    }
}

TEST_CASE("fused attention reads strided views of one QKV buffer, aligned or not", "[gpu][attention][flash]") {
    // The GPT-2 layout qkv [T, 3, H, D] (Q the view [H, T, D] with strides (D, 3·H·D, 1)), and the same with
    // a one-element shift and odd row stride, whose rows miss 16-byte alignment (element-wise loads).
    const bool aligned = GENERATE(true, false);
    const ops::FlashVariant variant = GENERATE(ops::FlashVariant::rows, ops::FlashVariant::tiled,
                                               ops::FlashVariant::split);
    const DType dtype = GENERATE(DType::f32, DType::f16);
    INFO((aligned ? "aligned" : "unaligned") << ", " << variant_name(variant) << ", " << dtype_name(dtype));
    const int T = 21, H = 3, D = 32;
    const int64_t row = 3 * H * D + (aligned ? 0 : 1), shift = aligned ? 0 : 1;
    const auto qkv_host = round_to(dtype, random_values(size_t(T) * row + shift + 8, 7, -2, 2));
    std::vector<float> q(size_t(H) * T * D), k(q.size()), v(q.size());
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d) {
                const size_t dst = (size_t(h) * T + t) * D + d;
                const size_t src = size_t(shift) + size_t(t) * row + size_t(h) * D + d;
                q[dst] = qkv_host[src];
                k[dst] = qkv_host[src + H * D];
                v[dst] = qkv_host[src + 2 * H * D];
            }
    std::vector<float> ref(q.size());
    cpu::attention({1, H, H, T, T, D}, {true}, q.data(), k.data(), v.data(), 0, ref.data());

    Context& ctx = gpu();
    Tensor qkv(ctx, {int64_t(qkv_host.size())}, qkv_host, dtype);
    Tensor out(ctx, {T * H * D + 1}, dtype);  // written as [H, T, D] with strides (D, H·D, 1) from element shift
    const auto view = [&](const Tensor& t, uint64_t offset, int64_t stride_l) {
        return ops::TensorRef{&ops::buffer(t), dtype, offset, {1, H, T, D}, {0, D, stride_l, 1}};
    };
    const ops::AttentionDims dims{1, H, H, T, T, D};
    const ops::MaskArgs mask{.causal = true};
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_flash(enc, dims, view(qkv, shift, row), view(qkv, shift + H * D, row),
                          view(qkv, shift + 2 * H * D, row), view(out, shift, H * D), mask,
                          float(1.0 / std::sqrt(double(D))), {variant, 2});
    });
    const auto got_thd = out.download();
    std::vector<float> got(ref.size());
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h)
            for (int d = 0; d < D; ++d)
                got[(size_t(h) * T + t) * D + d] = got_thd[size_t(shift) + (size_t(t) * H + h) * D + d];
    const auto cmp = compare(got, ref, atol_for(dtype), rtol_for(dtype));
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("fused attention splits heads across dispatches to fit maxStorageBufferRange", "[gpu][attention][flash]") {
    // Views [B = 3, H = 2, L = 16, D = 64] whose batches lie 48 MiB apart in one buffer: all three batches
    // span 144 MiB, more than lavapipe's 128 MiB binding limit, so each kernel runs in several dispatches, the
    // later ones with offsets relative to their own binding. (The same planner runs the 16384-token case.)
    const ops::FlashVariant variant = GENERATE(ops::FlashVariant::rows, ops::FlashVariant::tiled,
                                               ops::FlashVariant::split);
    INFO(variant_name(variant));
    Context& ctx = gpu();
    const int B = 3, H = 2, L = 16, D = 64;
    const int64_t batch_stride = int64_t(12) << 20;  // elements: 48 MiB of f32
    const uint64_t range = ctx.device().max_storage_buffer_range;
    if (uint64_t(B) * batch_stride * 4 <= range) {
        WARN("maxStorageBufferRange " << range << " holds every batch; the split across dispatches is not exercised");
    }
    const int64_t slab = int64_t(H) * L * D;  // one batch of one tensor, contiguous [H, L, D]
    std::vector<float> host(size_t(B) * batch_stride, 0.0f);
    const Case c{B, H, H, L, L, D, true};
    const Inputs in = make_inputs(c);
    for (int b = 0; b < B; ++b)
        for (int64_t e = 0; e < slab; ++e) {
            host[size_t(b * batch_stride + e)] = in.q[size_t(b * slab + e)];
            host[size_t(b * batch_stride + slab + e)] = in.k[size_t(b * slab + e)];
            host[size_t(b * batch_stride + 2 * slab + e)] = in.v[size_t(b * slab + e)];
        }
    Tensor big(ctx, {B, batch_stride}, host);
    host = {};
    const auto view = [&](int which) {
        return ops::TensorRef{&ops::buffer(big), DType::f32, uint64_t(which * slab), {B, H, L, D},
                              {batch_stride, L * D, D, 1}};
    };
    const ops::AttentionDims dims{B, H, H, L, L, D};
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_flash(enc, dims, view(0), view(1), view(2), view(3), {.causal = true}, 0.125f, {variant});
    });
    const auto all = big.download();
    std::vector<float> got(in.ref.size());
    for (int b = 0; b < B; ++b)
        for (int64_t e = 0; e < slab; ++e) got[size_t(b * slab + e)] = all[size_t(b * batch_stride + 3 * slab + e)];
    const auto cmp = compare(got, in.ref, 1e-4, 1e-4);  // fp32, as above
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

TEST_CASE("a device whose subgroups cannot run the kernels is passed over with the reason", "[cpu][device]") {
    const VkShaderStageFlags compute = VK_SHADER_STAGE_COMPUTE_BIT;
    const VkSubgroupFeatureFlags all = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT |
                                       VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    const VkSubgroupFeatureFlags no_shuffle = all & ~VkSubgroupFeatureFlags(VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    // lavapipe as it is (8 lanes), and forced to 4 and 16 (LP_NATIVE_VECTOR_WIDTH=128 / 512).
    for (uint32_t lanes : {4u, 8u, 16u}) {
        CHECK(vk::missing_kernel_requirement("cpu", compute, all, lanes, 1024, 1024).empty());
    }
    // GPUs run no shuffle kernel.
    CHECK(vk::missing_kernel_requirement("discrete", compute, no_shuffle, 32, 1024, 1024).empty());
    CHECK(vk::missing_kernel_requirement("cpu", compute, no_shuffle, 8, 1024, 1024) ==
          "it lacks subgroup shuffles, which its kernels for CPU devices (flash_rows, matmul_simd) need");
    CHECK(vk::missing_kernel_requirement("discrete", compute, VK_SUBGROUP_FEATURE_BASIC_BIT, 32, 1024, 1024) ==
          "it lacks subgroup arithmetic in compute shaders, which LayerNorm needs");
    CHECK(vk::missing_kernel_requirement("integrated", VK_SHADER_STAGE_FRAGMENT_BIT, all, 32, 1024, 1024) ==
          "it has no subgroup operations in compute shaders");
    VKATTN_REQUIRE_CONTAINS(vk::missing_kernel_requirement("cpu", compute, all, 256, 128, 128),
                            "its subgroup size 256 is not a workgroup size it allows");
}
