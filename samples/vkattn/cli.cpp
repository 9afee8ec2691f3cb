#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/error.hpp>
#include <vkattn/version.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

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
        const double rel = std::isnan(d) ? INFINITY : d / std::max(std::abs(double(ref[i])), 1e-6);
        if (rel > s.max_rel) {
            s.max_rel = rel;
            s.worst_rel = i;
        }
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

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double gpu_ms(const Context& ctx) {
    double total = 0;
    for (const auto& t : ctx.last_timings()) total += t.ms;
    return total;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<int> parse_ids(const std::string& list, const std::string& option) {
    std::vector<int> ids;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t end = std::min(list.find(',', start), list.size());
        std::string item = list.substr(start, end - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        int id = 0;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || id < 0) {
            throw Error(option + " takes comma-separated token ids (non-negative integers), but entry " +
                        std::to_string(ids.size() + 1) + " is '" + item + "'");
        }
        ids.push_back(id);
        start = end + 1;
    }
    return ids;
}

std::string join_ids(std::span<const int> ids) {
    std::string s;
    for (const int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

void ModelOptions::add_to(CLI::App& c, bool with_backend) {
    cmd = &c;
    std::string families;
    for (const std::string& f : model::model_families()) families += (families.empty() ? "" : ", ") + f;
    c.add_option("--model", model, "Hugging Face model directory (" + families + "), or synthetic (GPT-2 small's "
                                    "shape), synthetic:LAYERS,HEADS,EMBD (a GPT-2) or synthetic:NAME (a published "
                                    "model's shape: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, ...; an unknown NAME "
                                    "lists them all); synthetic weights are seeded, standard deviation 0.02")
        ->required();
    if (with_backend) add_choice(c, "--backend", backend, {"vulkan", "cpu"}, "vulkan (the GPU model) or cpu (the reference)");
    add_choice(c, "--dtype", dtype, {"f32", "f16", "bf16"},
               "weight storage (bf16: Llama family, exact for bf16 checkpoints); the CPU reference computes in f32 "
               "with the weights rounded the same way");
    add_choice(c, "--impl", impl, {"fused", "naive"},
               "GPU attention kernels: fused (flash, one kernel) or naive (three kernels: scores, softmax, values)");
    add_deprecated_alias(c, "--attention", impl, {"fused", "naive"}, impl_alias);
    device.add_to(c);
}

void ModelOptions::check_flags(bool gpu_too) const {
    if (impl_alias) {
        refuse_together(*cmd, "--impl", "--attention", "--attention is the old spelling of --impl; give --impl only");
        note_deprecated("--attention is deprecated and will be removed; use --impl (same values)");
    }
    if (backend != "cpu" || gpu_too) return;
    const std::string why = "the CPU reference runs its own attention on the host";
    for (const char* gpu_only : {"--impl", "--attention", "--device"}) {
        if (cmd->get_option_no_throw(gpu_only) != nullptr && given(*cmd, gpu_only)) {
            throw Error(std::string(gpu_only) + " sets up the GPU model and cannot be used with --backend cpu: " + why);
        }
    }
}

model::ModelOptions ModelOptions::options(bool profile) const {
    model::ModelOptions o;
    o.weights = dtype == "bf16" ? DType::bf16 : dtype == "f16" ? DType::f16 : DType::f32;
    o.fused_attention = impl == "fused";
    o.context_options = device.context_options(profile);
    return o;
}

std::unique_ptr<model::LanguageModel> ModelOptions::open(const std::string& on, bool profile) const {
    return model::open_model(model, model::parse_backend(on.empty() ? backend : on), options(profile));
}

void print_warnings(const Context* ctx) {
    // The lines already printed: a Context's list only grows, and one command may look at it several times.
    static const Context* seen_ctx = nullptr;
    static size_t seen = 0;
    if (ctx == nullptr) return;
    if (ctx != seen_ctx) {
        seen_ctx = ctx;
        seen = 0;
    }
    const std::vector<std::string> warnings = ctx->warnings();
    for (; seen < warnings.size(); ++seen) std::fprintf(stderr, "vkattn: warning: %s\n", warnings[seen].c_str());
}

LoadedModel::~LoadedModel() {
    if (lm) print_warnings(lm->context());
}

LoadedModel open_timed(const ModelOptions& o, const std::string& backend, bool profile) {
    const auto t0 = std::chrono::steady_clock::now();
    LoadedModel m;
    m.lm = o.open(backend, profile);
    m.load_ms = ms_since(t0);
    return m;
}

const model::Tokenizer& need_tokenizer(const model::LanguageModel& lm, const std::string& what,
                                       const std::string& instead) {
    if (lm.tokenizer() == nullptr) {
        throw Error(what + " needs a tokenizer (tokenizer files in a model directory), and " + lm.info().source +
                    " has none" + (instead.empty() ? "" : ": " + instead));
    }
    return *lm.tokenizer();
}

void check_prompt(std::span<const int> ids, const model::ModelInfo& info, const std::string& option) {
    if (int64_t(ids.size()) > info.context_length) {
        throw Error("the prompt has " + std::to_string(ids.size()) + " tokens, more than the model's context of " +
                    std::to_string(info.context_length));
    }
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] >= info.vocab_size) {
            throw Error("token " + std::to_string(ids[i]) + " (entry " + std::to_string(i + 1) + " of " + option +
                        ") is outside the vocabulary of " + std::to_string(info.vocab_size));
        }
    }
}

bool stderr_is_terminal() {
#ifdef _WIN32
    return _isatty(_fileno(stderr)) != 0;
#else
    return isatty(fileno(stderr)) != 0;
#endif
}

