// vkattn generate: streams a language model's continuation of a prompt, token by token, with the KV cache.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/generate.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string_view>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string prompt, tokens, file;
    bool prompt_given = false;
    int max_tokens = 50;
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    uint64_t seed = 0;
    std::vector<std::string> stop;
    bool json = false;
    CLI::App* cmd = nullptr;
};

void write_out(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

// Flags that cannot apply to this command line, refused before anything is loaded.
void check_flags(const Options& o) {
    const CLI::App& c = *o.cmd;
    const int sources = int(o.prompt_given) + int(!o.tokens.empty()) + int(given(c, "--file"));
    if (sources > 1) throw Error("give the prompt once: one of --prompt, --tokens or --file");
    if (o.temperature == 0) {
        for (const char* opt : {"--seed", "--top-k", "--top-p", "--min-p"}) {
            if (given(c, opt)) {
                throw Error(std::string(opt) + " cannot be used with --temperature 0: greedy decoding takes the most "
                            "likely token, so there is nothing to filter or draw");
            }
        }
    }
    if (given(c, "--repeat-last-n") && !given(c, "--repeat-penalty")) {
        throw Error("--repeat-last-n sets the window of --repeat-penalty, which is off (1) unless given");
    }
    o.model.check_flags();
}

std::string stop_reason(const model::GenerateResult& r, const model::LanguageModel& lm) {
    switch (r.reason) {
        case model::StopReason::max_tokens: return "--max-tokens reached";
        case model::StopReason::eos: return "the model produced an end-of-sequence token";
        case model::StopReason::stop_string: return "a --stop string appeared (not printed)";
        case model::StopReason::context_full:
            return "the context is full (" + std::to_string(lm.context_length()) + " tokens with the prompt)";
    }
    return "?";
}

// A float option as typed (0.8, not 0.800000011920929) for JSON.
double shown(float x) {
    char text[32];
    std::snprintf(text, sizeof text, "%.7g", double(x));
    return std::strtod(text, nullptr);
}

int run(const Options& o) {
    check_flags(o);
    // Where the prompt comes from: one option, or stdin when nothing was given and something is piped in.
    std::string file = o.file;
    if (!o.prompt_given && o.tokens.empty() && file.empty()) {
        if (stdin_is_terminal()) {
            throw Error("give a prompt: --prompt TEXT, --tokens IDS, --file PATH (- for stdin), or pipe text in");
        }
        file = "-";
    }
    const bool text_prompt = o.prompt_given || !file.empty();

    model::GenerateOptions g;
    uint64_t seed = o.seed;
    const bool seed_given = given(*o.cmd, "--seed");
    if (!seed_given) {
        std::random_device rd;  // a fresh seed per run, printed so that the run can be repeated
        seed = (uint64_t(rd()) << 32 | rd()) & ((uint64_t(1) << 53) - 1);  // exact in a JSON number
    }
    g.sampling = {o.temperature, o.top_k, o.top_p, seed, o.min_p, o.repeat_penalty, o.repeat_last_n};
    g.max_tokens = o.max_tokens;
    g.stop = o.stop;
    model::Sampler check_sampling(g.sampling);  // bad sampling options fail before the weights are read
    const model::ModelInfo info = model::inspect_model(o.model.model);
    std::vector<int> ids;
    if (!text_prompt) {
        ids = parse_ids(o.tokens, "--tokens");
        check_prompt(ids, info, "--tokens");
    }
    const std::string prompt_text = o.prompt_given ? o.prompt : file.empty() ? "" : read_text_file("--file", file, true);
    const std::string prompt_option = o.prompt_given ? "--prompt" : file == "-" ? "the prompt on stdin" : "--file";

    // Text mode prints the prompt and then the continuation; --tokens mode prints only the new ids, so that
    // they can be passed back in.
    LoadedModel loaded = open_timed(o.model);
    model::LanguageModel& lm = *loaded.lm;
    if (text_prompt) {
        ids = need_tokenizer(lm, prompt_option, "give token ids with --tokens").encode(prompt_text);
        if (ids.empty() && lm.special_tokens().bos) ids.push_back(*lm.special_tokens().bos);  // start of text
        if (ids.empty()) throw Error("the prompt is empty and the model has no beginning-of-sequence token");
        check_prompt(ids, info, prompt_option);
    } else if (!o.stop.empty()) {
        need_tokenizer(lm, "--stop", "give stop strings only with a model that has a tokenizer");
    }

    // Everything is checked: from here on stderr says what runs.
    std::fprintf(stderr, "loaded in %s: %s; %zu prompt tokens\n", duration_str(loaded.load_ms / 1e3).c_str(),
                 lm.description().c_str(), ids.size());
    char sampling[256];
    if (o.temperature == 0) {
        std::snprintf(sampling, sizeof sampling, "greedy (--temperature 0)");
    } else {
        std::snprintf(sampling, sizeof sampling, "temperature %g, top-k %d, top-p %g, min-p %g, seed %llu%s",
                      double(o.temperature), o.top_k, double(o.top_p), double(o.min_p),
                      static_cast<unsigned long long>(seed), seed_given ? "" : " (random; --seed repeats it)");
    }
    std::string penalty = "off";
    if (o.repeat_penalty != 1) {
        char value[32];
        std::snprintf(value, sizeof value, "%g", double(o.repeat_penalty));
        penalty = std::string(value) + " over the last " + std::to_string(o.repeat_last_n) +
                  " tokens";
    }
    std::fprintf(stderr, "sampling: %s; repeat penalty %s; at most %d new tokens\n", sampling, penalty.c_str(),
                 o.max_tokens);
    std::fflush(stderr);

    if (text_prompt && !o.json) write_out(prompt_text);
    size_t printed = 0;
    const model::GenerateResult r = model::generate(lm, ids, g, [&](int id, std::string_view text) {
        if (o.json) return;
        if (text_prompt) {
            write_out(text);
        } else if (id >= 0) {
            std::printf(printed++ == 0 ? "%d" : ",%d", id);
            std::fflush(stdout);
        }
    });
    if (!o.json) std::printf("\n");
    std::fflush(stdout);  // before the stderr summary, so the two do not interleave on one terminal

    const int n = int(r.tokens.size());
    const double prefill_tps = r.prefill_ms > 0 ? 1e3 * r.prompt_tokens / r.prefill_ms : 0.0;
    const double decode_tps = r.decode_steps && r.decode_ms > 0 ? 1e3 * r.decode_steps / r.decode_ms : 0.0;
    if (r.reason == model::StopReason::max_tokens) {
        std::fprintf(stderr, "generated %d new tokens (--max-tokens %d)\n", n, o.max_tokens);
    } else {
        std::fprintf(stderr, "stopped after %d of --max-tokens %d new tokens: %s\n", n, o.max_tokens,
                     stop_reason(r, lm).c_str());
    }
    std::fprintf(stderr, "load: %.1f ms; prefill: %d tokens in %.1f ms (%.1f tokens/s); decode: %d tokens in %.1f ms "
                         "(%.1f tokens/s)\n",
                 loaded.load_ms, r.prompt_tokens, r.prefill_ms, prefill_tps, r.decode_steps, r.decode_ms, decode_tps);
    if (o.json) {
        nlohmann::ordered_json j = provenance(lm.context());
        j["model"] = o.model.model;
        j["description"] = lm.description();
        j["backend"] = o.model.backend;
        j["sampling"] = {{"temperature", shown(o.temperature)}, {"top_k", o.top_k}, {"top_p", shown(o.top_p)},
                         {"min_p", shown(o.min_p)}, {"repeat_penalty", shown(o.repeat_penalty)},
                         {"repeat_last_n", o.repeat_last_n}, {"seed", seed},     {"seed_given", seed_given}};
        j["max_tokens"] = o.max_tokens;
        j["prompt_tokens"] = r.prompt_tokens;
        j["new_tokens"] = n;
        j["tokens"] = r.tokens;
        j["text"] = lm.tokenizer() ? nlohmann::ordered_json(r.text) : nlohmann::ordered_json(nullptr);
        j["stop_reason"] = model::stop_reason_name(r.reason);
        j["load_ms"] = loaded.load_ms;
        j["prefill_ms"] = r.prefill_ms;
        j["prefill_tokens_per_s"] = prefill_tps;
        j["decode_steps"] = r.decode_steps;
        j["decode_ms"] = r.decode_ms;
        j["decode_tokens_per_s"] = decode_tps;
        std::printf("%s\n", json_line(j).c_str());
    }
    return kOk;
}

}  // namespace

