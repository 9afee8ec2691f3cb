// vkattn demo: the worked example of the seed notes on the GPU, step by step, then a multi-head check, then a
// whole model's forward against the CPU reference.
#include "cli.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/matmul.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <chrono>
#include <cstdio>

namespace vkattn::cli {
namespace {

// shared/seeds/003: two tokens of width 4 and the three projections.
const std::vector<float> kX = {6, 1, 4, 4, 8, 4, 6, 3};
const std::vector<float> kWQ = {1, 4, 3, 1, 1, 1, 3, 2, 3, 4, 4, 3, 1, 2, 2, 2};
const std::vector<float> kWK = {2, 1, 2, 1, 4, 1, 4, 2, 3, 4, 4, 1, 3, 4, 1, 2};
const std::vector<float> kWV = {4, 2, 4, 4, 3, 4, 1, 2, 2, 2, 4, 1, 4, 3, 1, 4};
constexpr int kTokens = 2, kWidth = 4, kPadded = 32;

// [2, 4] -> [2, 32] with zero columns: the kernels take D >= 32, and zeros add nothing to a dot product.
std::vector<float> pad(const std::vector<float>& m) {
    std::vector<float> out(size_t(kTokens) * kPadded, 0.0f);
    for (int t = 0; t < kTokens; ++t)
        for (int c = 0; c < kWidth; ++c) out[size_t(t) * kPadded + c] = m[size_t(t) * kWidth + c];
    return out;
}

std::vector<float> unpad(const std::vector<float>& m) {
    std::vector<float> out(size_t(kTokens) * kWidth);
    for (int t = 0; t < kTokens; ++t)
        for (int c = 0; c < kWidth; ++c) out[size_t(t) * kWidth + c] = m[size_t(t) * kPadded + c];
    return out;
}

bool seed_example(Context& ctx) {
    std::printf("== 1. The worked example of the seed notes (shared/seeds/003), on %s ==\n\n", ctx.device().name.c_str());
    print_matrix("X (two tokens, width 4)", kX, 2, 4);
    print_matrix("W_Q", kWQ, 4, 4);
    print_matrix("W_K", kWK, 4, 4);
    print_matrix("W_V", kWV, 4, 4);

    Tensor x(ctx, {kTokens, kWidth}, kX);
    Tensor wq(ctx, {kWidth, kWidth}, kWQ), wk(ctx, {kWidth, kWidth}, kWK), wv(ctx, {kWidth, kWidth}, kWV);
    Tensor q(ctx, {kTokens, kWidth}), k(ctx, {kTokens, kWidth}), v(ctx, {kTokens, kWidth});
    matmul(ctx, x, wq, q);
    matmul(ctx, x, wk, k);
    matmul(ctx, x, wv, v);
    const auto qh = q.download(), kh = k.download(), vh = v.download();
    std::printf("\nStep 1. Project: Q = X·W_Q, K = X·W_K, V = X·W_V (GPU matmul)\n");
    print_matrix("Q", qh, 2, 4);
    print_matrix("K", kh, 2, 4);
    print_matrix("V", vh, 2, 4);

    // One head, d_k = 4, zero-padded to D = 32; the scale stays 1/sqrt(d_k) = 0.5.
    Tensor qp(ctx, {1, kTokens, kPadded}, pad(qh)), kp(ctx, {1, kTokens, kPadded}, pad(kh));
    Tensor vp(ctx, {1, kTokens, kPadded}, pad(vh));
    Tensor scores(ctx, {1, 1, kTokens, kTokens}), weights(ctx, {1, 1, kTokens, kTokens});
    Tensor context(ctx, {1, kTokens, kPadded});
    const AttentionParams params{.scale = 0.5f};
    attention_scores(ctx, qp, kp, scores, params);
    const auto s = scores.download();
    std::printf("\nStep 2. Scores = Q·Kᵀ / sqrt(d_k) (GPU qk kernel; d_k = 4 padded with zeros to D = 32)\n");
    print_matrix("scores", s, 2, 2);

    attention_softmax(ctx, scores, weights, params);
    const auto w = weights.download();
    std::printf("\nStep 3. Weights = softmax(scores) per row, max subtracted first: exp(2505.5 - 3574) is 0, not NaN\n");
    print_matrix("weights", w, 2, 2);

    attention_values(ctx, weights, vp, context);
    const auto c = unpad(context.download());
    std::printf("\nStep 4. Context = weights · V (GPU pv kernel)\n");
    print_matrix("context", c, 2, 4);

    std::vector<float> out(c.size());
    for (size_t i = 0; i < c.size(); ++i) out[i] = kX[i] + c[i];
    std::printf("\nStep 5. Residual: X + context\n");
    print_matrix("output", out, 2, 4);

    const std::vector<float> expected = {74, 54, 67, 62};
    const bool ok = s[0] == 2505.5f && s[1] == 3574.0f && w[0] == 0.0f && w[1] == 1.0f &&
                    std::equal(expected.begin(), expected.end(), out.begin());
    std::printf("\nToken 1: scores [%g, %g], weights [%g, %g], output [%g, %g, %g, %g] -- %s\n\n", double(s[0]),
                double(s[1]), double(w[0]), double(w[1]), double(out[0]), double(out[1]), double(out[2]),
                double(out[3]), ok ? "matches the notes" : "MISMATCH with the notes");
    return ok;
}

bool multi_head(Context& ctx) {
    const reference::AttentionShape s{1, 12, 12, 256, 256, 64};
    std::printf("== 2. Multi-head causal attention: H = %d, L = %d, D = %d, random inputs ==\n", s.H, s.Lq, s.D);
    const size_t n = size_t(s.H) * s.Lq * s.D;
    const auto qh = random_values(n, 1, -2, 2), kh = random_values(n, 2, -2, 2), vh = random_values(n, 3);
    Tensor q(ctx, {1, s.H, s.Lq, s.D}, qh), k(ctx, {1, s.H, s.Lk, s.D}, kh), v(ctx, {1, s.H, s.Lk, s.D}, vh);
    Tensor out(ctx, {1, s.H, s.Lq, s.D});
    ctx.set_profiling(true);
    attention(ctx, q, k, v, out, {.causal = true});
    double gpu_ms = 0;
    for (const auto& t : ctx.last_timings()) gpu_ms += t.ms;
    ctx.set_profiling(false);
    const auto t0 = std::chrono::steady_clock::now();
    const auto ref = reference::attention(s, qh, kh, vh, {.causal = true});
    const double cpu_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const ErrorStats e = compare(out.download(), ref, 1e-4, 1e-4);  // fp32 against the double reference
    std::printf("GPU %.2f ms (timestamps), CPU reference %.2f ms; max |GPU - CPU| = %.3g: %s\n\n", gpu_ms, cpu_ms,
                e.max_abs, e.bad == 0 ? "PASS" : "FAIL");
    return e.bad == 0;
}

struct DemoOptions {
    DeviceOption device;
    std::string model = "synthetic";
    int layers = 0;
};

// Part 3's model, checked before part 1 runs so that a typo fails at once.
std::string demo_spec(const DemoOptions& o) {
    if (o.model != "synthetic" && !o.model.starts_with("synthetic:")) {
        throw Error("demo --model takes synthetic[:LAYERS,HEADS,EMBD], got '" + o.model.substr(0, 60) + "'");
    }
    if (o.layers < 0) throw Error("--layers must be positive, got " + std::to_string(o.layers));
    const model::ModelInfo info = model::inspect_model(o.model);
    if (o.layers == 0) return o.model;
    return "synthetic:" + std::to_string(o.layers) + "," + std::to_string(info.n_head) + "," + std::to_string(info.hidden);
}

bool language_model(Context& ctx, const std::string& spec) {
    constexpr int kT = 32;
    model::ModelOptions on_ctx;
    on_ctx.context = &ctx;
    const std::unique_ptr<model::LanguageModel> gpu = model::open_model(spec, model::Backend::vulkan, on_ctx);
    const model::ModelInfo& c = gpu->info();
    std::printf("== 3. A whole model's forward: %s; seeded synthetic weights; %d tokens ==\n", c.summary().c_str(), kT);
    std::vector<int> tokens(kT);  // fixed ids spread over the vocabulary
    for (int t = 0; t < kT; ++t) tokens[size_t(t)] = int((uint64_t(t) * 7919 + 464) % uint64_t(c.vocab_size));

    gpu->forward(std::span<const int>(tokens).first(1));  // warm-up: creates the pipelines
    gpu->reset();
    ctx.set_profiling(true);
    const std::vector<float> logits = gpu->forward(tokens);
    const double gpu_time = gpu_ms(ctx);
    ctx.set_profiling(false);

    const std::unique_ptr<model::LanguageModel> cpu = model::open_model(spec, model::Backend::cpu);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<float> ref = cpu->forward(tokens);
    const double cpu_time = ms_since(t0);

    // fp32 accumulation on the GPU through every layer against the reference's double attention.
    constexpr double kTol = 2e-3;
    const ErrorStats e = compare(logits, ref, kTol, 0);
    std::printf("GPU %.1f ms (timestamps), CPU reference %.1f ms; logits [%d, %d]; max |GPU - CPU| = %.3g (tolerance "
                "%.0e): %s\n",
                gpu_time, cpu_time, kT, c.vocab_size, e.max_abs, kTol, e.bad == 0 ? "PASS" : "FAIL");
    return e.bad == 0;
}

}  // namespace

Runner add_demo(CLI::App& app) {
    auto* cmd = app.add_subcommand("demo", "Walk through attention on the GPU: the seed example, a multi-head check, "
                                           "then a whole model's forward checked against the CPU");
    auto o = std::make_shared<DemoOptions>();
    o->device.add_to(*cmd);
    cmd->add_option("--model", o->model, "part 3's model: synthetic[:LAYERS,HEADS,EMBD] (default GPT-2 small, "
                                         "12 layers, 12 heads, C = 768)")
        ->capture_default_str();
    cmd->add_option("--layers", o->layers, "part 3: this many layers instead (for speed)");
    return [o] {
        const std::string spec = demo_spec(*o);
        Context ctx(o->device.context_options());
        const bool a = seed_example(ctx);
        const bool b = multi_head(ctx);
        const bool c = language_model(ctx, spec);
        print_warnings(&ctx);
        return a && b && c ? kOk : kMismatch;
    };
}

}  // namespace vkattn::cli
