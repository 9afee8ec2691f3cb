// The cooperative-matrix flash attention (shaders/flash_coopmat.comp) against the CPU reference. Everywhere the
// emulated kernel (flash_coopmat_emu_f16) checks the indexing: query and key tiles over odd lengths, Lq != Lk, GQA
// and MQA, every mask, head dims padded to the fragment size, NaN; on devices whose matmul_f16_path is
// "coopmat_nv" the real kernel runs the same cases.
#include "catch.hpp"
#include "ops/runtime.hpp"
#include "cpu/attention.hpp"
#include "ops/attention.hpp"
#include "ops/flash_coopmat.hpp"
#include "ops/self_check.hpp"
#include "attention_cases.hpp"
#include "support.hpp"

#include <vkattn/tensor.hpp>

#include <cmath>
#include <limits>
#include <optional>

using namespace vkattn;
using namespace vkattn::test;

namespace {

// Runs record_flash with the coopmat variant and cfg on contiguous f16 tensors.
std::vector<float> run_flash(Context& ctx, const Case& c, const Inputs& in, const ops::FlashConfig& config) {
    Tensor q(ctx, {c.B, c.H, c.Lq, c.D}, in.q, c.dtype), k(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.k, c.dtype),
        v(ctx, {c.B, c.Hkv, c.Lk, c.D}, in.v, c.dtype), out(ctx, {c.B, c.H, c.Lq, c.D}, c.dtype);
    std::optional<Tensor> additive, padding;
    ops::MaskArgs mask;
    mask.causal = c.causal;
    mask.window = uint32_t(c.window);
    if (c.additive) mask.additive = &ops::buffer(additive.emplace(ctx, std::vector<int64_t>{c.Lq, c.Lk}, in.additive));
    if (c.padding) mask.key_padding = &ops::buffer(padding.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, in.padding));
    const ops::AttentionDims dims{uint32_t(c.B), uint32_t(c.H), uint32_t(c.Hkv),
                                  uint32_t(c.Lq), uint32_t(c.Lk), uint32_t(c.D)};
    const auto view = [&](const Tensor& t, int heads, int L) {
        return ops::contiguous(ops::buffer(t), t.dtype(), {c.B, heads, L, c.D});
    };
    const float scale = float(1.0 / std::sqrt(double(c.D)));
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_flash(enc, dims, view(q, c.H, c.Lq), view(k, c.Hkv, c.Lk), view(v, c.Hkv, c.Lk),
                          view(out, c.H, c.Lq), mask, scale, config);
    });
    return out.download();
}

std::vector<float> run_coopmat(const Case& c, const Inputs& in, const ops::FlashCoopmatConfig& cfg) {
    ops::FlashConfig config;
    config.variant = ops::FlashVariant::coopmat;
    config.coopmat = &cfg;
    return run_flash(gpu(), c, in, config);
}

// The kernel's derived error bound (ops/flash_coopmat.hpp) for V in [-vmax, vmax].
struct Bound {
    double atol, rtol;
};
Bound coopmat_bound(const Case& c, double vmax) {
    const ops::FlashCoopmatBound b = ops::flash_coopmat_bound(uint32_t(c.Lk), vmax);
    return {b.atol, b.rtol};
}

void check_case(const Case& c, const ops::FlashCoopmatConfig& cfg, const Inputs& in, double vmax = 1.0) {
    const std::vector<float> got = run_coopmat(c, in, cfg);
    const Bound bound = coopmat_bound(c, vmax);
    const auto cmp = compare(got, in.ref, bound.atol, bound.rtol);
    INFO(cmp.describe());
    CHECK(cmp.ok);
    check_masked_rows(c, in, got);
}

// The configs to run: emulated, and the real kernel where the device has it.
std::vector<ops::FlashCoopmatConfig> configs(uint32_t D) {
    const DeviceInfo& info = gpu().device();
    std::vector<ops::FlashCoopmatConfig> out{ops::flash_coopmat_config(info, D, true)};
    if (info.matmul_f16_path == "coopmat_nv") out.push_back(ops::flash_coopmat_config(info, D, false));
    return out;
}

}  // namespace

