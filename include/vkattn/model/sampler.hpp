// Picking the next token from logits: greedy, or top-k, then top-p (nucleus), then temperature sampling.
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <span>

namespace vkattn::model {

struct SamplerOptions {
    float temperature = 0;  // 0: greedy (argmax, lowest index on ties); otherwise softmax(logits / temperature)
    int top_k = 0;          // keep the k largest logits; 0: all
    float top_p = 1;        // keep the smallest set of largest logits whose probability reaches top_p; 1: all
    uint64_t seed = 0;      // the same seed and logits give the same tokens on every platform
};

// The filters run in llama.cpp's order: top-k, then top-p on the softmax of the raw logits, then the
// temperature softmax over the survivors, so the temperature reshapes the nucleus but does not choose it.
class VKATTN_API Sampler {
public:
    // Throws vkattn::Error unless temperature >= 0, top_k >= 0 and 0 < top_p <= 1.
    explicit Sampler(const SamplerOptions& options = {});

    // A token index into logits [V]. Throws vkattn::Error on empty logits, a NaN logit, or no finite logit
    // to sample from.
    int sample(std::span<const float> logits);

    const SamplerOptions& options() const { return options_; }

private:
    double next_uniform();  // [0, 1) from splitmix64: std distributions differ between standard libraries

    SamplerOptions options_;
    uint64_t state_;
};

}  // namespace vkattn::model
