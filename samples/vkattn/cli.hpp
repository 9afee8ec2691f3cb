// Pieces shared by the subcommands of the vkattn CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <vkattn/context.hpp>
#include <vkattn/model/gpt2_cpu.hpp>
#include <vkattn/model/gpt2_gpu.hpp>
#include <vkattn/model/gpt2_weights.hpp>
#include <vkattn/model/tokenizer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
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

// The shape and weights of synthetic models: GPT-2 small unless --model synthetic:LAYERS,HEADS,EMBD says
// otherwise; weights ~ N(0, 0.02) as GPT-2's initialisation, from a fixed seed so every run is the same model.
constexpr uint64_t kSyntheticSeed = 124;
constexpr float kSyntheticStddev = 0.02f;

// What --model names: a Hugging Face GPT-2 directory or synthetic[:LAYERS,HEADS,EMBD]. The config is read
// first, so that a prompt can be checked against it before gigabytes of weights are read.
struct ModelSource {
    std::string spec;
    bool synthetic = false;
    std::filesystem::path dir;  // empty for synthetic models
    model::Gpt2Config config;
};
ModelSource resolve_model(const std::string& spec);
model::Gpt2Weights load_weights(const ModelSource& source);
// The directory's vocab.json and merges.txt. For a synthetic model throws Error saying that `what` needs a
// tokenizer, followed by `instead` (what to do) when given.
model::Tokenizer load_tokenizer(const ModelSource& source, const std::string& what, const std::string& instead = "");

// Options of the subcommands that run GPT-2.
struct ModelOptions {
    std::string model;
    std::string backend = "vulkan";
    std::string dtype = "f32";
    std::string attention = "fused";
    DeviceOption device;
    // --model (required), --dtype, --attention, --device, and --backend when with_backend.
    void add_to(CLI::App& cmd, bool with_backend = true);
    model::Gpt2GpuOptions gpu_options() const;
};

// GPT-2 on one backend behind one interface: the CPU reference (Gpt2Cpu) or the GPU model (Gpt2Gpu with its
// own Context). Keeps a reference to the weights, which the caller keeps alive.
class LanguageModel {
public:
    LanguageModel(const model::Gpt2Weights& weights, const std::string& backend, const ModelOptions& options,
                  bool profile = false);
    ~LanguageModel();
    LanguageModel(const LanguageModel&) = delete;
    LanguageModel& operator=(const LanguageModel&) = delete;

    // Logits [T, V] of the new tokens, or [1, V] of the last one when all_logits is false.
    std::vector<float> forward(std::span<const int> tokens, bool all_logits = true);
    void reset();
    int position() const;
    const model::Gpt2Config& config() const { return config_; }
    Context* context() { return ctx_.get(); }  // null on the CPU
    std::string description() const;           // "vulkan on <device>, f32 weights, fused attention"

private:
    model::Gpt2Config config_;
    std::string description_;
    std::unique_ptr<Context> ctx_;
    std::unique_ptr<model::Gpt2Gpu> gpu_;
    std::unique_ptr<model::Gpt2Cpu> cpu_;
};

// True when stderr is a terminal, so progress lines may be redrawn in place.
bool stderr_is_terminal();

}  // namespace vkattn::cli
