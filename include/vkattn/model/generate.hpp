// Text generation with any LanguageModel: prefill the prompt, then sample one token at a time with the KV
// cache, streaming the text as whole UTF-8 characters.
#pragma once

#include <vkattn/export.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/sampler.hpp>

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

struct GenerateOptions {
    SamplerOptions sampling;        // greedy by default
    int max_tokens = 50;            // most new tokens (>= 0)
    bool stop_at_eos = true;        // end at any of the model's end-of-sequence ids (not emitted)
    std::vector<std::string> stop;  // end when the text contains one of these (neither it nor what follows is
                                    // emitted); needs the model's tokenizer
};

enum class StopReason { max_tokens, eos, stop_string, context_full };

struct GenerateResult {
    std::vector<int> tokens;    // the new ids, in order (an end-of-sequence id is not included)
    std::string text;           // everything streamed, i.e. the decoded new tokens up to a stop string
    StopReason reason = StopReason::max_tokens;
    int prompt_tokens = 0;
    int decode_steps = 0;       // single-token forwards after the prefill
    double prefill_ms = 0;      // wall clock of the prompt's forward and the first token's sampling
    double decode_ms = 0;       // wall clock of the decode steps (sampling included)
};

// Called once per new token with its id and the text that became complete with it: whole UTF-8 characters
// only (empty while a character is split across tokens, or while the text might be the start of a stop
// string); then, when text was held back to the end, once more with id -1 and that text (a character cut
// off by the end becomes U+FFFD). Without a tokenizer the text is always empty.
using TokenCallback = std::function<void(int id, std::string_view text)>;

// Runs `prompt` [T >= 1] after what the model's KV cache holds, then samples up to max_tokens new tokens.
// Stops early at an end-of-sequence id, a stop string, or when the context is full (the model's
// context_length). Throws vkattn::Error on an empty prompt, a prompt that does not fit the context, bad
// sampling options, or stop strings without a tokenizer (or an empty one).
VKATTN_API GenerateResult generate(LanguageModel& model, std::span<const int> prompt, const GenerateOptions& options = {},
                        const TokenCallback& on_token = {});

// "max_tokens", "eos", "stop_string", "context_full".
VKATTN_API const char* stop_reason_name(StopReason reason);

// Bytes of `text` up to the start of a trailing UTF-8 sequence that still misses continuation bytes.
VKATTN_API size_t complete_utf8_prefix(std::string_view text);

}  // namespace vkattn::model
