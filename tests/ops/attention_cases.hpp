// Shared by the attention tests: a test case (shape, masks, dtype), its seeded inputs and CPU reference output,
// and the tolerances of a GPU result against it.
#pragma once

#include "cpu/attention.hpp"
#include "cpu/half.hpp"
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/dtype.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace vkattn::test {

struct Case {
    int B, H, Hkv, Lq, Lk, D;
    bool causal = false;
    int window = 0;
    bool padding = false;
    bool additive = false;
    DType dtype = DType::f32;

    std::string name() const {
        std::ostringstream s;
        s << "B" << B << " H" << H << " Hkv" << Hkv << " Lq" << Lq << " Lk" << Lk << " D" << D
          << (causal ? " causal" : "") << (window ? " window" + std::to_string(window) : "")
          << (padding ? " padding" : "") << (additive ? " additive" : "") << " " << dtype_name(dtype);
        return s.str();
    }
};

inline std::vector<float> round_to(DType t, std::vector<float> v) {
    if (t == DType::f16) {
        for (float& x : v) x = cpu::half_to_float(cpu::float_to_half(x));
    }
    return v;
}

struct Inputs {
    cpu::AttentionShape shape;
    std::vector<float> q, k, v, additive, padding, ref;
    cpu::AttentionMask mask;
};

inline Inputs make_inputs(const Case& c) {
    Inputs in;
    in.shape = {c.B, c.H, c.Hkv, c.Lq, c.Lk, c.D};
    const uint64_t seed = seed_of(c.name());
    // Spread of ±2 makes softmax rows far from uniform, so a wrong scale or mask shows.
    in.q = round_to(c.dtype, random_values(size_t(c.B) * c.H * c.Lq * c.D, seed, -2, 2));
    in.k = round_to(c.dtype, random_values(size_t(c.B) * c.Hkv * c.Lk * c.D, seed + 1, -2, 2));
    in.v = round_to(c.dtype, random_values(size_t(c.B) * c.Hkv * c.Lk * c.D, seed + 2, -1, 1));
    if (c.additive) {
        in.additive = random_values(size_t(c.Lq) * c.Lk, seed + 3, -1, 1);
        // Row 1 fully hidden by -inf: it must come out as zeros, not NaN.
        if (c.Lq > 1) std::fill_n(in.additive.begin() + c.Lk, c.Lk, -std::numeric_limits<float>::infinity());
    }
    if (c.padding) {
        // Batch b pads its last b + 1 keys; with Lk = 1 that hides every key of a row (zeros expected).
        in.padding.assign(size_t(c.B) * c.Lk, 0.0f);
        for (int b = 0; b < c.B; ++b)
            for (int j = std::max(0, c.Lk - b - 1); j < c.Lk; ++j) in.padding[size_t(b) * c.Lk + j] = 1.0f;
    }
    in.mask.causal = c.causal;
    in.mask.window = c.window;
    in.mask.additive = c.additive ? in.additive.data() : nullptr;
    in.mask.key_padding = c.padding ? in.padding.data() : nullptr;
    in.ref.resize(size_t(c.B) * c.H * c.Lq * c.D);
    cpu::attention(in.shape, in.mask, in.q.data(), in.k.data(), in.v.data(), 0, in.ref.data());
    return in;
}

// fp32 storage: errors are fp32 rounding in D-long dot products and Lk-long sums (and exp2 against double exp),
// well under 1e-4 for these magnitudes. fp16 storage: inputs are fp16-exact, but the output is rounded to fp16
// (relative 2^-11 ≈ 4.9e-4), so 2e-3 absolute plus 2e-3 relative.
inline double atol_for(DType t) { return t == DType::f16 ? 2e-3 : 1e-4; }
inline double rtol_for(DType t) { return t == DType::f16 ? 2e-3 : 1e-4; }

// Rows the reference leaves with no visible key must be exactly zero, and nothing may be NaN or inf.
inline void check_masked_rows(const Case& c, const Inputs& in, const std::vector<float>& got) {
    for (float x : got) REQUIRE(std::isfinite(x));
    for (int b = 0; b < c.B; ++b)
        for (int i = 0; i < c.Lq; ++i) {
            bool any = false;
            for (int j = 0; j < c.Lk && !any; ++j) {
                const bool hidden = c.additive && std::isinf(in.additive[size_t(i) * c.Lk + j]);
                any = cpu::key_visible(in.shape, in.mask, b, i, j) && !hidden;
            }
            if (any) continue;
            for (int h = 0; h < c.H; ++h)
                for (int d = 0; d < c.D; ++d) REQUIRE(got[((size_t(b) * c.H + h) * c.Lq + i) * c.D + d] == 0.0f);
        }
}

// One NaN planted in q, K or V of a causal case, Lq = 6 against Lk = 20 (query i sees keys j <= i + 14) or Lq = 25
// (queries 0..4 see no key at all), key 19 padded, 2 query heads on 1 K/V head, D = 8; `is_nan(h, i, d)` says
// which outputs the math makes NaN (a NaN score: the whole row; a NaN in V: its column, in the rows that see the
// key); every other output must match the clean math.
struct NanPlant {
    const char* what;
    int Lq;
    char tensor;  // 'q', 'k' or 'v'
    int head, row, d;
    bool (*is_nan)(int h, int i, int d);

    Case with(DType dtype) const { return {1, 2, 1, Lq, 20, 8, true, 0, true, false, dtype}; }
};
inline const NanPlant kNanPlants[] = {
    {"NaN in q of (h 1, i 2)", 6, 'q', 1, 2, 3, [](int h, int i, int) { return h == 1 && i == 2; }},
    {"NaN in K of key 16", 6, 'k', 0, 16, 0, [](int, int i, int) { return i >= 2; }},
    {"NaN in V of key 17", 6, 'v', 0, 17, 7, [](int, int i, int d) { return i >= 3 && d == 7; }},
    {"NaN in K of padded key 19", 6, 'k', 0, 19, 1, [](int, int, int) { return false; }},
    {"NaN in V of padded key 19", 6, 'v', 0, 19, 2, [](int, int, int) { return false; }},
    {"NaN in q of fully masked row 2", 25, 'q', 0, 2, 0, [](int, int, int) { return false; }},
    {"NaN in V of key 0, rows 0..4 masked", 25, 'v', 0, 0, 5, [](int, int i, int d) { return i >= 5 && d == 5; }}};

// An output of inputs with a planted NaN (batch 1): NaN exactly where `is_nan(h, i, d)` says, zeros in rows with no
// visible key, and the clean math (the reference) everywhere else, within atol + rtol · |ref| (by default the
// scalar kernels' bounds for c.dtype).
inline void check_planted_nan(const Case& c, const Inputs& in, const std::vector<float>& got,
                              const std::function<bool(int, int, int)>& is_nan, const char* path, double atol,
                              double rtol) {
    INFO(path);
    REQUIRE(c.B == 1);
    REQUIRE(got.size() == in.ref.size());
    std::vector<float> got_clean = got, ref_clean = in.ref;
    for (int h = 0; h < c.H; ++h)
        for (int i = 0; i < c.Lq; ++i)
            for (int d = 0; d < c.D; ++d) {
                const size_t e = (size_t(h) * c.Lq + i) * c.D + size_t(d);
                INFO("h " << h << " i " << i << " d " << d << ": got " << got[e]);
                REQUIRE(std::isnan(got[e]) == is_nan(h, i, d));
                if (is_nan(h, i, d)) got_clean[e] = ref_clean[e] = 0.0f;
                if (c.Lq > c.Lk && i < c.Lq - c.Lk) REQUIRE(got[e] == 0.0f);  // no visible key: zeros
            }
    const auto cmp = compare(got_clean, ref_clean, atol, rtol);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}
inline void check_planted_nan(const Case& c, const Inputs& in, const std::vector<float>& got,
                              const std::function<bool(int, int, int)>& is_nan, const char* path) {
    check_planted_nan(c, in, got, is_nan, path, atol_for(c.dtype), rtol_for(c.dtype));
}

// The inputs of plant.with(dtype) with the NaN planted, and the reference recomputed from them.
inline Inputs planted_nan_inputs(const NanPlant& plant, DType dtype) {
    const Case c = plant.with(dtype);
    Inputs in = make_inputs(c);
    std::vector<float>& t = plant.tensor == 'q' ? in.q : plant.tensor == 'k' ? in.k : in.v;
    const int len = plant.tensor == 'q' ? c.Lq : c.Lk;
    t[(size_t(plant.head) * len + plant.row) * c.D + size_t(plant.d)] = std::numeric_limits<float>::quiet_NaN();
    cpu::attention(in.shape, in.mask, in.q.data(), in.k.data(), in.v.data(), 0, in.ref.data());
    return in;
}

}  // namespace vkattn::test
