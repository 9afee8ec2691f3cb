// Pieces shared by the subcommands of the vkattn CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <vkattn/context.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/tokenizer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
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
Runner add_forward(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_perplexity(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_info(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_bench_gpt(CLI::App& bench);  // `bench gpt`, registered by add_bench

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

// Milliseconds of wall-clock time since t0.
double ms_since(std::chrono::steady_clock::time_point t0);
// Sum of the per-dispatch GPU times of the context's last profiled call.
double gpu_ms(const Context& ctx);
double median(std::vector<double> v);

// "464,3797,13" -> ids; throws Error naming the option and the entry that is not an integer.
std::vector<int> parse_ids(const std::string& list, const std::string& option);
// ids -> "464,3797,13"
std::string join_ids(std::span<const int> ids);

// Options of the subcommands that run a language model.
struct ModelOptions {
    std::string model;
    std::string backend = "vulkan";
    std::string dtype = "f32";
    std::string attention = "fused";
    DeviceOption device;
    // --model (required), --dtype, --attention, --device, and --backend when with_backend.
    void add_to(CLI::App& cmd, bool with_backend = true);
    model::ModelOptions options(bool profile = false) const;
    // open_model(--model, backend (default: --backend), the options above).
    std::unique_ptr<model::LanguageModel> open(const std::string& backend = "", bool profile = false) const;
};

// The model's tokenizer; throws Error saying that `what` needs one, followed by `instead` (what to do), when
// the model has none (synthetic models, directories without tokenizer files).
const model::Tokenizer& need_tokenizer(const model::LanguageModel& lm, const std::string& what,
                                       const std::string& instead = "");

// Throws Error unless every id is in [0, info.vocab_size) and there are at most info.context_length of them.
void check_prompt(std::span<const int> ids, const model::ModelInfo& info, const std::string& option);

// True when stderr is a terminal, so progress lines may be redrawn in place.
bool stderr_is_terminal();

}  // namespace vkattn::cli