Runner add_generate(CLI::App& app) {
    auto* cmd = app.add_subcommand("generate",
                                   "Stream a continuation of a prompt (text on stdout; settings and speed on stderr)");
    auto o = std::make_shared<Options>();
    o->cmd = cmd;
    o->model.add_to(*cmd);
    cmd->add_option("--prompt", o->prompt, "prompt text (needs the model's tokenizer); the prompt and the "
                                           "continuation are printed")
        ->each([o](const std::string&) { o->prompt_given = true; });
    cmd->add_option("--tokens", o->tokens, "prompt as comma-separated token ids; the new ids are printed, "
                                           "comma-separated");
    cmd->add_option("--file", o->file, "prompt text from this file, or from stdin with '-' (also read from stdin when "
                                       "no prompt option is given and stdin is not a terminal)")
        ->type_name("FILE");
    constexpr int kMax = std::numeric_limits<int>::max();
    constexpr double kFloatMax = double(std::numeric_limits<float>::max());
    add_int(*cmd, "--max-tokens", o->max_tokens, 0, kMax,
            "new tokens to generate; fewer only when an end-of-sequence token, a --stop string or the end of the "
            "context comes first (stderr says which)");
    add_float(*cmd, "--temperature", o->temperature, 0, kFloatMax, false, "sampling temperature; 0 is greedy");
    add_int(*cmd, "--top-k", o->top_k, 0, kMax, "keep the k most likely tokens; 0: all");
    add_float(*cmd, "--top-p", o->top_p, 0, 1, true, "keep the smallest set of tokens reaching this probability; 1: all");
    add_float(*cmd, "--min-p", o->min_p, 0, 1, false,
              "keep the tokens at least this many times as likely as the most likely one; 0: all");
    add_float(*cmd, "--repeat-penalty", o->repeat_penalty, 0, kFloatMax, true,
              "divide the positive logits (multiply the negative ones) of tokens among the last --repeat-last-n, "
              "prompt included, by this; 1: off (1.1 is a common choice)");
    add_int(*cmd, "--repeat-last-n", o->repeat_last_n, 0, kMax, "how many recent tokens --repeat-penalty looks at");
    add_uint64(*cmd, "--seed", o->seed, "sampler seed (default: a random one, printed on stderr)")->default_str("random");
    cmd->add_option("--stop", o->stop, "end when the text contains this string (repeatable; needs a tokenizer); "
                                       "it is not printed");
    cmd->add_flag("--json", o->json,
                  "print no text while generating; at the end one JSON object on stdout: the new tokens and text, "
                  "the stop reason, the settings and speeds, version, commit, device and driver");
    cmd->footer("The sampler runs in llama.cpp's order: repeat penalty, top-k, top-p, min-p, temperature. "
                "Stops at an end-of-sequence token (config.json's eos_token_id; GPT-2's <|endoftext|>, the last "
                "vocabulary id of a synthetic model), a --stop string, after --max-tokens, or when the context is full. "
                "Text is printed in whole UTF-8 characters.");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
