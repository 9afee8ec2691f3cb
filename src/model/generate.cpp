#include <vkattn/error.hpp>
#include <vkattn/model/generate.hpp>

#include <algorithm>
#include <chrono>
#include <optional>

namespace vkattn::model {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Holds decoded bytes back until they are whole characters that cannot begin a stop string, so the caller
// never sees half a character nor text that a stop string later takes back.
class TextStream {
public:
    TextStream(const std::vector<std::string>& stop, GenerateResult& result) : stop_(stop), result_(result) {}

    // Adds a token's bytes; returns the text now safe to emit, and whether a stop string was reached.
    std::string push(const std::string& bytes, bool& stopped) {
        pending_ += bytes;
        size_t hit = std::string::npos;
        for (const std::string& s : stop_) hit = std::min(hit, pending_.find(s));
        stopped = hit != std::string::npos;
        if (stopped) {
            pending_.resize(hit);
            return take(complete_utf8_prefix(pending_));
        }
        // The longest tail of pending_ that is a proper prefix of a stop string may still become one.
        size_t hold = 0;
        for (const std::string& s : stop_) {
            for (size_t n = std::min(s.size() - 1, pending_.size()); n > hold; --n) {
                if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
                    hold = n;
                    break;
                }
            }
        }
        return take(complete_utf8_prefix(std::string_view(pending_).substr(0, pending_.size() - hold)));
    }

    // What is left at the end, a cut-off character replaced by U+FFFD.
    std::string finish() {
        std::string out = take(complete_utf8_prefix(pending_));
        if (!pending_.empty()) {
            out += "\xEF\xBF\xBD";
            result_.text += "\xEF\xBF\xBD";
            pending_.clear();
        }
        return out;
    }

private:
    std::string take(size_t n) {
        std::string out = pending_.substr(0, n);
        pending_.erase(0, n);
        result_.text += out;
        return out;
    }

    const std::vector<std::string>& stop_;
    GenerateResult& result_;
    std::string pending_;
};

}  // namespace

size_t complete_utf8_prefix(std::string_view text) {
    const size_t n = text.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto b = static_cast<unsigned char>(text[n - back]);
        if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back for the lead byte
        const size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;  // no lead byte within reach: not a sequence that more bytes could complete
}

const char* stop_reason_name(StopReason reason) {
    switch (reason) {
        case StopReason::max_tokens: return "max_tokens";
        case StopReason::eos: return "eos";
        case StopReason::stop_string: return "stop_string";
        case StopReason::context_full: return "context_full";
    }
    return "?";
}

GenerateResult generate(LanguageModel& model, std::span<const int> prompt, const GenerateOptions& options,
                        const TokenCallback& on_token) {
    if (options.max_tokens < 0) throw Error("max_tokens must be >= 0, got " + std::to_string(options.max_tokens));
    if (prompt.empty()) throw Error("the prompt is empty; generation needs at least one token");
    const Tokenizer* tokenizer = model.tokenizer();
    for (const std::string& s : options.stop) {
        if (s.empty()) throw Error("a stop string is empty");
        if (tokenizer == nullptr) throw Error("stop strings need the model's tokenizer, and " + model.info().source + " has none");
    }
    const int64_t P = model.context_length();
    if (int64_t(model.position()) + int64_t(prompt.size()) > P) {
        throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens, and with the " +
                    std::to_string(model.position()) + " cached ones that exceeds the model's context of " +
                    std::to_string(P));
    }
    Sampler sampler(options.sampling);
    sampler.accept(prompt);  // the repeat penalty looks at the prompt too, as llama.cpp's does
    const std::vector<int>& eos = model.special_tokens().eos;

    GenerateResult r;
    r.prompt_tokens = int(prompt.size());
    TextStream text(options.stop, r);
    // A step's forward and the sampler's choice: the device selects the candidates the sampler needs when it
    // needs few (greedy, top-k), so the logits stay on it; otherwise the whole row comes back.
    const int V = model.vocab_size();
    auto forward_and_sample = [&](std::span<const int> tokens) {
        if (const std::optional<LogitRequest> request = sampler.request(V)) {
            return sampler.sample(model.forward_select(tokens, *request), *request);
        }
        return sampler.sample(model.forward(tokens, false));
    };
    // A decode step the same way, through submit_select: a GPU model records the next step while the device
    // runs this one.
    auto decode_and_sample = [&](int token) {
        if (const std::optional<LogitRequest> request = sampler.request(V)) {
            return sampler.sample(model.submit_select(token, *request)->wait(), *request);
        }
        return sampler.sample(model.forward(std::span<const int>(&token, 1), false));
    };

    auto t0 = std::chrono::steady_clock::now();
    if (options.max_tokens == 0) {
        model.forward(prompt, false);  // the prompt still enters the cache
        r.prefill_ms = ms_since(t0);
        r.reason = StopReason::max_tokens;
        return r;
    }
    int next = forward_and_sample(prompt);
    r.prefill_ms = ms_since(t0);

    t0 = std::chrono::steady_clock::now();
    while (true) {
        if (options.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
            r.reason = StopReason::eos;
            break;
        }
        r.tokens.push_back(next);
        bool stopped = false;
        const std::string piece = tokenizer ? text.push(tokenizer->token_text(next), stopped) : std::string();
        if (on_token) on_token(next, piece);
        if (stopped) {
            r.reason = StopReason::stop_string;
            break;
        }
        if (int(r.tokens.size()) == options.max_tokens) {
            r.reason = StopReason::max_tokens;
            break;
        }
        if (model.position() >= P) {
            r.reason = StopReason::context_full;
            break;
        }
        next = decode_and_sample(next);
        ++r.decode_steps;
    }
    r.decode_ms = ms_since(t0);
    if (tokenizer && r.reason != StopReason::stop_string) {
        const std::string rest = text.finish();
        if (!rest.empty() && on_token) on_token(-1, rest);
    }
    return r;
}

}  // namespace vkattn::model
