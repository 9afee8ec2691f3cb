#include "model/step_ahead.hpp"

#include <vkattn/error.hpp>

#include <mutex>
#include <vector>

namespace vkattn::model {

class StepAhead::Pending final : public PendingSelection {
public:
    explicit Pending(std::shared_ptr<Outcome> outcome) : outcome_(std::move(outcome)) {}
    ~Pending() override {
        try {
            if (outcome_->owner != nullptr) outcome_->owner->complete();
        } catch (...) {
            // complete() keeps errors in the outcome; nothing else can throw that a destructor could report.
        }
    }

    LogitSelection wait() override {
        if (outcome_->owner != nullptr) outcome_->owner->complete();
        if (outcome_->error) std::rethrow_exception(outcome_->error);
        if (!outcome_->selection) throw Error("internal: a decode step's selection was already taken");
        return *outcome_->selection;
    }

private:
    std::shared_ptr<Outcome> outcome_;
};

StepAhead::Step StepAhead::step_at(const DeviceInfo& device, ops::AttentionDims dims, uint32_t pos, uint64_t cache) {
    dims.Lk = pos + 1;
    const ops::FlashPlan plan = ops::flash_plan(device, dims);
    Step step;
    step.shape = {plan.variant, plan.splits, cache};
    step.params.pos = pos;
    step.params.n_keys = dims.Lk;
    step.params.split_keys = plan.split_keys;
    return step;
}

StepAhead::StepAhead(ops::Runtime& runtime)
    : runtime_(runtime), params_(runtime.device(), sizeof(ops::glsl::StepParams)) {}

StepAhead::~StepAhead() {
    try {
        complete();
    } catch (...) {
        // complete() keeps errors in the outcome.
    }
}

std::unique_ptr<vk::Recorder> StepAhead::new_recorder(bool reusable) const {
    return std::make_unique<vk::Recorder>(runtime_.device(), runtime_.profiling(), reusable);
}

bool StepAhead::prepared_for(const Shape& shape) const {
    if (body_ != nullptr) return body_shape_ == shape;
    return in_flight_ && in_flight_->keep_body && in_flight_->shape == shape;  // back once the step completes
}

void StepAhead::prepare(const Shape& shape, const Record& body) {
    body_.reset();
    std::lock_guard lock(runtime_.device().mutex());  // recording uses the device's pools and pipeline registry
    auto recorder = new_recorder(true);
    ops::Encoder enc{runtime_.device(), runtime_.pipelines(), *recorder};
    body(enc);
    body_ = std::move(recorder);
    body_shape_ = shape;
    ++recordings_;
}

void StepAhead::drop() {
    body_.reset();
    if (in_flight_) in_flight_->keep_body = false;
}

std::unique_ptr<PendingSelection> StepAhead::submit(const Step& step, const Record& prologue, const Record& epilogue,
                                                    std::function<LogitSelection()> finish) {
    complete();  // the body in flight may be the one to replay
    if (body_ == nullptr || !(body_shape_ == step.shape)) {
        throw Error("internal: a decode step submitted without a body of its shape");
    }
    InFlight f;
    {
        std::lock_guard lock(runtime_.device().mutex());
        f.prologue = new_recorder();
        f.epilogue = new_recorder();
        f.prologue->update(params_.get(), 0, &step.params, sizeof(step.params));
        ops::Encoder pro{runtime_.device(), runtime_.pipelines(), *f.prologue};
        prologue(pro);
        ops::Encoder epi{runtime_.device(), runtime_.pipelines(), *f.epilogue};
        epilogue(epi);
        f.shape = body_shape_;
        f.body = std::move(body_);
        f.batch = std::make_unique<vk::Batch>(runtime_.device());
        vk::Recorder* parts[] = {f.prologue.get(), f.body.get(), f.epilogue.get()};
        f.batch->submit(parts);
    }
    f.finish = std::move(finish);
    f.outcome = std::make_shared<Outcome>();
    f.outcome->owner = this;
    auto pending = std::make_unique<Pending>(f.outcome);
    in_flight_.emplace(std::move(f));
    return pending;
}

std::unique_ptr<PendingSelection> StepAhead::submit_select(const Step& step, const Record& prologue,
                                                           const vk::ReadbackBuffer& logits,
                                                           std::optional<DeviceSelection>& selection, uint32_t V,
                                                           const LogitRequest& request) {
    const bool on_device = selects_on_device(runtime_.device().info(), V);
    if (on_device && !selection) selection.emplace(runtime_.device());
    return submit(
        step, prologue,
        [&](ops::Encoder& enc) {
            if (on_device) selection->record(enc, logits.buffer(), 0, V, request);
            else logits.record_copy(enc.recorder, uint64_t(V) * 4);
        },
        [&logits, &selection, V, on_device, request] {
            if (on_device) return selection->read(V);
            std::vector<float> row(V);
            logits.read(row.data(), row.size() * 4);
            return select_on_host(row, request);
        });
}

void StepAhead::prepare_next(const Shape& next, const std::function<void()>& prepare) {
    if (prepared_for(next)) return;  // the usual case: the step just submitted is replayed
    try {
        prepare();
    } catch (const std::exception&) {
        body_.reset();
    }
}

std::unique_ptr<PendingSelection> StepAhead::decode(int& pos, int limit, const StepAt& step_at, const Prepare& prepare,
                                                    const Record& prologue, const vk::ReadbackBuffer& logits,
                                                    std::optional<DeviceSelection>& selection, uint32_t V,
                                                    const LogitRequest& request) {
    const Step step = step_at(uint32_t(pos));
    if (!prepared_for(step.shape)) prepare(step);
    auto pending = submit_select(step, prologue, logits, selection, V, request);
    ++pos;
    if (pos < limit) {  // a new shape is recorded while the device runs this step
        const Step next = step_at(uint32_t(pos));
        prepare_next(next.shape, [&] { prepare(next); });
    }
    return pending;
}

void StepAhead::complete() {
    if (!in_flight_) return;
    InFlight f = std::move(*in_flight_);
    in_flight_.reset();
    f.outcome->owner = nullptr;
    try {
        f.batch->wait();
        {
            std::lock_guard lock(runtime_.device().mutex());
            const vk::Recorder* parts[] = {f.prologue.get(), f.body.get(), f.epilogue.get()};
            runtime_.keep_timings(parts);
        }
        if (f.keep_body && body_ == nullptr) {  // to be replayed, unless a body of another shape was recorded since
            body_ = std::move(f.body);
            body_shape_ = f.shape;
        }
        f.outcome->selection = f.finish();
    } catch (...) {
        f.outcome->error = std::current_exception();
    }
}

}  // namespace vkattn::model
