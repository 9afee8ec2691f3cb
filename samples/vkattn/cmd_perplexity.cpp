// vkattn perplexity: sliding-window perplexity of a text file, as in Hugging Face's "Perplexity of
// fixed-length models" guide.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string file;
    std::optional<int> context;  // nullopt: the flag is absent
    std::optional<int> stride;
    bool json = false;
};

std::string read_text(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw Error("--file " + path + ": no such file");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw Error("--file " + path + ": could not be read");
    return std::move(text).str();
}

// -log p(target | row) for one row of logits [V], by a log-softmax in double.
double nll(std::span<const float> row, int target) {
    const double mx = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (const float x : row) sum += std::exp(double(x) - mx);
    return mx + std::log(sum) - double(row[size_t(target)]);
}

int run(const Options& o) {
    const model::ModelInfo info = model::inspect_model(o.model.model);
    const int P = info.context_length;
    // Absent flags take their defaults; a given value must be in range, so a typo is not silently a default.
    const int N = o.context.value_or(P);
    if (N < 2 || N > P) {
        throw Error("--context " + std::to_string(N) + " must be in [2, the model's context = " + std::to_string(P) + "]");
    }
    const int S = o.stride.value_or(std::max(1, N / 2));
    if (S < 1) throw Error("--stride " + std::to_string(S) + " must be >= 1");
    if (S > N) throw Error("--stride " + std::to_string(S) + " is larger than --context " + std::to_string(N) +
                           ", which would leave tokens unscored");
    o.model.check_flags();
    const std::string text = read_text(o.file);
    LoadedModel loaded = open_timed(o.model);
    model::LanguageModel& lm = *loaded.lm;
    const std::vector<int> ids = need_tokenizer(lm, "perplexity").encode(text);
    const int n = int(ids.size());
    if (n < 2) throw Error(o.file + " has " + std::to_string(n) + " token(s); perplexity needs at least 2");
    const int windows = n <= N ? 1 : 1 + (n - N + S - 1) / S;
    std::fprintf(stderr, "loaded in %s: %s; %d tokens, context %d, stride %d, %d windows\n",
                 duration_str(loaded.load_ms / 1e3).c_str(), lm.description().c_str(), n, N, S, windows);

    // Window w covers tokens [begin, end) with begin = w·S and scores only the targets no earlier window
    // scored, [prev_end, end); the first window scores all but its first token, which has no context.
    const auto t0 = std::chrono::steady_clock::now();
    const size_t V = size_t(lm.vocab_size());
    double total_nll = 0, total_nll2 = 0;  // sums of the NLL and of its square, for the standard error
    long scored = 0;
    int prev_end = 0, done = 0;
    Progress progress("perplexity windows", windows);
    for (int begin = 0;; begin += S) {
        const int end = std::min(begin + N, n);
        lm.reset();
        const auto window = std::span<const int>(ids).subspan(size_t(begin), size_t(end - begin));
        const std::vector<float> logits = lm.forward(window);
        for (int i = std::max(prev_end, begin + 1); i < end; ++i) {
            // The logits at window row i - begin - 1 predict token i.
            const double v = nll(std::span<const float>(logits).subspan(size_t(i - begin - 1) * V, V), ids[size_t(i)]);
            total_nll += v;
            total_nll2 += v * v;
            ++scored;
        }
        prev_end = end;
        char running[64];
        std::snprintf(running, sizeof running, "running PPL %.4f", std::exp(total_nll / double(scored)));
        progress.update(++done, running);
        if (end == n) break;
    }
    const double ms = ms_since(t0);
    // llama-perplexity's estimate: the standard error of the mean NLL, sqrt((E[x²] - E[x]²) / (count - 1)),
    // propagated to PPL = exp(mean) by d exp(m) = exp(m) dm.
    const double mean = total_nll / double(scored);
    const double ppl = std::exp(mean);
    const double variance = total_nll2 / double(scored) - mean * mean;
    const double se_nll = scored > 1 && variance > 0 ? std::sqrt(variance / double(scored - 1)) : 0.0;
    FILE* out = o.json ? stderr : stdout;
    std::fprintf(out, "perplexity: %.4f over %ld scored tokens (%d tokens, context %d, stride %d, %d windows, %.1f s)\n",
                 ppl, scored, n, N, S, windows, ms / 1e3);
    std::fprintf(out, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, se_nll * ppl);
    if (o.json) {
        nlohmann::ordered_json j = provenance(lm.context());
        j["model"] = o.model.model;
        j["backend"] = o.model.backend;
        j["file"] = o.file;
        j["perplexity"] = ppl;
        j["perplexity_stderr"] = se_nll * ppl;
        j["mean_nll"] = mean;
        j["mean_nll_stderr"] = se_nll;
        j["scored_tokens"] = scored;
        j["tokens"] = n;
        j["context"] = N;
        j["stride"] = S;
        j["windows"] = windows;
        j["load_ms"] = loaded.load_ms;
        j["seconds"] = ms / 1e3;
        std::printf("%s\n", json_line(j).c_str());
    }
    return kOk;
}

}  // namespace

Runner add_perplexity(CLI::App& app) {
    auto* cmd = app.add_subcommand("perplexity", "Sliding-window perplexity of a text file (Hugging Face's method)");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd);
    cmd->add_option("--file", o->file, "UTF-8 text to score")->required();
    cmd->add_option_function<int>(
        "--context", [o](const int& n) { o->context = n; }, "window length N (default: the model's context)");
    cmd->add_option_function<int>(
        "--stride", [o](const int& s) { o->stride = s; },
        "window step 1 <= S <= N (default: N/2); each window scores its last S tokens");
    cmd->add_flag("--json", o->json,
                  "one JSON object on stdout (perplexity, its standard error, tokens, version, commit, device and "
                  "driver); the report goes to stderr");
    cmd->footer("Prints the windows done, the running perplexity and an ETA on stderr (plain lines when stderr is not "
                "a terminal), then `perplexity: ...` and llama-perplexity's `Final estimate: PPL = x +/- y` (y: the "
                "standard error of the mean negative log-likelihood, times PPL).");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
