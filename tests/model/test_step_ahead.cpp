// StepAhead's bookkeeping (model/step_ahead.hpp): a body is recorded once per shape and replayed at every position
// of that shape, the StepParams written by each submission's prologue; a new shape is recorded while the previous
// step runs; a dropped body is never replayed. The body here stores one row per step at the step's position, so
// what ran, and where, is visible in the buffer: Y's row at the step's position = x · I (exact).
#include "catch.hpp"
#include "model/step_ahead.hpp"
#include "ops/matmul.hpp"
#include "ops/runtime.hpp"
#include "support.hpp"

#include <vkattn/tensor.hpp>

#include <vector>

using namespace vkattn;

TEST_CASE("StepAhead records a body once per shape and replays it", "[gpu][generate][step]") {
    Context& ctx = test::gpu();
    ops::Runtime& rt = ops::runtime(ctx);
    constexpr uint32_t n = 4, P = 12;
    std::vector<float> row(n);
    for (uint32_t i = 0; i < n; ++i) row[i] = float(i + 1);
    std::vector<float> identity(size_t(n) * n, 0.0f);
    for (uint32_t i = 0; i < n; ++i) identity[size_t(i) * n + i] = 1.0f;
    Tensor src(ctx, {int64_t(n)}, row), eye(ctx, {int64_t(n * n)}, identity),
        dst(ctx, {int64_t(P * n)}, std::vector<float>(size_t(P) * n, 0.0f));

    model::StepAhead ahead(rt);
    const auto body = [&](ops::Encoder& enc) {
        ops::record_matmul(enc, ops::matrix(ops::buffer(src), DType::f32, 1, n),
                           ops::matrix(ops::buffer(eye), DType::f32, n, n), false,
                           ops::matrix(ops::buffer(dst), DType::f32, 1, n), {.step = &ahead.params()});
    };
    const auto none = [](ops::Encoder&) {};
    const auto finish = [] { return model::LogitSelection{}; };
    const auto step_at = [](uint32_t pos, uint32_t splits) {
        model::StepAhead::Step s;
        s.shape = {ops::FlashVariant::split, splits, P};
        s.params = {pos, pos + 1, 1, 0};
        return s;
    };
    const model::StepAhead::Shape a = step_at(0, 1).shape, b = step_at(0, 2).shape;

    // Positions 0-4 of shape a: one recording, replayed while the next step is prepared (nothing to record).
    ahead.prepare(a, body);
    for (uint32_t pos = 0; pos < 5; ++pos) {
        auto pending = ahead.submit(step_at(pos, 1), none, none, finish);
        ahead.prepare_next(a, [&] { ahead.prepare(a, body); });
        pending->wait();
    }
    CHECK(ahead.recordings() == 1);

    // Position 5 is of shape b: recorded while position 4's step ran... here, after a's last step.
    ahead.prepare_next(b, [&] { ahead.prepare(b, body); });
    CHECK(ahead.recordings() == 2);
    CHECK(ahead.prepared_for(b));
    CHECK_FALSE(ahead.prepared_for(a));
    auto pending = ahead.submit(step_at(5, 2), none, none, finish);
    CHECK(ahead.prepared_for(b));  // in flight, and back for the next step once it completes
    // Dropped while in flight (the model's buffers changed): not replayed.
    ahead.drop();
    CHECK_FALSE(ahead.prepared_for(b));
    pending->wait();
    CHECK_FALSE(ahead.prepared_for(b));
    // A submission without a body of its shape is refused before anything runs.
    CHECK(test::error_of([&] { ahead.submit(step_at(6, 2), none, none, finish); }).find("without a body") !=
          std::string::npos);
    ahead.prepare(b, body);
    ahead.submit(step_at(6, 2), none, none, finish)->wait();
    CHECK(ahead.recordings() == 3);

    // Rows 0-6 hold the row, each written by the step of that position; the rest are untouched.
    const std::vector<float> got = dst.download();
    for (uint32_t pos = 0; pos < P; ++pos) {
        INFO("row " << pos);
        for (uint32_t i = 0; i < n; ++i) CHECK(got[size_t(pos) * n + i] == (pos <= 6 ? row[i] : 0.0f));
    }
}