TEST_CASE("flash_coopmat matches the CPU reference over odd shapes, masks, GQA and head dims",
          "[gpu][flash_coopmat]") {
    const Case c = GENERATE(
        Case{1, 1, 1, 1, 1, 64, false, 0, false, false, DType::f16},         // L = 1
        Case{1, 2, 2, 17, 17, 64, false, 0, false, false, DType::f16},       // L not a multiple of any tile
        Case{2, 3, 3, 5, 33, 64, false, 0, false, false, DType::f16},        // Lq < Lk
        Case{2, 4, 4, 33, 20, 64, true, 0, false, false, DType::f16},        // Lq > Lk, causal: rows 0..12 see nothing
        Case{1, 2, 1, 130, 150, 64, true, 0, false, false, DType::f16},      // several query blocks and key tiles
        Case{1, 8, 2, 19, 70, 40, true, 0, false, false, DType::f16},        // GQA, D = 40
        Case{2, 4, 1, 9, 40, 8, false, 0, false, false, DType::f16},         // MQA, D = 8
        Case{1, 2, 2, 40, 40, 100, true, 7, false, false, DType::f16},       // window + causal: tiles skipped, D = 100
        Case{1, 2, 2, 12, 30, 128, false, 5, false, false, DType::f16},      // window alone, D = 128
        Case{2, 2, 2, 20, 37, 256, false, 0, true, false, DType::f16},       // key padding, D = 256
        Case{1, 2, 2, 11, 19, 64, true, 0, false, true, DType::f16});        // additive, row 1 all -inf
    INFO(c.name());
    const Inputs in = make_inputs(c);
    for (const auto& cfg : configs(uint32_t(c.D))) {
        INFO(cfg.kernel() << ": " << cfg.nsg << " subgroups of " << cfg.subgroup << ", " << cfg.bk << "-key tiles, "
                          << cfg.nbuf << " buffers");
        check_case(c, cfg, in);
    }
}

TEST_CASE("flash_coopmat takes other fragment shapes and blockings", "[gpu][flash_coopmat]") {
    // NVIDIA also lists 16 × 8 × 16 and 16 × 8 × 8; the emulation checks that the indexing holds for LN != LM,
    // a taller LM, one, two or four subgroups, 16-key tiles, single and double buffers (Lk = 61: 2 to 4 tiles).
    const Case c{1, 4, 2, 37, 61, 24, true, 0, true, false, DType::f16};
    const Inputs in = make_inputs(c);
    ops::FlashCoopmatConfig cfg;
    cfg.emulate = true;
    const auto [shape, nsg, bk, nbuf] = GENERATE(table<std::array<uint32_t, 3>, uint32_t, uint32_t, uint32_t>(
        {{{16, 8, 16}, 2, 16, 2}, {{32, 8, 8}, 1, 32, 1}, {{16, 16, 16}, 4, 16, 1}, {{16, 16, 16}, 2, 16, 2}}));
    cfg.shape = shape;
    cfg.nsg = nsg;
    cfg.bk = bk;
    cfg.nbuf = nbuf;
    INFO(shape[0] << "x" << shape[1] << "x" << shape[2] << ", " << nsg << " subgroups, " << bk << "-key tiles, "
                  << nbuf << " buffers");
    REQUIRE(ops::flash_coopmat_refusal(gpu().device(), {1, 4, 2, 37, 61, 24}, DType::f16, cfg).empty());
    check_case(c, cfg, in);
}

TEST_CASE("flash_coopmat: large scores keep the running max, NaN follows the rule of the other paths",
          "[gpu][flash_coopmat][nan]") {
    SECTION("scores of several hundred") {
        // q in [-60, 60]: base-2 scores far beyond exp2's range, which only the max subtraction keeps finite.
        const Case c{1, 2, 2, 40, 90, 64, true, 0, false, false, DType::f16};
        Inputs in = make_inputs(c);
        for (float& x : in.q) x = round_to(DType::f16, {x * 30.0f})[0];
        cpu::attention(in.shape, in.mask, in.q.data(), in.k.data(), in.v.data(), 0, in.ref.data());
        check_case(c, ops::flash_coopmat_config(gpu().device(), uint32_t(c.D), true), in);
    }
    SECTION("NaN planted in q, K or V") {
        // The NaN cases of the scalar paths (kNanPlants, attention_cases.hpp), in f16.
        const NanPlant plant = GENERATE(from_range(std::begin(kNanPlants), std::end(kNanPlants)));
        INFO(plant.what);
        const Case c = plant.with(DType::f16);
        const Inputs in = planted_nan_inputs(plant, c.dtype);
        const std::vector<float> got = run_coopmat(c, in, ops::flash_coopmat_config(gpu().device(), 8, true));
        const Bound bound = coopmat_bound(c, 1.0);
        check_planted_nan(c, in, got, plant.is_nan, "flash_coopmat", bound.atol, bound.rtol);
    }
}

