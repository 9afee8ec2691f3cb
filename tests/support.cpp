#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

namespace vkattn::test {
namespace {
std::unique_ptr<Context> g_context;
}

Context& gpu() {
    if (!g_context) g_context = std::make_unique<Context>();
    return *g_context;
}

void release_gpu() { g_context.reset(); }

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
    std::vector<float> out(n);
    uint64_t state = seed;
    for (auto& x : out) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x = lo + (hi - lo) * float(double(z >> 11) * 0x1.0p-53);
    }
    return out;
}

uint64_t seed_of(const std::string& text) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol) {
    Comparison c;
    if (got.size() != ref.size()) {
        c.ok = false;
        c.bad = std::max(got.size(), ref.size());
        return c;
    }
    double worst_excess = -1;
    for (size_t i = 0; i < got.size(); ++i) {
        const double g = got[i], r = ref[i];
        const double diff = std::abs(g - r);
        const bool finite = std::isfinite(g) && std::isfinite(r);
        const bool same_special = !finite && (std::isnan(g) == std::isnan(r)) && (std::isnan(g) || g == r);
        const bool pass = finite ? diff <= atol + rtol * std::abs(r) : same_special;
        if (finite) {
            c.max_abs = std::max(c.max_abs, diff);
            if (std::abs(r) > atol) c.max_rel = std::max(c.max_rel, diff / std::abs(r));
        }
        const double excess = finite ? diff - (atol + rtol * std::abs(r)) : (pass ? -1 : 1e300);
        if (excess > worst_excess) {
            worst_excess = excess;
            c.worst_index = i;
            c.worst_got = got[i];
            c.worst_ref = ref[i];
        }
        if (!pass) {
            ++c.bad;
            c.ok = false;
        }
    }
    return c;
}

std::string Comparison::describe() const {
    std::ostringstream s;
    s << (ok ? "match" : "MISMATCH") << ": " << bad << " elements out of tolerance; max |diff| " << max_abs
      << ", max rel " << max_rel << "; worst at index " << worst_index << ": got " << worst_got << ", ref "
      << worst_ref;
    return s.str();
}

TempDir::TempDir(std::string_view tag) {
    static std::atomic<uint64_t> counter{0};
    std::random_device rd;
    const uint64_t salt = (uint64_t(rd()) << 32) ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    for (int attempt = 0;; ++attempt) {
        path_ = std::filesystem::temp_directory_path() /
                ("vkattn-" + std::string(tag) + "-" + std::to_string(salt) + "-" + std::to_string(counter++));
        if (std::filesystem::create_directory(path_)) break;
        if (attempt > 100) throw std::runtime_error("test: cannot create a temporary directory");
    }
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::string& name, const std::string& contents) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file;
}

}  // namespace vkattn::test
