#include "cli.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

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

void ModelOptions::add_to(CLI::App& cmd, bool with_backend) {
    std::string families;
    for (const std::string& f : model::model_families()) families += (families.empty() ? "" : ", ") + f;
    cmd.add_option("--model", model, "Hugging Face model directory (" + families + "), or synthetic (GPT-2 small's "
                                      "shape), synthetic:LAYERS,HEADS,EMBD (a GPT-2) or synthetic:NAME (a published "
                                      "model's shape: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, ...; an unknown NAME "
                                      "lists them all); synthetic weights are seeded, standard deviation 0.02")
        ->required();
    if (with_backend) {
        cmd.add_option("--backend", backend, "vulkan (the GPU model) or cpu (the reference)")
            ->check(CLI::IsMember({"vulkan", "cpu"}))
            ->capture_default_str();
    }
    cmd.add_option("--dtype", dtype, "GPU weight storage: f32, f16 or bf16 (Llama family; exact for bf16 "
                                      "checkpoints); the CPU reference always uses f32")
        ->check(CLI::IsMember({"f32", "f16", "bf16"}))
        ->capture_default_str();
    cmd.add_option("--attention", attention, "GPU attention: fused (flash) or naive (three kernels)")
        ->check(CLI::IsMember({"naive", "fused"}))
        ->capture_default_str();
    device.add_to(cmd);
}

model::ModelOptions ModelOptions::options(bool profile) const {
    model::ModelOptions o;
    o.weights = dtype == "bf16" ? DType::bf16 : dtype == "f16" ? DType::f16 : DType::f32;
    o.fused_attention = attention == "fused";
    o.context_options = device.context_options(profile);
    return o;
}

std::unique_ptr<model::LanguageModel> ModelOptions::open(const std::string& on, bool profile) const {
    return model::open_model(model, model::parse_backend(on.empty() ? backend : on), options(profile));
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

}  // namespace vkattn::cli
