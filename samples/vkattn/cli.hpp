// Pieces shared by the subcommands of the vkattn CLI.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <vkattn/context.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/tokenizer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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
Runner add_inspect(CLI::App& app);
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
    size_t worst = 0;         // index of max_abs
    size_t worst_rel = 0;     // index of max_rel
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
    std::string impl = "fused";  // --impl (the hidden --attention is its deprecated spelling)
    DeviceOption device;
    // --model (required), --dtype, --impl, --device, and --backend when with_backend.
    void add_to(CLI::App& cmd, bool with_backend = true);
    // Refuses GPU-only flags given with --backend cpu unless gpu_too (forward --check runs both backends), and
    // --impl given twice under its two spellings; queues the deprecation note of --attention.
    void check_flags(bool gpu_too = false) const;
    model::ModelOptions options(bool profile = false) const;
    // open_model(--model, backend (default: --backend), the options above).
    std::unique_ptr<model::LanguageModel> open(const std::string& backend = "", bool profile = false) const;

    CLI::App* cmd = nullptr;  // set by add_to, for what the command line gave
    bool impl_alias = false;  // --attention was given
};

// Prints on stderr, once each, the lines ctx has gathered in Context::warnings() (a kernel that failed its
// self-check, so that another ran in its place): the library prints nothing itself. Null: nothing.
void print_warnings(const Context* ctx);

// Loads the model like ModelOptions::open and measures how long that took (wall clock, ms). Its Context's
// warnings are printed when it closes, whichever way the command ends.
struct LoadedModel {
    std::unique_ptr<model::LanguageModel> lm;
    double load_ms = 0;

    LoadedModel() = default;
    LoadedModel(LoadedModel&&) = default;
    LoadedModel& operator=(LoadedModel&&) = default;
    ~LoadedModel();
};
LoadedModel open_timed(const ModelOptions& o, const std::string& backend = "", bool profile = false);

// The model's tokenizer; throws Error saying that `what` needs one, followed by `instead` (what to do), when
// the model has none (synthetic models, directories without tokenizer files).
const model::Tokenizer& need_tokenizer(const model::LanguageModel& lm, const std::string& what,
                                       const std::string& instead = "");

// Throws Error unless every id is in [0, info.vocab_size) and there are at most info.context_length of them.
void check_prompt(std::span<const int> ids, const model::ModelInfo& info, const std::string& option);

// The bytes of the text file that `option` names (e.g. "--file"), or of stdin for "-" when allow_stdin. Throws
// Error naming the option and the path (a prefix of it, escaped) when the path is missing, is not a regular file
// (a directory, a FIFO: never opened, so never a hang) or cannot be read.
std::string read_text_file(const std::string& option, const std::string& path, bool allow_stdin);

// True when stderr is a terminal, so progress lines may be redrawn in place.
bool stderr_is_terminal();
// True when stdin is a terminal (nothing piped in).
bool stdin_is_terminal();

// Whether the command line gave this option (not only its default).
bool given(const CLI::App& cmd, const std::string& option);
// Throws Error "`a` cannot be used with `b`: why" when both options were given.
void refuse_together(const CLI::App& cmd, const std::string& a, const std::string& b, const std::string& why);

// An option taking one of `choices`, shown as {a,b,c} in --help, with its default.
CLI::Option* add_choice(CLI::App& cmd, const std::string& name, std::string& target,
                        const std::vector<std::string>& choices, const std::string& help);
// A hidden old spelling of `option`: sets target (checked against choices) and flags `used`. The command
// calls note_deprecated when it accepts the flags, so that a refused command line still prints one line only.
CLI::Option* add_deprecated_alias(CLI::App& cmd, const std::string& alias, std::string& target,
                                  const std::vector<std::string>& choices, bool& used);
// Queues "vkattn: note: ..." for stderr; main prints the notes after the command ran (exit code 0 or 1).
void note_deprecated(const std::string& note);
const std::vector<std::string>& deprecation_notes();

// The fields every --json object carries: vkattn's version and commit, and the device and driver it ran on
// (null for the CPU reference).
nlohmann::ordered_json provenance(const Context* ctx);
// One line of JSON; bytes that are not UTF-8 (a token cut inside a character) become U+FFFD.
std::string json_line(const nlohmann::ordered_json& j);

// Progress of a long loop on stderr. On a terminal one line redrawn in place (at most 10 times a second); on a
// pipe or file plain lines: the first step, then one every `interval_s` seconds, then the last, so a log shows
// it too. Nothing at all before `quiet_s` seconds have passed (short runs stay silent), except the last step
// when earlier ones were shown.
class Progress {
public:
    Progress(std::string what, int64_t total, double quiet_s = 0, double interval_s = 5);
    // Reports `done` of total steps; `detail` follows the count ("running PPL 42.1").
    void update(int64_t done, const std::string& detail = "");
    double elapsed_s() const;

private:
    std::string what_;
    int64_t total_;
    double quiet_s_, interval_s_;
    std::chrono::steady_clock::time_point start_;
    double last_print_s_ = -1;  // seconds at the last line; -1: none yet
    bool terminal_;
};

// Token or model text for a terminal, in double quotes: valid UTF-8 kept, quotes, backslashes and control
// characters escaped (\n, \t, \xNN), bytes that are not UTF-8 (part of a character) as \xNN.
std::string printable(std::string_view text);

// "12.3 s", "4 min 05 s", "1 h 02 min".
std::string duration_str(double seconds);

}  // namespace vkattn::cli
