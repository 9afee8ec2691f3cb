// The self-check verdicts and their warnings (ops/self_check.hpp).
#include "ops/self_check.hpp"

#include <vkattn/error.hpp>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace vkattn::ops {
namespace {

std::atomic<bool> corrupt{false};
std::atomic<bool> emulate{false};

// n / 64 for |n| <= 64 as fp16 bits.
uint16_t half_of_64ths(int n) {
    if (n == 0) return 0;
    const uint32_t a = uint32_t(std::abs(n));
    const uint32_t e = uint32_t(std::bit_width(a)) - 1;  // a = 2^e · 1.m, so n / 64 = ±2^(e - 6) · 1.m
    return uint16_t((n < 0 ? 0x8000u : 0u) | ((e + 9) << 10) | ((a << (10 - e)) & 0x3ffu));
}

float half_to_float(uint16_t h) {
    const uint32_t e = (h >> 10) & 31u, m = h & 0x3ffu;
    const float v = e == 0 ? std::ldexp(float(m), -24)
                  : e == 31 ? (m != 0 ? NAN : INFINITY)
                            : std::ldexp(float(m | 0x400u), int(e) - 25);
    return (h & 0x8000u) != 0 ? -v : v;
}

std::atomic<decltype(&reference::attention)> g_attention{nullptr};
std::atomic<decltype(&reference::matmul)> g_matmul{nullptr};

}  // namespace

void set_check_reference(const CheckReference& r) {
    g_attention = r.attention;
    g_matmul = r.matmul;
}

CheckReference check_reference() {
    const CheckReference r{g_attention.load(), g_matmul.load()};
    if (r.attention == nullptr || r.matmul == nullptr) {
        throw Error("internal: the self-checks' CPU reference was not handed over (made without a Context?)");
    }
    return r;
}

void emulate_coopmat_for_testing(bool on) { emulate = on; }
bool coopmat_emulated_for_testing() { return emulate; }

CheckValues check_values(size_t n, uint32_t seed) {
    CheckValues v;
    v.f32.resize(n);
    v.f16.assign((n + 1) / 2 * 2, 0);
    uint32_t state = seed;
    for (size_t i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;  // a fixed LCG: the same case everywhere
        v.f16[i] = half_of_64ths(int((state >> 16) % 129) - 64);
        v.f32[i] = half_to_float(v.f16[i]);
    }
    return v;
}

std::vector<float> halves_to_floats(const std::vector<uint16_t>& h, size_t n) {
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
    return out;
}

void corrupt_self_checks_for_testing(bool on) { corrupt = on; }
bool self_checks_corrupted_for_testing() { return corrupt; }

std::string pipeline_key(const std::string& name, const std::vector<uint32_t>& spec) {
    std::ostringstream key;  // (not string concatenation: GCC 12 warns falsely about it, -Wrestrict)
    key << name << ' ';
    for (size_t i = 0; i < spec.size(); ++i) key << (i ? "," : "") << spec[i];
    return key.str();
}

std::string compare_for_self_check(const std::vector<float>& got, const std::vector<float>& ref, double atol,
                                   double rtol) {
    if (got.size() != ref.size()) {
        return std::to_string(got.size()) + " values where the reference has " + std::to_string(ref.size());
    }
    size_t worst = 0;
    double worst_excess = 0;
    bool bad = false;
    for (size_t i = 0; i < got.size(); ++i) {
        const double g = got[i], r = ref[i], bound = atol + rtol * std::abs(r);
        double excess = 0;
        if (std::isnan(r) || std::isnan(g)) {
            excess = std::isnan(r) == std::isnan(g) ? 0 : INFINITY;
        } else {
            excess = std::abs(g - r) > bound ? std::abs(g - r) - bound : 0;
            if (!std::isfinite(g)) excess = INFINITY;
        }
        if (excess > 0 && (!bad || excess > worst_excess)) {
            bad = true;
            worst = i;
            worst_excess = excess;
        }
    }
    if (!bad) return {};
    std::ostringstream s;
    s << "element " << worst << " is " << got[worst] << " where the reference has " << ref[worst] << " (bound "
      << atol + rtol * std::abs(double(ref[worst])) << ")";
    return s.str();
}

bool self_checked(vk::Device& device, const std::string& key, const std::function<std::string()>& check) {
    auto& verdicts = device.self_checks();
    if (const auto it = verdicts.find(key); it != verdicts.end()) return it->second;
    std::string failure;
    try {
        failure = check();
    } catch (const Error& e) {
        failure = e.what();
    }
    verdicts[key] = failure.empty();
    if (!failure.empty()) {
        device.warn(key + " failed its self-check against the CPU reference: " + failure +
                    "; using the scalar kernels on this device");
    }
    return failure.empty();
}

}  // namespace vkattn::ops