std::string read_text_file(const std::string& option, const std::string& path, bool allow_stdin) {
    std::ostringstream text;
    if (allow_stdin && path == "-") {
        text << std::cin.rdbuf();
        return std::move(text).str();
    }
    std::error_code ec;
    const std::string named = option + " " + quoted_prefix(path, 200);
    if (!std::filesystem::exists(path, ec)) throw Error(named + ": no such file");
    if (!std::filesystem::is_regular_file(path, ec)) throw Error(named + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    text << in.rdbuf();
    if (!in) throw Error(named + ": could not be read");
    return std::move(text).str();
}

bool stdin_is_terminal() {
#ifdef _WIN32
    return _isatty(_fileno(stdin)) != 0;
#else
    return isatty(fileno(stdin)) != 0;
#endif
}

bool given(const CLI::App& cmd, const std::string& option) {
    const CLI::Option* opt = cmd.get_option_no_throw(option);
    return opt != nullptr && opt->count() > 0;
}

void refuse_together(const CLI::App& cmd, const std::string& a, const std::string& b, const std::string& why) {
    if (given(cmd, a) && given(cmd, b)) throw Error(a + " cannot be used with " + b + ": " + why);
}

namespace {

std::string choice_list(const std::vector<std::string>& choices) {
    std::string s;
    for (const auto& c : choices) s += (s.empty() ? "" : ",") + c;
    return "{" + s + "}";
}

std::vector<std::string>& notes() {
    static std::vector<std::string> n;
    return n;
}

}  // namespace

CLI::Option* add_choice(CLI::App& cmd, const std::string& name, std::string& target,
                        const std::vector<std::string>& choices, const std::string& help) {
    return cmd.add_option(name, target, help)->check(CLI::IsMember(choices))->capture_default_str();
}

CLI::Option* add_deprecated_alias(CLI::App& cmd, const std::string& alias, std::string& target,
                                  const std::vector<std::string>& choices, bool& used) {
    // Checked here with the same choices, so that a bad value is refused under the spelling the user typed.
    return cmd
        .add_option_function<std::string>(
            alias,
            [&target, &used, alias, choices](const std::string& value) {
                if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
                    throw CLI::ValidationError(alias + ": " + quoted_prefix(value) + " is not in " + choice_list(choices));
                }
                target = value;
                used = true;
            },
            "")
        ->group("");  // hidden from --help
}

void note_deprecated(const std::string& note) {
    if (std::find(notes().begin(), notes().end(), note) == notes().end()) notes().push_back(note);
}

const std::vector<std::string>& deprecation_notes() { return notes(); }

nlohmann::ordered_json provenance(const Context* ctx) {
    nlohmann::ordered_json j = {{"version", version()}, {"commit", git_commit()}};
    j["device"] = ctx ? nlohmann::ordered_json(ctx->device().name) : nlohmann::ordered_json(nullptr);
    j["driver"] = ctx ? nlohmann::ordered_json(ctx->device().driver) : nlohmann::ordered_json(nullptr);
    return j;
}

std::string json_line(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string printable(std::string_view text) {
    std::string out = "\"";
    char buf[8];
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
            ++i;
        } else if (c == '\n') {
            out += "\\n";
            ++i;
        } else if (c == '\t') {
            out += "\\t";
            ++i;
        } else if (c >= 0x20 && c < 0x7f) {
            out += char(c);
            ++i;
        } else {
            // A whole, valid multi-byte character is kept; anything else is shown byte by byte.
            const size_t need = c >= 0xF0 ? (c <= 0xF4 ? 4 : 0) : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            bool whole = need > 0 && i + need <= text.size();
            for (size_t k = 1; whole && k < need; ++k) whole = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
            if (whole) {
                out.append(text.substr(i, need));
                i += need;
            } else {
                std::snprintf(buf, sizeof buf, "\\x%02x", c);
                out += buf;
                ++i;
            }
        }
    }
    return out + "\"";
}

std::string duration_str(double seconds) {
    char buf[64];
    if (!(seconds >= 0) || seconds > 1e9) return "?";
    if (seconds < 1) {
        std::snprintf(buf, sizeof buf, "%.0f ms", seconds * 1e3);
    } else if (seconds < 60) {
        std::snprintf(buf, sizeof buf, "%.1f s", seconds);
    } else if (seconds < 3600) {
        const long s = std::lround(seconds);
        std::snprintf(buf, sizeof buf, "%ld min %02ld s", s / 60, s % 60);
    } else {
        const long m = std::lround(seconds / 60);
        std::snprintf(buf, sizeof buf, "%ld h %02ld min", m / 60, m % 60);
    }
    return buf;
}

Progress::Progress(std::string what, int64_t total, double quiet_s, double interval_s)
    : what_(std::move(what)),
      total_(total),
      quiet_s_(quiet_s),
      interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()),
      terminal_(stderr_is_terminal()) {}

double Progress::elapsed_s() const { return ms_since(start_) / 1e3; }

void Progress::update(int64_t done, const std::string& detail) {
    const double t = elapsed_s();
    const bool last = done >= total_;
    const bool shown_before = last_print_s_ >= 0;
    if (t < quiet_s_ && !(last && shown_before)) return;
    if (!last && shown_before && t - last_print_s_ < (terminal_ ? 0.1 : interval_s_)) return;
    std::string line = what_ + ": " + std::to_string(done) + "/" + std::to_string(total_);
    if (!detail.empty()) line += ", " + detail;
    line += ", " + duration_str(t);
    if (!last && done > 0) line += ", ETA " + duration_str(t / double(done) * double(total_ - done));
    if (terminal_) {
        std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), last ? "\n" : "");
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
    last_print_s_ = t;
}

}  // namespace vkattn::cli
