// IEEE binary16 and bfloat16 conversions, round to nearest even, for storage conversion on the host.
#pragma once

#include <vkattn/error.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace vkattn::cpu {

inline float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
            mant &= 0x3ffu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds past 65504: infinity
    if (abs < 0x38800000u) {                                   // below 2^-14: subnormal or zero
        if (abs < 0x33000000u) return sign;                    // below half the smallest subnormal
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t s = 126 - e;                            // 14..24: brings the value to units of 2^-24
        uint32_t v = m >> s;
        const uint32_t rem = m & ((1u << s) - 1u);
        const uint32_t halfway = 1u << (s - 1);
        if (rem > halfway || (rem == halfway && (v & 1u))) ++v;
        return uint16_t(sign | v);
    }
    uint32_t v = ((abs >> 13) - ((127u - 15u) << 10));
    const uint32_t rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
    return uint16_t(sign | v);
}

inline float bf16_to_float(uint16_t b) {
    const uint32_t bits = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t float_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // keep NaN a NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return uint16_t(x >> 16);
}

namespace detail {
// "`what` holds <value> at index i, beyond <format>'s largest finite value <max>; <advice>", what cut short.
[[noreturn]] inline void throw_out_of_range(std::string_view what, size_t i, float value, const char* format,
                                            const char* max, const char* advice) {
    std::string name(what.substr(0, 120));
    if (what.size() > 120) name += "...";
    char v[32];
    std::snprintf(v, sizeof v, "%.9g", double(value));
    throw Error(name + " holds " + v + " at index " + std::to_string(i) + ", beyond " + format +
                "'s largest finite value " + max + "; " + advice);
}
}  // namespace detail

// out [n] = in [n] as f16 bits. A finite value that would round to infinity (|x| >= 65520) is refused with a
// vkattn::Error naming `what` (e.g. "weight model.layers.3.mlp.down_proj.weight"), the index and the value,
// instead of turning into inf; inf and NaN already in the data are kept as they are.
inline void floats_to_half(std::span<const float> in, uint16_t* out, std::string_view what) {
    for (size_t i = 0; i < in.size(); ++i) {
        const uint16_t h = float_to_half(in[i]);
        if ((h & 0x7fffu) == 0x7c00u && std::isfinite(in[i])) {
            detail::throw_out_of_range(what, i, in[i], "f16", "65504", "store it as f32 or bf16");
        }
        out[i] = h;
    }
}

// out [n] = in [n] as bf16 bits, the same way: only the few floats above bf16's largest finite value
// (3.3895e38) would overflow, and they are refused by name too.
inline void floats_to_bf16(std::span<const float> in, uint16_t* out, std::string_view what) {
    for (size_t i = 0; i < in.size(); ++i) {
        const uint16_t b = float_to_bf16(in[i]);
        if ((b & 0x7fffu) == 0x7f80u && std::isfinite(in[i])) {
            detail::throw_out_of_range(what, i, in[i], "bf16", "3.3895e38", "store it as f32");
        }
        out[i] = b;
    }
}

}  // namespace vkattn::cpu
