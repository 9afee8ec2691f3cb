// vkattn bench gpt: prefill and decode speed of a GPU language model, and where its GPU time goes, kernel by kernel.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/error.hpp>

#include <vkattn/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    int prompt_tokens = 128;
    int gen_tokens = 32;
    bool json = false;
};

struct KernelTotal {
    double ms = 0;
    long calls = 0;
};

int run(const Options& o) {
    o.model.check_flags(true);
    const model::ModelInfo c = model::inspect_model(o.model.model);
    const int N = o.prompt_tokens, M = o.gen_tokens;
    if (N < 1 || M < 1) throw Error("--prompt-tokens and --gen-tokens must be >= 1");
    if (N + M > c.context_length) {
        throw Error("--prompt-tokens " + std::to_string(N) + " + --gen-tokens " + std::to_string(M) +
                    " exceed the model's context of " + std::to_string(c.context_length));
    }
    std::vector<int> prompt(static_cast<size_t>(N));
    const auto r = random_values(size_t(N), 7, 0, float(c.vocab_size));
    for (int i = 0; i < N; ++i) prompt[size_t(i)] = std::min(int(r[size_t(i)]), c.vocab_size - 1);

    // The model's own Context starts empty, so its peak memory is the model's.
    LoadedModel loaded = open_timed(o.model, "vulkan", true);
    std::unique_ptr<model::LanguageModel>& lm = loaded.lm;
    Context& ctx = *lm->context();
    std::fprintf(stderr, "loaded in %s: %s\n", duration_str(loaded.load_ms / 1e3).c_str(), lm->description().c_str());

    // Greedy decoding as generate() runs it: the device picks the token and only its id and logit come back, and
    // each decode step is recorded while the device runs the one before (submit_select).
    const model::LogitRequest greedy{1, {}};
    // Warm-up: the first use of each kernel creates its pipeline, which is not what is being measured.
    lm->forward_select(std::span<const int>(prompt).first(size_t(std::min(N, 8))), greedy);
    lm->submit_select(prompt[0], greedy)->wait();
    lm->reset();

    std::map<std::string, KernelTotal> kernels;
    const auto collect = [&] {
        double total = 0;
        for (const auto& t : ctx.last_timings()) {
            kernels[t.name].ms += t.ms;
            kernels[t.name].calls += 1;
            total += t.ms;
        }
        return total;
    };
    auto t0 = std::chrono::steady_clock::now();
    int next = lm->forward_select(prompt, greedy).ids.at(0);
    const double prefill_ms = ms_since(t0);
    const double prefill_gpu_ms = collect();

    std::vector<double> step_ms;
    double decode_gpu_ms = 0;
    Progress progress("bench gpt: decode steps", M, 2.0);
    for (int i = 0; i < M; ++i) {
        t0 = std::chrono::steady_clock::now();
        next = lm->submit_select(next, greedy)->wait().ids.at(0);
        step_ms.push_back(ms_since(t0));
        decode_gpu_ms += collect();
        progress.update(i + 1);
    }
    double decode_ms = 0;
    for (const double ms : step_ms) decode_ms += ms;
    const double ms_per_token = median(step_ms);
    const double min_ms = *std::min_element(step_ms.begin(), step_ms.end());
    const double prefill_tps = 1e3 * N / prefill_ms, decode_tps = 1e3 * M / decode_ms;
    // Each decode step reads every weight once; that traffic dominates at T = 1.
    const double gbps = double(lm->weight_bytes()) / (ms_per_token * 1e6);
    const uint64_t peak = ctx.peak_device_memory_bytes();

    std::vector<std::pair<std::string, KernelTotal>> by_time(kernels.begin(), kernels.end());
    std::sort(by_time.begin(), by_time.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double all_ms = 0;
    for (const auto& [name, k] : by_time) all_ms += k.ms;

    if (o.json) {
        nlohmann::ordered_json shares = nlohmann::ordered_json::object();
        for (const auto& [name, k] : by_time) {
            shares[name] = {{"ms", k.ms}, {"calls", k.calls}, {"share", all_ms > 0 ? k.ms / all_ms : 0.0}};
        }
        nlohmann::ordered_json j = {{"bench", "gpt"},
                                  {"device", ctx.device().name},
                                  {"model", o.model.model},
                                  {"family", c.family},
                                  {"n_layer", c.n_layer},
                                  {"n_head", c.n_head},
                                  {"n_embd", c.hidden},
                                  {"vocab_size", c.vocab_size},
                                  {"dtype", o.model.dtype},
                                  {"impl", o.model.impl},
                                  {"prompt_tokens", N},
                                  {"gen_tokens", M},
                                  {"prefill_ms", prefill_ms},
                                  {"prefill_gpu_ms", prefill_gpu_ms},
                                  {"prefill_tokens_per_s", prefill_tps},
                                  {"decode_ms", decode_ms},
                                  {"decode_gpu_ms", decode_gpu_ms},
                                  {"decode_tokens_per_s", decode_tps},
                                  {"ms_per_token", ms_per_token},
                                  {"median_ms", ms_per_token},
                                  {"min_ms", min_ms},
                                  {"gbps", gbps},
                                  {"weight_bytes", lm->weight_bytes()},
                                  {"peak_device_bytes", peak},
                                  {"load_ms", loaded.load_ms},
                                  {"kernels", shares}};
        j["version"] = version();
        j["commit"] = git_commit();
        j["driver"] = ctx.device().driver;
        std::printf("%s\n", json_line(j).c_str());
        return kOk;
    }
    std::printf("%s (%s) on %s (%s); %s weights, %s attention; loaded in %.1f ms\n", c.summary().c_str(),
                o.model.model.c_str(), ctx.device().name.c_str(), ctx.device().driver.c_str(), o.model.dtype.c_str(),
                o.model.impl.c_str(), loaded.load_ms);
    std::printf("prefill: %d tokens in %.1f ms (GPU %.1f ms): %.1f tokens/s\n", N, prefill_ms, prefill_gpu_ms,
                prefill_tps);
    std::printf("decode:  %d tokens in %.1f ms (GPU %.1f ms): %.1f tokens/s; per token median %.2f ms, min %.2f ms\n",
                M, decode_ms, decode_gpu_ms, decode_tps, ms_per_token, min_ms);
    std::printf("weights %s on the device, read at %.1f GB/s per decode step; peak device memory %s\n",
                bytes_str(lm->weight_bytes()).c_str(), gbps, bytes_str(peak).c_str());
    std::printf("GPU time by kernel (prefill and decode, timestamps):\n");
    for (const auto& [name, k] : by_time) {
        std::printf("  %-28s %10.2f ms %6.1f%% %7ld dispatches\n", name.c_str(), k.ms,
                    all_ms > 0 ? 100 * k.ms / all_ms : 0.0, k.calls);
    }
    return kOk;
}

}  // namespace

Runner add_bench_gpt(CLI::App& bench) {
    auto* cmd = bench.add_subcommand("gpt", "Time a GPU language model (any family; alias: bench model): prefill, greedy decode, GPU time per kernel");
    cmd->alias("model");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd, false);
    cmd->add_option("--prompt-tokens", o->prompt_tokens, "prompt length N (seeded random ids)")->capture_default_str();
    cmd->add_option("--gen-tokens", o->gen_tokens, "decode steps M, one token each")->capture_default_str();
    cmd->add_flag("--json", o->json, "one JSON object on stdout instead of the report");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
