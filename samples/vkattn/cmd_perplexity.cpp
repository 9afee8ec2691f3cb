// vkattn perplexity: sliding-window perplexity of a text file, as in Hugging Face's "Perplexity of
// fixed-length models" guide.
#include "cli.hpp"

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

void progress(int done, int total) {
    if (!stderr_is_terminal()) return;
    constexpr int kWidth = 40;
    const int filled = total ? done * kWidth / total : kWidth;
    std::fprintf(stderr, "\r[%s%s] %d/%d windows", std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(kWidth - filled), '.').c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
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
    const std::string text = read_text(o.file);
    std::unique_ptr<model::LanguageModel> lm = o.model.open();
    const std::vector<int> ids = need_tokenizer(*lm, "perplexity").encode(text);
    const int n = int(ids.size());
    if (n < 2) throw Error(o.file + " has " + std::to_string(n) + " token(s); perplexity needs at least 2");
    const int windows = n <= N ? 1 : 1 + (n - N + S - 1) / S;
    std::fprintf(stderr, "%s; %d tokens, context %d, stride %d, %d windows\n", lm->description().c_str(), n, N, S,
                 windows);

    // Window w covers tokens [begin, end) with begin = w·S and scores only the targets no earlier window
    // scored, [prev_end, end); the first window scores all but its first token, which has no context.
    const auto t0 = std::chrono::steady_clock::now();
    const size_t V = size_t(lm->vocab_size());
    double total_nll = 0;
    long scored = 0;
    int prev_end = 0, done = 0;
    progress(0, windows);
    for (int begin = 0;; begin += S) {
        const int end = std::min(begin + N, n);
        lm->reset();
        const auto window = std::span<const int>(ids).subspan(size_t(begin), size_t(end - begin));
        const std::vector<float> logits = lm->forward(window);
        for (int i = std::max(prev_end, begin + 1); i < end; ++i) {
            // The logits at window row i - begin - 1 predict token i.
            total_nll += nll(std::span<const float>(logits).subspan(size_t(i - begin - 1) * V, V), ids[size_t(i)]);
            ++scored;
        }
        prev_end = end;
        progress(++done, windows);
        if (end == n) break;
    }
    const double ms = ms_since(t0);
    std::printf("perplexity: %.4f over %ld scored tokens (%d tokens, context %d, stride %d, %d windows, %.1f s)\n",
                std::exp(total_nll / double(scored)), scored, n, N, S, windows, ms / 1e3);
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
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
