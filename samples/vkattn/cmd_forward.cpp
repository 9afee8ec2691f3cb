// vkattn forward: a language model's logits for every position of a prompt, on the GPU or the CPU reference, optionally
// checked against the other backend.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string tokens, text, out_file;
    bool check = false;
    int top = 5;
    bool json = false;
};

struct Candidate {
    int id = 0;
    double probability = 0;
};

// The n most likely next tokens from the last row of logits [V], by a softmax in double.
std::vector<Candidate> top_tokens(std::span<const float> row, int n) {
    const double mx = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (const float x : row) sum += std::exp(double(x) - mx);
    std::vector<int> order(row.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t k = std::min(order.size(), size_t(n));
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                      [&](int a, int b) { return row[size_t(a)] > row[size_t(b)] || (row[size_t(a)] == row[size_t(b)] && a < b); });
    std::vector<Candidate> out;
    for (size_t i = 0; i < k; ++i) out.push_back({order[i], std::exp(double(row[size_t(order[i])]) - mx) / sum});
    return out;
}

// Max |Δ logits| allowed between the backends. The CPU reference computes with the weights rounded as the
// GPU stores them (--dtype), so only arithmetic differs: the GPU accumulates in fp32 through every layer
// while the reference's attention runs in double, so rounding differences compound over the layers and the
// LM head's C-long dot products. The same bound holds for every storage dtype.
constexpr double kTol = 2e-3;

// --tokens are checked against the config before any weight is read; --text needs the model's tokenizer.
std::vector<int> prompt_tokens(const Options& o, const model::ModelInfo& info, const model::LanguageModel* lm) {
    std::vector<int> ids = lm ? need_tokenizer(*lm, "--text", "give token ids with --tokens").encode(o.text)
                              : parse_ids(o.tokens, "--tokens");
    if (ids.empty()) throw Error("the prompt is empty: --text encodes to no tokens");
    check_prompt(ids, info, lm ? "--text" : "--tokens");
    return ids;
}

// Runs the whole prompt through one backend and reports the time it took on `out`.
std::vector<float> run_backend(model::LanguageModel& lm, const std::vector<int>& ids, FILE* out) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = lm.forward(ids);
    const double wall = ms_since(t0);
    if (Context* ctx = lm.context()) {
        // The first call also creates the pipelines and reads [T, V] logits back, hence wall >> GPU time.
        std::fprintf(out, "%s: %.1f ms wall clock, %.1f ms GPU (timestamps)\n", lm.description().c_str(), wall,
                     gpu_ms(*ctx));
    } else {
        std::fprintf(out, "%s: %.1f ms\n", lm.description().c_str(), wall);
    }
    return logits;
}

