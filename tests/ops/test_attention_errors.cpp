// Bad input to attention gives a vkattn::Error that names the problem, never a crash or a validation message.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/tensor.hpp>
#include <vkattn/units.hpp>

#include <vector>

using namespace vkattn;
#ifdef VKATTN_CATCH3
using Catch::Approx;
#endif
using vkattn::test::error_message;
using vkattn::test::gpu;

TEST_CASE("attention rejects bad shapes and dtypes with a message naming them", "[gpu][attention][errors]") {
    Context& ctx = gpu();
    Tensor q(ctx, {1, 12, 8, 64}), k(ctx, {1, 8, 8, 64}), v(ctx, {1, 8, 8, 64}), out(ctx, {1, 12, 8, 64});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q, k, v, out); }),
                            "K has 8 heads, which does not divide the 12 query heads");

    Tensor q257(ctx, {2, 3, 257}), k257(ctx, {2, 3, 257});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q257, k257, k257, q257); }),
                            "head dim D = 257 is not supported; it must be 1 to 256");

    Tensor q4(ctx, {2, 10, 64}), k4(ctx, {2, 11, 64}), v4(ctx, {2, 12, 64}), o4(ctx, {2, 10, 64});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k4, v4, o4); }), "V has shape [1, 2, 12, 64]");

    Tensor kd(ctx, {2, 11, 32});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, kd, kd, o4); }), "K has head dim 32");

    Tensor ob(ctx, {2, 9, 64});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k4, k4, ob); }), "the output has shape");

    Tensor kb(ctx, {3, 2, 11, 64});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, kb, kb, o4); }), "K has batch 3");

    if (ctx.device().storage_16bit) {
        Tensor k16(ctx, {2, 11, 64}, DType::f16);
        VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k16, k16, o4); }), "Q is f32 but K is f16");
    }

    Tensor flat(ctx, {640});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, flat, k4, k4, o4); }), "Q must be [B, heads, L, D]");

    VKATTN_REQUIRE_CONTAINS(error_message([&] {
                                attention(ctx, TensorView(q4, {2, 10, 64}, {640, 64, 2}), k4, k4, o4);
                            }),
                            "contiguous in D");
    VKATTN_REQUIRE_CONTAINS(error_message([&] {
                                attention(ctx, TensorView(q4, {2, 10, 64}, {640, 64, 1}, 64), k4, k4, o4);
                            }),
                            "reaches element");
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k4, k4, o4, {.window = -1}); }), "window");

    Tensor mask(ctx, {10, 10});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k4, k4, o4, {.additive_mask = &mask}); }),
                            "additive mask must be f32 [Lq, Lk] = [10, 11]");
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q4, k4, k4, o4, {.key_padding_mask = &mask}); }),
                            "key-padding mask must be f32 [B, Lk] = [1, 11]");

    Tensor scores(ctx, {1, 2, 10, 10});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention_scores(ctx, q4, k4, scores); }),
                            "scores must be f32 [1, 2, 10, 11]");
}

TEST_CASE("work beyond the device's limits is refused with the limit named", "[gpu][attention][errors]") {
    Context& ctx = gpu();
    const DeviceInfo& dev = ctx.device();
    // L = 16384 with 12 heads needs 12 GiB of scores in the three-kernel path: refused, not attempted (the fused
    // path needs no scores; test_flash.cpp covers splitting its work across dispatches).
    const int64_t L = 16384;
    const uint64_t need = uint64_t(12) * L * L * 4;
    if (need <= std::min(dev.device_heap_bytes, dev.max_memory_allocation)) {
        WARN("device " << dev.name << " can hold " << need << " bytes of scores; the refusal is not exercised");
        return;
    }
    Tensor q(ctx, {1, 12, L, 64}), out(ctx, {1, 12, L, 64});
    VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q, q, q, out, {.impl = AttentionImpl::naive}); }),
                            "three-kernel attention needs " + bytes_str(need) + " for the");
}

// llvmpipe ends an invocation's loops after 65,535 iterations in all, silently: the three-kernel path's P·V walks
// Lk in steps of a tile, so past the device's loop budget it is refused (before, Lk = 1.2M gave wrong numbers on
// lavapipe with exit 0). Devices without a budget run the case.
TEST_CASE("the three-kernel attention refuses more keys than the device's loops can walk", "[gpu][attention][errors]") {
    Context& ctx = gpu();
    const int64_t Lk = 1200000;
    Tensor q(ctx, {1, 1, 1, 4}, std::vector<float>(4, 0.5f)), out(ctx, {1, 1, 1, 4});
    Tensor kv(ctx, {1, 1, Lk, 4}, std::vector<float>(size_t(Lk) * 4, 0.25f));
    const auto run = [&] { attention(ctx, q, kv, kv, out, {.impl = AttentionImpl::naive}); };
    if (ctx.device().type == "cpu") {
        VKATTN_REQUIRE_CONTAINS(error_message(run), "the three-kernel attention's P·V over 1200000 keys needs about");
    } else {
        run();  // every key 0.25: the output is 0.25 wherever the sums are right
        for (const float x : out.download()) CHECK(x == Approx(0.25f).epsilon(1e-5));
    }
}

TEST_CASE("an unknown device is refused with the candidates listed", "[gpu][errors]") {
    ContextOptions options;
    options.device = "no-such-gpu-xyz";
    const std::string msg = error_message([&] { Context ctx(options); });
    VKATTN_REQUIRE_CONTAINS(msg, "no Vulkan device matches 'no-such-gpu-xyz'");
    VKATTN_REQUIRE_CONTAINS(msg, "0: ");
}
