// bf16 through the public API: tensors store it (round to nearest even) and give it back exactly; matmul takes
// it as weights (tests/ops/test_matmul.cpp); attention, whose kernels are f32 and f16 only, refuses it.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/context.hpp>
#include <vkattn/tensor.hpp>

#include <vector>

using namespace vkattn;

TEST_CASE("bf16 tensors round-trip what bf16 holds", "[gpu][bf16]") {
    Context& ctx = test::gpu();
    const std::vector<float> values = {1.0f, -2.5f, 1.0f + 1.0f / 256, 70000.0f, 1e30f, -0.0f, 3.0e38f};
    Tensor t(ctx, {int64_t(values.size())}, values, DType::bf16);
    CHECK(t.bytes() == values.size() * 2);
    const auto back = t.download();
    for (size_t i = 0; i < values.size(); ++i) {
        INFO("value " << values[i]);
        CHECK(back[i] == round_to_dtype(values[i], DType::bf16));
    }
    CHECK(back[2] == 1.0f);       // the tie goes to the even neighbour
    CHECK(back[3] == 70144.0f);   // 8 mantissa bits
}

TEST_CASE("attention refuses bf16 tensors", "[gpu][bf16][errors]") {
    Context& ctx = test::gpu();
    Tensor q(ctx, {1, 2, 4, 64}, DType::bf16), out(ctx, {1, 2, 4, 64}, DType::bf16);
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { attention(ctx, q, q, q, out); }), "not bf16");
}