int run(const Options& o) {
    if (o.tokens.empty() == o.text.empty()) throw Error("give the prompt as exactly one of --tokens or --text");
    o.model.check_flags(o.check);
    const model::ModelInfo info = model::inspect_model(o.model.model);
    std::vector<int> ids;
    if (!o.tokens.empty()) ids = prompt_tokens(o, info, nullptr);
    LoadedModel loaded = open_timed(o.model, "", true);
    std::unique_ptr<model::LanguageModel>& lm = loaded.lm;
    if (ids.empty()) ids = prompt_tokens(o, info, lm.get());
    // With --json, stdout holds only the JSON object; the report goes to stderr.
    FILE* out = o.json ? stderr : stdout;
    std::fprintf(stderr, "loaded in %s: %s\n", duration_str(loaded.load_ms / 1e3).c_str(), lm->description().c_str());
    std::fprintf(out, "%s (%s); %zu tokens\n", info.summary().c_str(), o.model.model.c_str(), ids.size());

    nlohmann::ordered_json j = provenance(lm->context());
    const std::vector<float> logits = run_backend(*lm, ids, out);
    const size_t T = ids.size(), V = size_t(info.vocab_size);
    const std::vector<Candidate> top = top_tokens(std::span<const float>(logits).last(V), o.top);
    const model::Tokenizer* tokenizer = lm->tokenizer();
    std::fprintf(out, "logits [%zu, %zu]; the %zu most likely next tokens%s:\n", T, V, top.size(),
                 tokenizer ? "" : " (ids only: the model has no tokenizer)");
    nlohmann::ordered_json top_json = nlohmann::ordered_json::array();
    for (size_t i = 0; i < top.size(); ++i) {
        const std::string text = tokenizer ? tokenizer->token_text(top[i].id) : "";
        std::fprintf(out, "  %2zu. %7.3f%%  id %-7d %s\n", i + 1, 100 * top[i].probability, top[i].id,
                     tokenizer ? printable(text).c_str() : "");
        top_json.push_back({{"id", top[i].id},
                            {"text", tokenizer ? nlohmann::ordered_json(text) : nlohmann::ordered_json(nullptr)},
                            {"probability", top[i].probability}});
    }
    lm = nullptr;  // frees the weights (and the device memory) before the other backend loads its copy
    j["model"] = o.model.model;
    j["backend"] = o.model.backend;
    j["dtype"] = o.model.dtype;
    j["impl"] = o.model.impl;
    j["tokens"] = T;
    j["vocab_size"] = V;
    j["load_ms"] = loaded.load_ms;
    j["top"] = top_json;
    if (!o.out_file.empty()) {
        const std::vector<int64_t> shape = {int64_t(T), int64_t(V)};
        write_npy(o.out_file, shape, logits);
        std::fprintf(out, "wrote %s: logits [%zu, %zu] float32\n", o.out_file.c_str(), T, V);
        j["out"] = o.out_file;
    }
    int rc = kOk;
    if (o.check) {
        const std::string other = o.model.backend == "cpu" ? "vulkan" : "cpu";
        auto other_model = o.model.open(other, true);
        const std::vector<float> other_logits = run_backend(*other_model, ids, out);
        if (other == "vulkan") j["driver"] = other_model->context()->device().driver;
        if (other == "vulkan") j["device"] = other_model->context()->device().name;
        const double tol = kTol;
        const auto& gpu = o.model.backend == "cpu" ? other_logits : logits;
        const auto& cpu = o.model.backend == "cpu" ? logits : other_logits;
        const ErrorStats e = compare(gpu, cpu, tol, 0);
        std::fprintf(out, "check: max |Δ logits| GPU vs CPU = %.3g (tolerance %.0e, %s weights): %s\n", e.max_abs, tol,
                     o.model.dtype.c_str(), e.bad == 0 ? "PASS" : "FAIL");
        j["check"] = {{"max_abs", e.max_abs}, {"tolerance", tol}, {"bad", e.bad}, {"pass", e.bad == 0}};
        if (e.bad != 0) {
            std::fprintf(out, "  %zu logits out of tolerance; worst at position %zu, token %zu: GPU %g, CPU %g\n", e.bad,
                         e.worst / V, e.worst % V, double(gpu[e.worst]), double(cpu[e.worst]));
            rc = kMismatch;
        }
    }
    if (o.json) std::printf("%s\n", json_line(j).c_str());
    return rc;
}

}  // namespace

Runner add_forward(CLI::App& app) {
    auto* cmd = app.add_subcommand("forward", "A language model's logits [T, V] for every position of a prompt");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd);
    cmd->add_option("--tokens", o->tokens, "prompt as comma-separated token ids, e.g. 464,3797");
    cmd->add_option("--text", o->text, "prompt as text (needs the model directory's tokenizer)");
    cmd->add_option("--out", o->out_file, "write the logits [T, V] as float32 .npy");
    cmd->add_flag("--check", o->check,
                  "also run the other backend (with the same --dtype rounding of the weights) and compare the "
                  "logits; exit 1 past max |Δ| 2e-3");
    add_int(*cmd, "--top", o->top, 1, std::numeric_limits<int>::max(),
            "list this many most likely next tokens, with their text and probability");
    cmd->add_flag("--json", o->json,
                  "one JSON object on stdout (the next tokens, the check, version, commit, device and driver); the "
                  "report goes to stderr");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
