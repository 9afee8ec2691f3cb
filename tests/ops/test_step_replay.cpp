// A decode step recorded once and replayed (model/step_ahead.hpp): the kernels that take a position or a key count
// read them from a glsl::StepParams buffer when they run. Each is recorded once into a reusable command buffer,
// then replayed at several positions, the buffer rewritten before each submission, and every replay is checked
// against the CPU reference at that position: fused attention (each scalar variant, GQA, a window, f16, the query
// at the step's row), the position embedding, RoPE on a KV-cache row, and a matmul writing the step's row.
#include "catch.hpp"
#include "cpu/attention.hpp"
#include "cpu/half.hpp"
#include "cpu/rope.hpp"
#include "ops/attention.hpp"
#include "ops/llama_ops.hpp"
#include "ops/matmul.hpp"
#include "ops/runtime.hpp"
#include "ops/transformer.hpp"
#include "vulkan/recorder.hpp"
#include "attention_cases.hpp"
#include "support.hpp"

#include <vkattn/tensor.hpp>

#include "step_params.h"

#include <cmath>
#include <functional>
#include <mutex>
#include <vector>

using namespace vkattn;
using namespace vkattn::test;

namespace {

// Records `record` once into a reusable command buffer; run(params) writes the StepParams and replays it.
class Replay {
public:
    Replay(Context& ctx, const std::function<void(ops::Encoder&, const vk::Buffer& step)>& record)
        : rt_(ops::runtime(ctx)), step_(rt_.device(), sizeof(ops::glsl::StepParams)) {
        std::lock_guard lock(rt_.device().mutex());
        recorder_ = std::make_unique<vk::Recorder>(rt_.device(), false, true);
        ops::Encoder enc{rt_.device(), rt_.pipelines(), *recorder_};
        record(enc, step_);
    }
    void run(const ops::glsl::StepParams& params) {
        rt_.device().upload(step_, 0, &params, sizeof(params));
        vk::Batch batch(rt_.device());
        vk::Recorder* parts[] = {recorder_.get()};
        batch.submit(parts);
        batch.wait();
    }

private:
    ops::Runtime& rt_;
    vk::Buffer step_;
    std::unique_ptr<vk::Recorder> recorder_;
};

// One query row at position Lk - 1 against the first Lk rows of K and V [B, Hkv, P, D] (a cache of P rows).
std::vector<float> reference(const Case& c, int P, const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, int Lk) {
    std::vector<float> ks, vs;
    for (int b = 0; b < c.B; ++b)
        for (int h = 0; h < c.Hkv; ++h)
            for (int j = 0; j < Lk; ++j)
                for (int d = 0; d < c.D; ++d) {
                    const size_t at = ((size_t(b) * c.Hkv + h) * P + j) * c.D + d;
                    ks.push_back(k[at]);
                    vs.push_back(v[at]);
                }
    std::vector<float> out(size_t(c.B) * c.H * c.D);
    cpu::AttentionMask mask;
    mask.causal = c.causal;
    mask.window = c.window;
    cpu::attention({c.B, c.H, c.Hkv, 1, Lk, c.D}, mask, q.data(), ks.data(), vs.data(), 0, out.data());
    return out;
}

// q_in_cache: Q [B, H, P, D] holds a query per position and the step reads row Lk - 1 (q_at_step), as GPT-2's
// query sits in the cache row the step wrote; else Q is [B, H, 1, D].
void check_replayed_flash(const Case& c, ops::FlashVariant variant, uint32_t splits, int planned,
                          const std::vector<int>& replays, bool q_in_cache) {
    Context& ctx = gpu();
    const int P = c.Lk;  // the cache's rows
    const int q_rows = q_in_cache ? P : 1;
    const uint64_t seed = seed_of(c.name());
    const auto q = round_to(c.dtype, random_values(size_t(c.B) * c.H * q_rows * c.D, seed, -2, 2));
    const auto k = round_to(c.dtype, random_values(size_t(c.B) * c.Hkv * P * c.D, seed + 1, -2, 2));
    const auto v = round_to(c.dtype, random_values(size_t(c.B) * c.Hkv * P * c.D, seed + 2, -1, 1));
    Tensor tq(ctx, {c.B, c.H, q_rows, c.D}, q, c.dtype), tk(ctx, {c.B, c.Hkv, P, c.D}, k, c.dtype),
        tv(ctx, {c.B, c.Hkv, P, c.D}, v, c.dtype), out(ctx, {c.B, c.H, 1, c.D}, c.dtype);
    ops::AttentionDims dims{uint32_t(c.B), uint32_t(c.H), uint32_t(c.Hkv), 1, uint32_t(planned), uint32_t(c.D)};
    const ops::MaskArgs mask{.causal = c.causal, .window = uint32_t(c.window)};
    const float scale = float(1.0 / std::sqrt(double(c.D)));
    const auto ref = [&](const Tensor& t, std::array<int64_t, 4> shape) {
        return ops::contiguous(ops::buffer(t), c.dtype, shape);
    };
    Replay replay(ctx, [&](ops::Encoder& enc, const vk::Buffer& step) {
        ops::record_flash(enc, dims, ref(tq, {c.B, c.H, q_rows, c.D}), ref(tk, {c.B, c.Hkv, P, c.D}),
                          ref(tv, {c.B, c.Hkv, P, c.D}), ref(out, {c.B, c.H, 1, c.D}), mask, scale,
                          ops::FlashConfig{.variant = variant, .splits = splits, .step = &step, .q_at_step = q_in_cache});
    });
    for (const int Lk : replays) {
        INFO(c.name() << ", recorded for " << planned << " keys, replayed at " << Lk
                      << (q_in_cache ? ", the query at the step's row" : ""));
        // flash_split's keys per slice for this count with the recording's slice count, as ops::flash_plan gives.
        const uint32_t split_keys = splits > 0 ? uint32_t((Lk + splits - 1) / splits) : 0;
        if (splits > 0) REQUIRE((uint32_t(Lk) + split_keys - 1) / split_keys == splits);  // the same grid
        replay.run({uint32_t(Lk - 1), uint32_t(Lk), split_keys, 0});
        std::vector<float> q_now = q;  // the query the step reads: row Lk - 1 of each head when in the cache
        if (q_in_cache) {
            q_now.clear();
            for (int z = 0; z < c.B * c.H; ++z) {
                const auto row = q.begin() + ptrdiff_t((size_t(z) * P + size_t(Lk - 1)) * c.D);
                q_now.insert(q_now.end(), row, row + c.D);
            }
        }
        const auto cmp =
            compare(out.download(), reference(c, P, q_now, k, v, Lk), atol_for(c.dtype), rtol_for(c.dtype));
        INFO(cmp.describe());
        CHECK(cmp.ok);
    }
}

}  // namespace

