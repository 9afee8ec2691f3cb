// LanguageModel::submit_select for the GPU families: a one-token decode step whose body (every layer and the LM
// head: the ~200-300 dispatches whose recording is the host's share of a step) is recorded while the device runs
// the previous step, and which is submitted, once its token is known, between a prologue (the token's embedding
// row, copied) and an epilogue (the selection, or the logits' readback) recorded then: a few commands. The three
// go to the queue as one vk::Batch, so the step's commands run in order as if recorded in one command buffer.
#pragma once

#include "model/logit_select.hpp"
#include "ops/runtime.hpp"

#include <vkattn/model/language_model.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>

namespace vkattn::model {

class StepAhead {
public:
    using Record = std::function<void(ops::Encoder&)>;

    explicit StepAhead(ops::Runtime& runtime) : runtime_(runtime) {}
    StepAhead(const StepAhead&) = delete;
    StepAhead& operator=(const StepAhead&) = delete;
    ~StepAhead();  // completes a step in flight

    // Whether a body is recorded for the step at cache position pos.
    bool prepared_for(int pos) const { return body_ != nullptr && body_pos_ == pos; }
    // Records the body of the step at position pos, replacing any earlier one.
    void prepare(int pos, const Record& body);
    // Forgets the prepared body: the model's position or buffers changed under it.
    void drop() { body_.reset(); }
    // Before any other use of the model: the step in flight completed, the body recorded ahead forgotten.
    void settle() {
        complete();
        drop();
    }

    // Submits the prepared body (prepared_for the model's position: the caller checks) between prologue and
    // epilogue, after completing a step still in flight. `finish` reads the answer once the device is done; the
    // returned PendingSelection hands it out.
    std::unique_ptr<PendingSelection> submit(const Record& prologue, const Record& epilogue,
                                             std::function<LogitSelection()> finish);
    // submit() for a selection answering request from logits [V] at the start of `logits` (which the body's LM
    // head wrote): on the device (`selection`, made on first use) where selects_on_device says so, else on the
    // host from the logits read back.
    std::unique_ptr<PendingSelection> submit_select(const Record& prologue, const vk::ReadbackBuffer& logits,
                                                    std::optional<DeviceSelection>& selection, uint32_t V,
                                                    const LogitRequest& request);
    // Runs `prepare` (which records the next step's body) after a submission. A failure there is not the submitted
    // step's: the body is dropped, and the next submission prepares again and reports it before submitting.
    void prepare_next(const std::function<void()>& prepare);
    // Completes the step in flight, if any: waits for the device and runs its finish. Every other use of the
    // model calls this first, so that nothing it does overlaps the step or overwrites what finish reads.
    void complete();

private:
    // What a PendingSelection reads: the answer, the error, or (while in flight) who completes it.
    struct Outcome {
        std::optional<LogitSelection> selection;
        std::exception_ptr error;
        StepAhead* owner = nullptr;
    };
    class Pending;
    struct InFlight {
        std::unique_ptr<vk::Recorder> prologue, body, epilogue;
        std::unique_ptr<vk::Batch> batch;  // after the Recorders: destroyed (and waited for) before them
        std::function<LogitSelection()> finish;
        std::shared_ptr<Outcome> outcome;
    };

    std::unique_ptr<vk::Recorder> new_recorder() const;

    ops::Runtime& runtime_;
    std::unique_ptr<vk::Recorder> body_;
    int body_pos_ = -1;
    std::optional<InFlight> in_flight_;
};

}  // namespace vkattn::model
