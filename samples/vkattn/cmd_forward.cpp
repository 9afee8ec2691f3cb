// vkattn forward: a language model's logits for every position of a prompt, on the GPU or the CPU reference, optionally
// checked against the other backend.
#include "cli.hpp"

#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>

#include <algorithm>
#include <cstdio>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string tokens, text, out_file;
    bool check = false;
};

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

// Runs the whole prompt through one backend and reports the time it took.
std::vector<float> run_backend(model::LanguageModel& lm, const std::vector<int>& ids) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = lm.forward(ids);
    const double wall = ms_since(t0);
    if (Context* ctx = lm.context()) {
        // The first call also creates the pipelines and reads [T, V] logits back, hence wall >> GPU time.
        std::printf("%s: %.1f ms wall clock, %.1f ms GPU (timestamps)\n", lm.description().c_str(), wall, gpu_ms(*ctx));
    } else {
        std::printf("%s: %.1f ms\n", lm.description().c_str(), wall);
    }
    return logits;
}

int run(const Options& o) {
    if (o.tokens.empty() == o.text.empty()) throw Error("give the prompt as exactly one of --tokens or --text");
    const model::ModelInfo info = model::inspect_model(o.model.model);
    std::vector<int> ids;
    if (!o.tokens.empty()) ids = prompt_tokens(o, info, nullptr);
    std::unique_ptr<model::LanguageModel> lm = o.model.open("", true);
    if (ids.empty()) ids = prompt_tokens(o, info, lm.get());
    std::printf("%s (%s); %zu tokens\n", info.summary().c_str(), o.model.model.c_str(), ids.size());

    const std::vector<float> logits = run_backend(*lm, ids);
    lm = nullptr;  // frees the weights (and the device memory) before the other backend loads its copy
    const size_t T = ids.size(), V = size_t(info.vocab_size);
    const auto last = logits.end() - std::ptrdiff_t(V);
    const int next = int(std::max_element(last, logits.end()) - last);
    std::printf("logits [%zu, %zu]; most likely next token: %d\n", T, V, next);
    if (!o.out_file.empty()) {
        const std::vector<int64_t> shape = {int64_t(T), int64_t(V)};
        write_npy(o.out_file, shape, logits);
        std::printf("wrote %s\n", o.out_file.c_str());
    }
    if (!o.check) return kOk;

    const std::string other = o.model.backend == "cpu" ? "vulkan" : "cpu";
    const std::vector<float> other_logits = run_backend(*o.model.open(other, true), ids);
    const double tol = kTol;
    const auto& gpu = o.model.backend == "cpu" ? other_logits : logits;
    const auto& cpu = o.model.backend == "cpu" ? logits : other_logits;
    const ErrorStats e = compare(gpu, cpu, tol, 0);
    std::printf("check: max |Δ logits| GPU vs CPU = %.3g (tolerance %.0e, %s weights): %s\n", e.max_abs, tol,
                o.model.dtype.c_str(), e.bad == 0 ? "PASS" : "FAIL");
    if (e.bad != 0) {
        std::printf("  %zu logits out of tolerance; worst at position %zu, token %zu: GPU %g, CPU %g\n", e.bad,
                    e.worst / V, e.worst % V, double(gpu[e.worst]), double(cpu[e.worst]));
        return kMismatch;
    }
    return kOk;
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
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