TEST_CASE("fused attention recorded once reads its key count from the step buffer", "[gpu][attention][flash][step]") {
    // Cache of Lk rows; causal, so the query (the newest position) sees every key up to its own, the window
    // the last `window` of them.
    const Case c = GENERATE(Case{1, 4, 4, 1, 70, 64, true},                          // GPT-2's shape
                            Case{1, 8, 2, 1, 70, 64, true},                          // GQA
                            Case{1, 4, 1, 1, 70, 80, true, 9},                       // MQA, a window, D not 8k
                            Case{2, 4, 2, 1, 70, 128, true, 0, false, false, DType::f16});
    const bool q_in_cache = GENERATE(false, true);
    SECTION("rows") { check_replayed_flash(c, ops::FlashVariant::rows, 0, 5, {1, 2, 9, 33, 69, 70}, q_in_cache); }
    SECTION("tiled") { check_replayed_flash(c, ops::FlashVariant::tiled, 0, 5, {1, 2, 9, 33, 69, 70}, q_in_cache); }
    SECTION("split") {
        // Three slices at every count replayed (ceil(Lk / ceil(Lk / 3)) == 3).
        check_replayed_flash(c, ops::FlashVariant::split, 3, 40, {7, 9, 10, 33, 40, 69, 70}, q_in_cache);
    }
}

TEST_CASE("flash_plan: one slice count over a range of key counts, the keys per slice changing",
          "[gpu][attention][flash][step]") {
    Context& ctx = gpu();
    const DeviceInfo& info = ctx.device();
    const ops::AttentionDims at{1, 12, 12, 1, 4096, 64};
    const ops::FlashPlan plan = ops::flash_plan(info, at);
    CHECK(plan.variant == ops::flash_variant(info, at));
    if (plan.variant != ops::FlashVariant::split) {
        WARN(info.name << " takes the " << (plan.variant == ops::FlashVariant::rows ? "rows" : "tiled")
                       << " kernel for a decode over 4096 keys: no slices to plan");
        CHECK(plan.splits == 0);
        return;
    }
    REQUIRE(plan.splits >= 1);
    CHECK((at.Lk + plan.split_keys - 1) / plan.split_keys == plan.splits);
    ops::AttentionDims next = at;
    next.Lk = at.Lk + 1;
    const ops::FlashPlan after = ops::flash_plan(info, next);
    CHECK(after.variant == plan.variant);
    CHECK(after.splits == plan.splits);  // past the ramp, one recording serves the next step
    CHECK((next.Lk + after.split_keys - 1) / after.split_keys == after.splits);
}

