// Shared by the attention tests: a test case (shape, masks, dtype), its seeded inputs and CPU reference output,
// and the tolerances of a GPU result against it.
#pragma once

#include "cpu/attention.hpp"
#include "cpu/half.hpp"
#include "support.hpp"

#include <vkattn/dtype.hpp>

#include <algorithm>
#include <cmath>
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

}  // namespace vkattn::test
