// LanguageModel::submit_select for the GPU families: a one-token decode step whose body (every layer and the LM
// head: the ~200-300 dispatches whose recording is the host's share of a step) is recorded once per shape and
// replayed, and which is submitted, once its token is known, between a prologue (the step's position and key count
// written into a small buffer, glsl::StepParams, and the token's embedding row, copied) and an epilogue (the
// selection, or the logits' readback) recorded then: a few commands. The three go to the queue as one vk::Batch,
// so the step's commands run in order as if recorded in one command buffer.
//
// The body's kernels that take a position or a key count (embedding's position row, RoPE, the KV cache's new row,
// attention) read them from the StepParams buffer, so one recording serves every position of the same Shape:
// the attention's plan (its variant and, split-KV, its slice count; ops::flash_plan) and the buffers it binds.
// A new shape (the plan changes at a few key counts; a Llama cache that grows) is recorded while the device runs
// the previous step.
#pragma once

#include "model/logit_select.hpp"
#include "ops/attention.hpp"
#include "ops/runtime.hpp"

#include "step_params.h"

#include <vkattn/model/language_model.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>

namespace vkattn::model {

class StepAhead {
public:
    using Record = std::function<void(ops::Encoder&)>;

    // What a body's recording depends on beyond the StepParams: two positions of the same Shape replay one body.
    struct Shape {
        ops::FlashVariant variant = ops::FlashVariant::rows;
        uint32_t splits = 0;  // split-KV's slices
        uint64_t cache = 0;   // the KV cache's positions, which its bindings span
        bool operator==(const Shape&) const = default;
    };
    // A step at position pos: its shape and its StepParams, for attention of dims (Lk taken as pos + 1).
    struct Step {
        Shape shape;
        ops::glsl::StepParams params{};
    };
    static Step step_at(const DeviceInfo& device, ops::AttentionDims dims, uint32_t pos, uint64_t cache);

    explicit StepAhead(ops::Runtime& runtime);
    StepAhead(const StepAhead&) = delete;
    StepAhead& operator=(const StepAhead&) = delete;
    ~StepAhead();  // completes a step in flight

    // The glsl::StepParams buffer that a body's kernels read (FlashConfig::step and the others' step argument).
    const vk::Buffer& params() const { return params_; }
    // Whether a body of this shape is recorded (or in flight, and kept for the next submission).
    bool prepared_for(const Shape& shape) const;
    // Records a body of this shape, reusable, replacing any earlier one.
    void prepare(const Shape& shape, const Record& body);
    // Forgets the bodies recorded: the model's buffers changed under them.
    void drop();
    // Before any other use of the model: the step in flight completed, the body recorded ahead forgotten.
    void settle() {
        complete();
        drop();
    }

    // Submits the body of step.shape (prepared_for it: the caller checks) between prologue and epilogue, after
    // completing a step still in flight; the prologue first writes step.params. `finish` reads the answer once the
    // device is done; the returned PendingSelection hands it out.
    std::unique_ptr<PendingSelection> submit(const Step& step, const Record& prologue, const Record& epilogue,
                                             std::function<LogitSelection()> finish);
    // submit() for a selection answering request from logits [V] at the start of `logits` (which the body's LM
    // head wrote): on the device (`selection`, made on first use) where selects_on_device says so, else on the
    // host from the logits read back.
    std::unique_ptr<PendingSelection> submit_select(const Step& step, const Record& prologue,
                                                    const vk::ReadbackBuffer& logits,
                                                    std::optional<DeviceSelection>& selection, uint32_t V,
                                                    const LogitRequest& request);
    // After a submission, for the next step: runs `prepare` (which records a body) unless a body of next's shape
    // is at hand, so that a new shape is recorded while the device runs this step. A failure there is not the
    // submitted step's: the body is dropped, and the next submission prepares again and reports it then.
    void prepare_next(const Shape& next, const std::function<void()>& prepare);

    // A family's submit_select once its checks passed: the step at position `pos` (step_at gives it; `prepare`
    // records a body of its shape where none is at hand) submitted through submit_select, pos advanced, and the
    // next step's body prepared (prepare_next) while the device runs this one, unless pos reached `limit`.
    using StepAt = std::function<Step(uint32_t pos)>;
    using Prepare = std::function<void(const Step&)>;
    std::unique_ptr<PendingSelection> decode(int& pos, int limit, const StepAt& step_at, const Prepare& prepare,
                                             const Record& prologue, const vk::ReadbackBuffer& logits,
                                             std::optional<DeviceSelection>& selection, uint32_t V,
                                             const LogitRequest& request);
    // Completes the step in flight, if any: waits for the device and runs its finish. Every other use of the
    // model calls this first, so that nothing it does overlaps the step or overwrites what finish reads.
    void complete();

    // Bodies recorded so far: one per shape, not one per step (tests check it).
    uint64_t recordings() const { return recordings_; }

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
        Shape shape;                       // the body's
        bool keep_body = true;             // false once dropped: not to be replayed
        std::function<LogitSelection()> finish;
        std::shared_ptr<Outcome> outcome;
    };

    std::unique_ptr<vk::Recorder> new_recorder(bool reusable = false) const;

    ops::Runtime& runtime_;
    vk::Buffer params_;  // glsl::StepParams
    std::unique_ptr<vk::Recorder> body_;
    Shape body_shape_;
    uint64_t recordings_ = 0;
    std::optional<InFlight> in_flight_;
};

}  // namespace vkattn::model
