// The self-check verdicts and their warnings (ops/self_check.hpp).
#include "ops/self_check.hpp"

#include <vkattn/error.hpp>

#include <atomic>
#include <cmath>
#include <sstream>

namespace vkattn::ops {
namespace {
std::atomic<bool> corrupt{false};
}  // namespace

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
