#include "cli.hpp"

#include <cmath>
#include <cstdio>

namespace vkattn::cli {

void DeviceOption::add_to(CLI::App& cmd) {
    cmd.add_option("--device", device, "GPU to use: index or name substring (default: $VKATTN_DEVICE, else the best)");
}

ContextOptions DeviceOption::context_options(bool profile) const {
    ContextOptions o;
    o.device = device;
    o.profile = profile;
    return o;
}

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
    std::vector<float> out(n);
    uint64_t state = seed;
    for (auto& x : out) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);  // splitmix64
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x = lo + (hi - lo) * float(double(z >> 11) * 0x1.0p-53);
    }
    return out;
}

ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol) {
    ErrorStats s;
    for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
        const double d = std::abs(double(got[i]) - ref[i]);
        if (!(d <= atol + rtol * std::abs(double(ref[i])))) ++s.bad;  // NaN counts as bad
        if (d > s.max_abs || std::isnan(d)) {
            s.max_abs = std::isnan(d) ? INFINITY : d;
            s.worst = i;
        }
        s.max_rel = std::max(s.max_rel, d / std::max(std::abs(double(ref[i])), 1e-6));
    }
    if (got.size() != ref.size()) s.bad += 1;
    return s;
}

void print_matrix(const std::string& label, const std::vector<float>& m, int rows, int cols, int width) {
    std::printf("%s\n", label.c_str());
    for (int r = 0; r < rows; ++r) {
        std::printf("  [");
        for (int c = 0; c < cols; ++c) std::printf("%*.*g", width, 6, double(m[size_t(r) * cols + c]));
        std::printf(" ]\n");
    }
}

}  // namespace vkattn::cli
