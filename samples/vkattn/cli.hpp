// Pieces shared by the subcommands of the vkattn CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <vkattn/context.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vkattn::cli {

// Exit codes: 0 success, 1 a --check found a mismatch, 2 bad input or an error the user can act on.
constexpr int kOk = 0;
constexpr int kMismatch = 1;
constexpr int kBadInput = 2;

// Each subcommand registers itself and returns the function that runs it.
using Runner = std::function<int()>;
Runner add_devices(CLI::App& app);
Runner add_attention(CLI::App& app);
Runner add_demo(CLI::App& app);

// Options every GPU subcommand takes.
struct DeviceOption {
    std::string device;
    void add_to(CLI::App& cmd);
    ContextOptions context_options(bool profile = false) const;
};

// Seeded uniform values in [lo, hi), identical on every platform.
std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

struct ErrorStats {
    double max_abs = 0;
    double max_rel = 0;       // relative to max(|ref|, 1e-6)
    size_t worst = 0;
    size_t bad = 0;           // elements beyond atol + rtol·|ref|, NaN included
};
ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol);

// Prints a rows × cols matrix with a label, for the demo's step-by-step output.
void print_matrix(const std::string& label, const std::vector<float>& m, int rows, int cols, int width = 9);

}  // namespace vkattn::cli
