// Picking the next token from logits: a repetition penalty, then greedy, or top-k, top-p (nucleus), min-p and
// temperature sampling.
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <deque>
#include <span>

namespace vkattn::model {

struct SamplerOptions {
    float temperature = 0;     // 0: greedy (argmax, lowest index on ties); otherwise softmax(logits / temperature)
    int top_k = 0;             // keep the k largest logits; 0: all
    float top_p = 1;           // keep the smallest set of largest logits whose probability reaches top_p; 1: all
    uint64_t seed = 0;         // the same seed and logits give the same tokens on every platform
    float min_p = 0;           // keep the tokens at least min_p times as likely as the most likely one; 0: all
    float repeat_penalty = 1;  // a token among the last repeat_last_n has its logit divided by this if positive,
                               // multiplied if negative (CTRL, Keskar et al. 2019, as llama.cpp does); 1: off
    int repeat_last_n = 64;    // how many of the most recent tokens (see Sampler::accept) the penalty looks at
};

// The steps run in llama.cpp's order: the repetition penalty on the raw logits, then (unless greedy) top-k, then
// top-p and min-p on the softmax of the penalised logits, then the temperature softmax over the survivors, so the
// temperature reshapes the candidates but does not choose them.
class VKATTN_API Sampler {
public:
    // Throws vkattn::Error unless temperature >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1,
    // repeat_penalty > 0 (finite) and repeat_last_n >= 0.
    explicit Sampler(const SamplerOptions& options = {});

    // A token index into logits [V]. The token chosen joins the history the repeat penalty reads. Throws
    // vkattn::Error on empty logits, a NaN logit, or no finite logit to sample from.
    int sample(std::span<const float> logits);

    // Adds tokens to the history the repeat penalty reads, oldest first (the prompt, before the first sample).
    void accept(std::span<const int> tokens);

    const SamplerOptions& options() const { return options_; }

private:
    int choose(std::span<const float> logits);  // sample() after its checks, without the history update
    double next_uniform();  // [0, 1) from splitmix64: std distributions differ between standard libraries

    SamplerOptions options_;
    uint64_t state_;
    std::deque<int> recent_;  // the last repeat_last_n tokens, oldest first
};

}  // namespace vkattn::model