TEST_CASE("flash_coopmat refuses what it cannot run, and automatic picks it only where opted in",
          "[gpu][flash_coopmat]") {
    const DeviceInfo& info = gpu().device();
    const ops::AttentionDims dims{1, 2, 2, 16, 16, 64};
    const auto cfg = ops::flash_coopmat_config(info, 64, true);
    CHECK(cfg.shared_bytes(64) <= info.max_shared_memory);
    CHECK(cfg.invocations() <= info.max_workgroup_invocations);
    VKATTN_REQUIRE_CONTAINS(ops::flash_coopmat_refusal(info, dims, DType::f32, cfg), "takes f16 tensors, not f32");
    for (uint32_t D : {8u, 40u, 100u, 256u}) {
        const auto c = ops::flash_coopmat_config(info, D, true);
        INFO("D " << D);
        CHECK(ops::flash_coopmat_refusal(info, {1, 1, 1, 1, 1, D}, DType::f16, c).empty());
    }
    if (info.matmul_f16_path != "coopmat_nv") {
        VKATTN_REQUIRE_CONTAINS(ops::flash_coopmat_refusal(info, dims, DType::f16, ops::flash_coopmat_config(info, 64, false)),
                                "no usable cooperative matrices on this device");
    }
}

TEST_CASE("flash_coopmat checks itself on first use and gives way to the scalar kernels when it disagrees",
          "[gpu][flash_coopmat][self_check]") {
    // With the test hook, the automatic choice treats this device as having cooperative matrices and runs the
    // emulated kernel; each section has its own Context, so the self-check runs afresh on its device.
    const ops::CoopmatTestScope hooks;
    const Case c{1, 4, 2, 21, 45, 40, true, 0, false, false, DType::f16};
    const Inputs in = make_inputs(c);
    Context ctx;
    const ops::FlashCoopmatConfig cfg = ops::flash_coopmat_config(ctx.device(), uint32_t(c.D), true);
    const std::string key = ops::pipeline_key(cfg.kernel(), cfg.specialization(uint32_t(c.D)));
    auto& verdicts = ops::runtime(ctx).device().self_checks();
    const Bound bound = coopmat_bound(c, 1.0);

    SECTION("the kernel agrees: automatic runs it, no warning") {
        const auto got = run_flash(ctx, c, in, {});
        REQUIRE(verdicts.count(key) == 1);
        CHECK(verdicts.at(key));
        CHECK(ctx.warnings().empty());
        const auto cmp = compare(got, in.ref, bound.atol, bound.rtol);
        INFO(cmp.describe());
        CHECK(cmp.ok);
    }
    SECTION("a forced mismatch: the scalar kernels run, one warning names the kernel and the error") {
        ops::corrupt_self_checks_for_testing(true);
        for (int run = 0; run < 2; ++run) {  // the second run reuses the verdict: no second check, no second warning
            const auto got = run_flash(ctx, c, in, {});
            const auto cmp = compare(got, in.ref, atol_for(c.dtype), rtol_for(c.dtype));  // the scalar kernels' bound
            INFO(cmp.describe());
            CHECK(cmp.ok);
        }
        REQUIRE(verdicts.count(key) == 1);
        CHECK_FALSE(verdicts.at(key));
        const auto warnings = ctx.warnings();
        REQUIRE(warnings.size() == 1);
        VKATTN_REQUIRE_CONTAINS(warnings[0], key + " failed its self-check against the CPU reference: element 0 is ");
        VKATTN_REQUIRE_CONTAINS(warnings[0], "; using the scalar kernels on this device");
        CHECK(warnings[0].find('\n') == std::string::npos);
    }
    SECTION("f32 tensors never take it") {
        const Case c32{1, 2, 2, 9, 9, 16};
        const Inputs in32 = make_inputs(c32);
        const auto got = run_flash(ctx, c32, in32, {});
        CHECK(compare(got, in32.ref, atol_for(c32.dtype), rtol_for(c32.dtype)).ok);
        CHECK(verdicts.empty());
    }
}
