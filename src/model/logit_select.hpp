// LanguageModel::forward_select's two halves: the checks and the host selection every backend shares, and
// the device selection that GPU models record at the end of a step (ops/top_k.hpp).
#pragma once

#include "ops/top_k.hpp"

#include <vkattn/model/language_model.hpp>
#include <vkattn/model/sampler.hpp>

#include <memory>
#include <span>

namespace vkattn::model {

// Throws vkattn::Error unless request fits logits [vocab] (see LanguageModel::forward_select).
void check_request(const LogitRequest& request, int vocab);

// The selection from a row of logits on the host (cpu::top_k).
LogitSelection select_on_host(std::span<const float> logits, const LogitRequest& request);

// Whether a selection from V logits runs on the device (the top_k kernel) rather than on the host: not where the
// logits are in host memory already (Tuning::sample_on_host) or the vocabulary is longer than the kernel takes.
bool selects_on_device(const DeviceInfo& device, uint32_t V);

// A PendingSelection that is already complete (submit_select where nothing is recorded ahead).
std::unique_ptr<PendingSelection> ready_selection(LogitSelection selection);

// The skip list and the output of a selection on the device, kept across steps so that none allocates.
class DeviceSelection {
public:
    explicit DeviceSelection(vk::Device& device);
    // Selects from logits [V] f32 at element offset row of logits; request checked by check_request.
    void record(ops::Encoder& enc, const vk::Buffer& logits, uint64_t row, uint32_t V, const LogitRequest& request);
    // What the last recorded selection found, once its submission has completed.
    LogitSelection read(uint32_t V) const;

private:
    vk::Device& device_;
    vk::Buffer skip_;          // ids, as many as the longest list so far (at least one)
    vk::ReadbackBuffer out_;   // ops::top_k_words of the largest request so far
    uint32_t k_ = 0, n_skip_ = 0;
};

}  // namespace vkattn::model
