// Host-side storage conversions: f32 → bf16 rounding and NaN, and the checked f16 and bf16 conversions that
// refuse a value the format cannot hold, naming the tensor.
#include "catch.hpp"

#include "cpu/half.hpp"
#include "support.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

using namespace vkattn;
#ifdef VKATTN_CATCH3
using Catch::Approx;
#endif

TEST_CASE("float_to_bf16 rounds to nearest even and keeps NaN a NaN", "[cpu]") {
    // 1 + 2^-8 lies halfway between the bf16 neighbours 1 and 1 + 2^-7: ties go to the even one, 1.
    CHECK(cpu::float_to_bf16(1.0f + 1.0f / 256) == 0x3f80u);
    // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
    CHECK(cpu::float_to_bf16(1.0f + 3.0f / 256) == 0x3f82u);
    // Just past halfway rounds up.
    CHECK(cpu::float_to_bf16(std::nextafter(1.0f + 1.0f / 256, 2.0f)) == 0x3f81u);
    CHECK(cpu::float_to_bf16(-2.0f) == 0xc000u);
    CHECK(cpu::float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80u);
    // A NaN whose payload lives only in the low 16 bits would truncate to infinity; it must stay a NaN.
    const uint32_t low_nan_bits = 0x7f800001u;
    float low_nan;
    std::memcpy(&low_nan, &low_nan_bits, 4);
    CHECK(std::isnan(cpu::bf16_to_float(cpu::float_to_bf16(low_nan))));
    CHECK(std::isnan(cpu::bf16_to_float(cpu::float_to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
    // Every bf16 value widens and narrows back to itself.
    for (uint32_t b = 0; b < 0x10000u; ++b) {
        const float f = cpu::bf16_to_float(uint16_t(b));
        if (!std::isnan(f)) REQUIRE(cpu::float_to_bf16(f) == b);
    }
}

TEST_CASE("floats_to_half refuses a value past 65504 by the tensor's name, keeps inf and NaN", "[cpu]") {
    std::vector<float> ok = {0.5f, -65504.0f, 65519.0f, std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN()};
    std::vector<uint16_t> out(ok.size());
    cpu::floats_to_half(ok, out.data(), "weight w");
    CHECK(out[0] == 0x3800u);
    CHECK(out[1] == 0xfbffu);  // −65504, f16's largest magnitude
    CHECK(out[2] == 0x7bffu);  // 65519 still rounds down to 65504
    CHECK(out[3] == 0x7c00u);  // an infinity in the data stays one
    CHECK((out[4] & 0x7c00u) == 0x7c00u);
    CHECK((out[4] & 0x03ffu) != 0u);

    std::vector<float> big = {1.0f, 2.0f, -70000.0f, 3.0f};
    std::vector<uint16_t> out2(big.size());
    const std::string message = test::error_message(
        [&] { cpu::floats_to_half(big, out2.data(), "weight model.layers.3.mlp.down_proj.weight"); });
    VKATTN_REQUIRE_CONTAINS(message, "weight model.layers.3.mlp.down_proj.weight holds -70000 at index 2");
    VKATTN_REQUIRE_CONTAINS(message, "f16's largest finite value 65504");
    // 65520 is the first float that rounds to f16 infinity.
    std::vector<float> edge = {65520.0f};
    CHECK(!test::error_of([&] { cpu::floats_to_half(edge, out2.data(), "t"); }).empty());

    // A very long name is cut short in the message.
    const std::string long_name(500, 'x');
    CHECK(test::error_message([&] { cpu::floats_to_half(big, out2.data(), long_name); }).size() < 300);
}

TEST_CASE("floats_to_bf16 converts f32's whole range but the last sliver, refused by name", "[cpu]") {
    std::vector<float> ok = {70000.0f, -1e38f, 1.0f + 1.0f / 256};
    std::vector<uint16_t> out(ok.size());
    cpu::floats_to_bf16(ok, out.data(), "weight w");
    CHECK(cpu::bf16_to_float(out[0]) == 70144.0f);  // 8 bits of mantissa: 70000 → 70144
    CHECK(cpu::bf16_to_float(out[1]) == Approx(-1e38).epsilon(1e-2));
    CHECK(out[2] == 0x3f80u);
    std::vector<float> max = {std::numeric_limits<float>::max()};
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { cpu::floats_to_bf16(max, out.data(), "lm_head.weight"); }),
                            "lm_head.weight holds 3.40282347e+38 at index 0, beyond bf16's largest");
}
