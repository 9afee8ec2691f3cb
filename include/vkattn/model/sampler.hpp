// Picking the next token from logits: a repetition penalty, then greedy, or top-k, top-p (nucleus), min-p and
// temperature sampling.
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

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

// What a sampler needs of a row of logits [V] when it needs less than all of it: the k largest logits outside
// `skip`, and the logits at `skip` (the recent tokens, whose repeat penalty may move them into the top). A GPU
// model selects these on the device and reads back a few hundred bytes instead of V floats
// (LanguageModel::forward_select).
struct LogitRequest {
    int k = 1;              // 1 <= k <= Sampler::kMaxCandidates
    std::vector<int> skip;  // ascending, distinct, each in [0, V)
};

// The answer to a LogitRequest over logits [vocab].
struct LogitSelection {
    int vocab = 0;               // V
    std::vector<int> ids;        // the k largest logits outside skip (fewer if fewer remain), by decreasing
                                 // logit, ties by increasing id; NaNs never chosen
    std::vector<float> logits;   // the logits at ids
    std::vector<float> skipped;  // the logits at the request's skip ids, in its order
    int first_nan = -1;          // the lowest id whose logit is NaN; -1: none
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

    // The most candidates a LogitRequest asks for (the top_k that a selection on the device can serve).
    static constexpr int kMaxCandidates = 256;
    static constexpr int kMaxSkipped = 16000;  // the most distinct penalised tokens a LogitRequest lists
    // The part of the next row of logits [vocab] that sample(selection, request) needs: the top 1 when greedy,
    // the top_k when 0 < top_k <= kMaxCandidates, the penalised recent tokens besides; nullopt when the sampler
    // needs the whole row (temperature > 0 without such a top_k, or an unusually long penalised history).
    std::optional<LogitRequest> request(int vocab) const;
    // The token sample(logits) would choose from the logits that `selection` answers `request` about (and the
    // same history update): the same token for the same seed, whichever way the logits came. Throws
    // vkattn::Error as sample() does, and on a selection that does not answer the request.
    int sample(const LogitSelection& selection, const LogitRequest& request);

    // Adds tokens to the history the repeat penalty reads, oldest first (the prompt, before the first sample).
    void accept(std::span<const int> tokens);

    const SamplerOptions& options() const { return options_; }

private:
    struct Candidate {
        int id;
        float logit;  // penalised
    };
    int choose(std::span<const float> logits);  // sample() after its checks, without the history update
    // Top-p, min-p and the temperature draw over candidates ordered by decreasing logit, ties by increasing id
    // (the top_k of the penalised logits; not empty).
    int draw(std::span<const Candidate> candidates);
    float penalised(float logit) const;  // a recent token's logit after the repeat penalty
    double next_uniform();  // [0, 1) from splitmix64: std distributions differ between standard libraries

    SamplerOptions options_;
    uint64_t state_;
    std::deque<int> recent_;  // the last repeat_last_n tokens, oldest first
};

}  // namespace vkattn::model
