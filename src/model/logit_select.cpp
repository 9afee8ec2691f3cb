#include "model/logit_select.hpp"

#include "cpu/top_k.hpp"
#include "ops/tuning.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/language_model.hpp>

#include <string>

namespace vkattn::model {

static_assert(Sampler::kMaxCandidates == int(ops::kTopKMax) && Sampler::kMaxSkipped == int(ops::kTopKMaxSkip),
              "the sampler asks for what the device selection serves");

void check_request(const LogitRequest& request, int vocab) {
    if (request.k < 1 || request.k > Sampler::kMaxCandidates) {
        throw Error("a logit request's k must be in [1, " + std::to_string(Sampler::kMaxCandidates) + "], got " +
                    std::to_string(request.k));
    }
    if (request.skip.size() > size_t(Sampler::kMaxSkipped)) {
        throw Error("a logit request skips " + std::to_string(request.skip.size()) + " ids, more than " +
                    std::to_string(Sampler::kMaxSkipped));
    }
    for (size_t j = 0; j < request.skip.size(); ++j) {
        const int id = request.skip[j];
        if (id < 0 || id >= vocab || (j > 0 && id <= request.skip[j - 1])) {
            throw Error("a logit request's skip ids must be ascending, distinct and in [0, " + std::to_string(vocab) +
                        "); entry " + std::to_string(j) + " is " + std::to_string(id));
        }
    }
}

namespace {

// A selection from what the host's (cpu::TopK) or the device's (ops::TopKResult) top-k found: the same fields.
template <typename TopK>
LogitSelection to_selection(TopK&& top, int vocab) {
    LogitSelection s;
    s.vocab = vocab;
    s.ids = std::move(top.ids);
    s.logits = std::move(top.values);
    s.skipped = std::move(top.skipped);
    s.first_nan = int(top.first_nan);
    return s;
}

// A selection already made (the base class's submit_select).
class ReadySelection final : public PendingSelection {
public:
    explicit ReadySelection(LogitSelection s) : selection_(std::move(s)) {}
    LogitSelection wait() override { return selection_; }

private:
    LogitSelection selection_;
};

}  // namespace

LogitSelection select_on_host(std::span<const float> logits, const LogitRequest& request) {
    return to_selection(cpu::top_k(logits, request.skip, request.k), int(logits.size()));
}

LogitSelection LanguageModel::forward_select(std::span<const int> tokens, const LogitRequest& request) {
    check_request(request, vocab_size());
    if (tokens.empty()) throw Error("forward_select needs at least one token");
    return select_on_host(forward(tokens, false), request);
}

bool selects_on_device(const DeviceInfo& device, uint32_t V) {
    return V <= ops::kTopKMaxVocab && !ops::tuning_for(device).sample_on_host;
}

std::unique_ptr<PendingSelection> ready_selection(LogitSelection selection) {
    return std::make_unique<ReadySelection>(std::move(selection));
}

std::unique_ptr<PendingSelection> LanguageModel::submit_select(int token, const LogitRequest& request) {
    return ready_selection(forward_select(std::span<const int>(&token, 1), request));
}

DeviceSelection::DeviceSelection(vk::Device& device) : device_(device) {}

void DeviceSelection::record(ops::Encoder& enc, const vk::Buffer& logits, uint64_t row, uint32_t V,
                             const LogitRequest& request) {
    k_ = uint32_t(request.k);
    n_skip_ = uint32_t(request.skip.size());
    if (skip_.size() < std::max<uint64_t>(1, n_skip_) * 4) skip_ = vk::Buffer(device_, std::max<uint64_t>(64, n_skip_) * 4);
    const uint64_t out_bytes = ops::top_k_words(k_, n_skip_) * 4;
    if (out_.buffer().size() < out_bytes) out_ = vk::ReadbackBuffer(device_, std::max<uint64_t>(out_bytes, 4096));
    ops::record_top_k(enc, logits, row, V, request.skip, skip_, k_, out_.buffer());
    out_.record_copy(enc.recorder, out_bytes);
}

LogitSelection DeviceSelection::read(uint32_t V) const {
    std::vector<uint32_t> words(ops::top_k_words(k_, n_skip_));
    out_.read(words.data(), words.size() * 4);
    return to_selection(ops::read_top_k(words, k_, n_skip_), int(V));
}

}  // namespace vkattn::model