TEST_CASE("a replayed step's embedding, KV-cache row and RoPE read the position from the step buffer",
          "[gpu][embedding][rope][matmul][step]") {
    Context& ctx = gpu();
    const uint32_t C = 24, P = 40;

    SECTION("position embedding") {
        const DType dt = GENERATE(DType::f32, DType::f16);
        INFO(dtype_name(dt));
        const auto row = round_to(dt, random_values(C, 11));
        const auto wpe = round_to(dt, random_values(size_t(P) * C, 12));
        Tensor rows(ctx, {1, C}, row, dt), twpe(ctx, {P, C}, wpe, dt), x(ctx, {1, C}, DType::f32);
        Replay replay(ctx, [&](ops::Encoder& enc, const vk::Buffer& step) {
            ops::record_position_add(enc, 1, 3, C, dt, ops::buffer(twpe), ops::buffer(rows), ops::buffer(x), 0, &step);
        });
        for (const uint32_t pos : {0u, 3u, 17u, P - 1}) {
            INFO("position " << pos);
            replay.run({pos, pos + 1, 0, 0});
            std::vector<float> want(C);
            for (uint32_t i = 0; i < C; ++i) want[i] = row[i] + wpe[size_t(pos) * C + i];
            CHECK(x.download() == want);  // one f32 add of the same values: exact
        }
    }

    SECTION("a matmul's row, then RoPE on q and on k inside the cache row, at the step's position") {
        // As a Llama step: kv = h · W (+ b) into the cache row, q rotated where it is, k rotated in the cache row.
        const uint32_t H = 4, Hkv = 2, D = 16, KV = 2 * Hkv * D, K = 24;
        const auto inv = cpu::rope_inv_freq(int(D), 10000.0);
        const auto h = random_values(K, 20);
        const auto w = random_values(size_t(KV) * K, 21);  // [KV, K]: nn.Linear's layout
        const auto bias = random_values(KV, 22);
        const auto q0 = random_values(size_t(H) * D, 23);
        const auto cache0 = random_values(size_t(P) * KV, 24);
        Tensor tinv(ctx, {int64_t(inv.size())}, inv), th(ctx, {int64_t(K)}, h), tw(ctx, {int64_t(w.size())}, w),
            tb(ctx, {int64_t(KV)}, bias), tq(ctx, {int64_t(q0.size())}, q0),
            cache(ctx, {int64_t(cache0.size())}, cache0);
        Replay replay(ctx, [&](ops::Encoder& enc, const vk::Buffer& step) {
            ops::record_matmul(enc, ops::matrix(ops::buffer(th), DType::f32, 1, K),
                               ops::matrix(ops::buffer(tw), DType::f32, KV, K), true,
                               ops::matrix(ops::buffer(cache), DType::f32, 1, KV),
                               {.bias = &ops::buffer(tb), .step = &step});
            const ops::TensorRef q{&ops::buffer(tq), DType::f32, 0, {1, H, 1, D}, {0, D, H * D, 1}};
            const ops::TensorRef k{&ops::buffer(cache), DType::f32, 0, {1, Hkv, 1, D}, {0, D, KV, 1}};
            ops::record_rope(enc, 2, ops::buffer(tinv), q, k, &step, true);
        });
        std::vector<float> want_q = q0, want_cache = cache0;
        for (const uint32_t pos : {0u, 5u, 31u, P - 1}) {
            INFO("position " << pos);
            replay.run({pos, pos + 1, 0, 0});  // rotates q again, from where the last replay left it
            // The cache's row pos: h · Wᵀ + b in double, its K half rotated; every other row as it was.
            float* kv = want_cache.data() + size_t(pos) * KV;
            for (uint32_t n = 0; n < KV; ++n) {
                double acc = bias[n];
                for (uint32_t i = 0; i < K; ++i) acc += double(h[i]) * double(w[size_t(n) * K + i]);
                kv[n] = float(acc);
            }
            cpu::rope(1, int(Hkv), int(D), long(KV), int(pos), inv.data(), kv);
            cpu::rope(1, int(H), int(D), long(H * D), int(pos), inv.data(), want_q.data());
            const auto got_q = tq.download();
            const auto cq = compare(got_q, want_q, 1e-6, 0.0);
            // fp32 against double: 24 products of values in [-1, 1] and their sum, at most K · 2^-24 · 24 ≈ 3.4e-5
            // off, then a rotation, which keeps the error's size.
            const auto cc = compare(cache.download(), want_cache, 3.5e-5, 0.0);
            INFO("q: " << cq.describe() << "; cache: " << cc.describe());
            CHECK(cq.ok);
            CHECK(cc.ok);
            want_q = got_q;  // the next replay rotates the device's values
            want_cache = cache.download();
        }
    }
}
