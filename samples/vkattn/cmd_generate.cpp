// vkattn generate: streams a GPT-2 continuation of a prompt, token by token, with the KV cache.
#include "cli.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/sampler.hpp>

#include <cstdio>
#include <optional>

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
};

// Writes token bytes to stdout as they come, holding back a UTF-8 character that a token boundary cut in
// two until the rest of it arrives (GPT-2's byte-level tokens split many non-ASCII characters).
class Utf8Stream {
public:
    void write(const std::string& bytes) {
        pending_ += bytes;
        const size_t n = complete_prefix();
        std::fwrite(pending_.data(), 1, n, stdout);
        std::fflush(stdout);
        pending_.erase(0, n);
    }
    void finish() {
        std::fwrite(pending_.data(), 1, pending_.size(), stdout);  // an unfinished character, as it is
        std::fputc('\n', stdout);
        std::fflush(stdout);
        pending_.clear();
    }

private:
    // Bytes up to the start of a trailing multi-byte sequence that is still missing continuation bytes.
    size_t complete_prefix() const {
        const size_t n = pending_.size();
        for (size_t back = 1; back <= 3 && back <= n; ++back) {
            const auto b = static_cast<unsigned char>(pending_[n - back]);
            if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back for the lead
            const size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;  // no lead byte within reach: not valid UTF-8 anyway, so nothing to wait for
    }

    std::string pending_;
};

int run(const Options& o) {
    const ModelSource source = resolve_model(o.model.model);
    const auto& c = source.config;
    if (o.prompt_given == !o.tokens.empty()) throw Error("give the prompt as exactly one of --prompt or --tokens");
    if (o.max_tokens < 0) throw Error("--max-tokens must be >= 0, got " + std::to_string(o.max_tokens));
    model::Sampler sampler({o.temperature, o.top_k, o.top_p, o.seed});

    // Text mode prints the prompt and then the continuation; --tokens mode prints only the new ids, so that
    // they can be passed back in.
    std::optional<model::Tokenizer> tokenizer;
    std::vector<int> ids;
    if (o.prompt_given) {
        tokenizer.emplace(load_tokenizer(source, "--prompt", "give token ids with --tokens"));
        ids = tokenizer->encode(o.prompt);
        if (ids.empty()) ids.push_back(tokenizer->eos_id());  // an empty prompt starts after <|endoftext|>
    } else {
        ids = parse_ids(o.tokens, "--tokens");
    }
    // GPT-2's <|endoftext|> is the last id of its vocabulary; a model without a tokenizer follows that.
    const int eos = tokenizer ? tokenizer->eos_id() : c.vocab_size - 1;
    if (int(ids.size()) > c.n_positions) {
        throw Error("the prompt has " + std::to_string(ids.size()) + " tokens, more than the model's n_positions = " +
                    std::to_string(c.n_positions));
    }
    for (const int id : ids) {
        if (id >= c.vocab_size) {
            throw Error("token " + std::to_string(id) + " of the prompt is outside the vocabulary of " +
                        std::to_string(c.vocab_size));
        }
    }

    const model::Gpt2Weights weights = load_weights(source);
    LanguageModel lm(weights, o.model.backend, o.model);
    std::fprintf(stderr, "%s; %zu prompt tokens\n", lm.description().c_str(), ids.size());

    Utf8Stream out;
    if (tokenizer) out.write(o.prompt);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = lm.forward(ids, false);
    const double prefill_ms = ms_since(t0);

    std::string stop = "--max-tokens reached";
    std::vector<int> generated;
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.max_tokens; ++i) {
        const int next = sampler.sample(logits);
        if (next == eos) {
            stop = "<|endoftext|>";
            break;
        }
        generated.push_back(next);
        if (tokenizer) {
            out.write(tokenizer->token_text(next));
        } else {
            std::printf(generated.size() == 1 ? "%d" : ",%d", next);
            std::fflush(stdout);
        }
        if (i + 1 == o.max_tokens) break;
        if (lm.position() == c.n_positions) {
            stop = "the context is full (n_positions = " + std::to_string(c.n_positions) + ")";
            break;
        }
        logits = lm.forward(std::span<const int>(&next, 1), false);
    }
    const double decode_ms = ms_since(t0);
    if (tokenizer) {
        out.finish();
    } else {
        std::printf("\n");
        std::fflush(stdout);  // before the stderr summary, so the two do not interleave on one terminal
    }

    // The sampled tokens that were fed back: the last one never is.
    const size_t decoded = generated.empty() ? 0 : generated.size() - (stop == "<|endoftext|>" ? 0 : 1);
    std::fprintf(stderr, "stopped: %s. prefill: %zu tokens in %.1f ms (%.1f tokens/s); decode: %zu tokens in %.1f ms "
                         "(%.1f tokens/s)\n",
                 stop.c_str(), ids.size(), prefill_ms, 1e3 * double(ids.size()) / prefill_ms, decoded, decode_ms,
                 decoded ? 1e3 * double(decoded) / decode_ms : 0.0);
    return kOk;
}

}  // namespace

Runner add_generate(CLI::App& app) {
    auto* cmd = app.add_subcommand("generate",
                                   "Stream a GPT-2 continuation of a prompt (text on stdout, speed on stderr)");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd);
    cmd->add_option("--prompt", o->prompt, "prompt text (needs vocab.json and merges.txt); the prompt and the "
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
    cmd->footer("Stops at <|endoftext|> (the last vocabulary id when the model has no tokenizer), after --max-tokens, "
                "or when the context reaches n_positions.");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
