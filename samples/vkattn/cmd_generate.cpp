// vkattn generate: streams a language model's continuation of a prompt, token by token, with the KV cache.
#include "cli.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/generate.hpp>

#include <cstdio>
#include <string_view>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string prompt, tokens;
    bool prompt_given = false;
    int max_tokens = 50;
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    uint64_t seed = 0;
    std::vector<std::string> stop;
};

void write_out(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

int run(const Options& o) {
    if (o.prompt_given == !o.tokens.empty()) throw Error("give the prompt as exactly one of --prompt or --tokens");
    if (o.max_tokens < 0) throw Error("--max-tokens must be >= 0, got " + std::to_string(o.max_tokens));
    model::GenerateOptions g;
    g.sampling = {o.temperature, o.top_k, o.top_p, o.seed};
    g.max_tokens = o.max_tokens;
    g.stop = o.stop;
    model::Sampler check_sampling(g.sampling);  // bad sampling options fail before the weights are read
    const model::ModelInfo info = model::inspect_model(o.model.model);
    std::vector<int> ids;
    if (!o.prompt_given) {
        ids = parse_ids(o.tokens, "--tokens");
        check_prompt(ids, info, "--tokens");
    }

    // Text mode prints the prompt and then the continuation; --tokens mode prints only the new ids, so that
    // they can be passed back in.
    std::unique_ptr<model::LanguageModel> lm = o.model.open();
    if (o.prompt_given) {
        ids = need_tokenizer(*lm, "--prompt", "give token ids with --tokens").encode(o.prompt);
        if (ids.empty() && lm->special_tokens().bos) ids.push_back(*lm->special_tokens().bos);  // start of text
        if (ids.empty()) throw Error("the prompt is empty and the model has no beginning-of-sequence token");
        check_prompt(ids, info, "--prompt");
    } else if (!o.stop.empty()) {
        need_tokenizer(*lm, "--stop", "give stop strings only with a model that has a tokenizer");
    }
    std::fprintf(stderr, "%s; %zu prompt tokens\n", lm->description().c_str(), ids.size());

    if (o.prompt_given) write_out(o.prompt);
    size_t printed = 0;
    const model::GenerateResult r = model::generate(*lm, ids, g, [&](int id, std::string_view text) {
        if (o.prompt_given) {
            write_out(text);
        } else if (id >= 0) {
            std::printf(printed++ == 0 ? "%d" : ",%d", id);
            std::fflush(stdout);
        }
    });
    std::printf("\n");
    std::fflush(stdout);  // before the stderr summary, so the two do not interleave on one terminal

    std::string stop;
    switch (r.reason) {
        case model::StopReason::max_tokens: stop = "--max-tokens reached"; break;
        case model::StopReason::eos: stop = "end-of-sequence token"; break;
        case model::StopReason::stop_string: stop = "stop string"; break;
        case model::StopReason::context_full:
            stop = "the context is full (" + std::to_string(lm->context_length()) + " tokens)";
            break;
    }
    std::fprintf(stderr, "stopped: %s. prefill: %d tokens in %.1f ms (%.1f tokens/s); decode: %d tokens in %.1f ms "
                         "(%.1f tokens/s)\n",
                 stop.c_str(), r.prompt_tokens, r.prefill_ms, 1e3 * r.prompt_tokens / r.prefill_ms, r.decode_steps,
                 r.decode_ms, r.decode_steps ? 1e3 * r.decode_steps / r.decode_ms : 0.0);
    return kOk;
}

}  // namespace

Runner add_generate(CLI::App& app) {
    auto* cmd = app.add_subcommand("generate",
                                   "Stream a continuation of a prompt (text on stdout, speed on stderr)");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd);
    cmd->add_option("--prompt", o->prompt, "prompt text (needs the model's tokenizer); the prompt and the "
                                           "continuation are printed")
        ->each([o](const std::string&) { o->prompt_given = true; });
    cmd->add_option("--tokens", o->tokens, "prompt as comma-separated token ids; the new ids are printed, "
                                           "comma-separated");
    cmd->add_option("--max-tokens", o->max_tokens, "most tokens to generate")->capture_default_str();
    cmd->add_option("--temperature", o->temperature, "sampling temperature; 0 is greedy")->capture_default_str();
    cmd->add_option("--top-k", o->top_k, "keep the k most likely tokens; 0: all")->capture_default_str();
    cmd->add_option("--top-p", o->top_p, "keep the smallest set of tokens reaching this probability")
        ->capture_default_str();
    cmd->add_option("--seed", o->seed, "sampler seed")->capture_default_str();
    cmd->add_option("--stop", o->stop, "end when the text contains this string (repeatable; needs a tokenizer); "
                                       "it is not printed");
    cmd->footer("Stops at an end-of-sequence token (config.json's eos_token_id; GPT-2's <|endoftext|>, the last "
                "vocabulary id of a synthetic model), a --stop string, after --max-tokens, or when the context is full. "
                "Text is printed in whole UTF-8 characters.");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
