// vkattn bench: timings of attention, matmul and the GPT-2 model. Attention and matmul here; gpt in
// cmd_bench_gpt.cpp. GPU times come from timestamps (the sum of one call's dispatches), CPU times from the clock.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/matmul.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>
#include <vkattn/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <new>
#include <optional>

namespace vkattn::cli {
namespace {

struct Repeat {
    int warmup = 2;
    int reps = 10;
    bool json = false;
    void add_to(CLI::App& cmd) {
        add_int(cmd, "--warmup", warmup, 0, 1000000, "untimed runs first");
        add_int(cmd, "--reps", reps, 1, 1000000, "timed runs; median and min are reported");
        cmd.add_flag("--json", json, "one JSON object per measured case on stdout instead of a table");
    }
    void validate() const {
        if (warmup < 0 || reps < 1) throw Error("--warmup must be >= 0 and --reps >= 1");
    }
};

struct Timing {
    double median_ms = 0, min_ms = 0;
    uint64_t peak_bytes = 0;
    std::string clock;  // "gpu timestamps" or "wall clock"
};

// Runs fn warm-up + reps times; each timed run is the sum of its dispatches' timestamps when the context
// profiles (else the wall clock around it).
// Long runs (past 2 s) show their progress on stderr.
template <class Fn>
Timing time_runs(Context* ctx, const Repeat& r, const std::string& what, Fn&& fn) {
    Progress progress("bench " + what + ": runs (warm-up included)", r.warmup + r.reps, 2.0);
    for (int i = 0; i < r.warmup; ++i) {
        fn();
        progress.update(i + 1);
    }
    const bool stamps = ctx != nullptr && ctx->profiling() && ctx->device().timestamps;
    std::vector<double> ms;
    for (int i = 0; i < r.reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        ms.push_back(stamps ? gpu_ms(*ctx) : ms_since(t0));
        progress.update(r.warmup + i + 1);
    }
    Timing t;
    t.median_ms = median(ms);
    t.min_ms = *std::min_element(ms.begin(), ms.end());
    t.clock = stamps ? "gpu timestamps" : "wall clock";
    if (ctx) t.peak_bytes = ctx->peak_device_memory_bytes();
    print_warnings(ctx);  // a kernel that failed its self-check, so that another ran in its place
    return t;
}

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

// ---- attention ----

struct AttentionOptions {
    int heads = 12, lq = 1024, dim = 64;
    std::optional<int> kv_heads, lk;  // absent: H and Lq
    bool causal = false, sweep = false;
    std::string dtype = "f32", impl = "fused", backend = "vulkan";
    Repeat repeat;
    DeviceOption device;
    CLI::App* cmd = nullptr;
    bool cpu_impl = false;  // the deprecated --impl cpu, now --backend cpu
    // What the table and JSON call the path: naive, fused, or cpu (the reference).
    std::string path() const { return backend == "cpu" ? "cpu" : impl; }
};

void print_attention(const AttentionOptions& o, const Context* ctx, int lq, int lk, const Timing& t) {
    const int hkv = o.kv_heads.value_or(o.heads);
    const double es = o.dtype == "f16" ? 2 : 4;
    double flops = 4.0 * o.heads * double(lq) * lk * o.dim;
    if (o.causal && lq == lk) flops /= 2;
    const double bytes = es * o.dim * (2.0 * o.heads * lq + 2.0 * hkv * lk);  // Q and O, K and V, once each
    const double gflops = flops / (t.median_ms * 1e6), gbps = bytes / (t.median_ms * 1e6);
    if (o.repeat.json) {
        using json = nlohmann::ordered_json;
        json j = {{"bench", "attention"},
                            {"device", ctx ? ctx->device().name : "cpu reference"},
                            {"impl", o.path()},
                            {"dtype", o.dtype},
                            {"heads", o.heads},
                            {"kv_heads", hkv},
                            {"lq", lq},
                            {"lk", lk},
                            {"dim", o.dim},
                            {"causal", o.causal},
                            {"reps", o.repeat.reps},
                            {"clock", t.clock},
                            {"median_ms", t.median_ms},
                            {"min_ms", t.min_ms},
                            {"flops", flops},
                            {"gflops", gflops},
                            {"gbps", gbps},
                            {"peak_device_bytes", ctx ? json(t.peak_bytes) : json(nullptr)}};
        const json p = provenance(ctx);
        j["version"] = p["version"];
        j["commit"] = p["commit"];
        j["driver"] = p["driver"];
        std::printf("%s\n", json_line(j).c_str());
    } else {
        std::printf("%7d %7d %11.3f %10.3f %10.2f %9.2f %11.1f\n", lq, lk, t.median_ms, t.min_ms, gflops, gbps,
                    mib(t.peak_bytes));
    }
    std::fflush(stdout);
}

Timing measure_attention(const AttentionOptions& o, Context* ctx, int lq, int lk) {
    const int hkv = o.kv_heads.value_or(o.heads);
    // The one validation every backend runs, then memory from the shapes, before the inputs exist.
    const int64_t q_shape[] = {1, o.heads, lq, o.dim}, k_shape[] = {1, hkv, lk, o.dim};
    check_attention_shapes(q_shape, k_shape, k_shape, {"Q (--heads, --lq, --dim)", "K (--kv-heads, --lk)", "V"});
    const DType dt = o.dtype == "f16" ? DType::f16 : DType::f32;
    const AttentionImpl impl = o.impl == "naive" ? AttentionImpl::naive : AttentionImpl::fused;
    const std::string what = "attention Lq " + std::to_string(lq) + " Lk " + std::to_string(lk);
    if (ctx != nullptr) check_attention_fits(*ctx, q_shape, k_shape, dt, impl);
    const uint64_t nq64 = uint64_t(o.heads) * lq * o.dim, nk64 = uint64_t(hkv) * lk * o.dim;
    check_host_memory(4 * (2 * nq64 + 2 * nk64), "attention with Lq " + std::to_string(lq) + ", Lk " + std::to_string(lk));
    const size_t nq = size_t(nq64), nk = size_t(nk64);
    const auto qh = random_values(nq, 1, -2, 2), kh = random_values(nk, 2, -2, 2), vh = random_values(nk, 3);
    if (ctx == nullptr) {
        const reference::AttentionShape s{1, o.heads, hkv, lq, lk, o.dim};
        return time_runs(nullptr, o.repeat, what, [&] { reference::attention(s, qh, kh, vh, {.causal = o.causal}); });
    }
    ctx->reset_peak_memory();
    Tensor q(*ctx, {1, o.heads, lq, o.dim}, qh, dt), k(*ctx, {1, hkv, lk, o.dim}, kh, dt);
    Tensor v(*ctx, {1, hkv, lk, o.dim}, vh, dt), out(*ctx, {1, o.heads, lq, o.dim}, dt);
    AttentionParams params;
    params.causal = o.causal;
    params.impl = impl;
    return time_runs(ctx, o.repeat, what, [&] { attention(*ctx, q, k, v, out, params); });
}

// Flags that cannot apply to this command line, refused before anything runs.
void check_attention_flags(const AttentionOptions& o) {
    const CLI::App& c = *o.cmd;
    if (o.cpu_impl) {
        refuse_together(c, "--impl", "--backend", "--impl cpu is the old spelling of --backend cpu; give --backend only");
        note_deprecated("--impl cpu is deprecated and will be removed; use --backend cpu");
    }
    if (o.backend == "cpu") {
        // The reference computes in double from f32 inputs, on the host.
        for (const char* gpu_only : {"--dtype", "--device"}) {
            if (given(c, gpu_only)) {
                throw Error(std::string(gpu_only) + " sets up the GPU and cannot be used with --backend cpu (the "
                            "double-precision reference on the host)");
            }
        }
        if (given(c, "--impl") && !o.cpu_impl) {
            throw Error("--impl chooses the GPU kernels and cannot be used with --backend cpu");
        }
    }
    if (o.sweep) {
        for (const char* length : {"--lq", "--lk"}) {
            if (given(c, length)) {
                throw Error(std::string(length) + " cannot be used with --sweep, which sets L = Lq = Lk from 128 to 16384");
            }
        }
    }
}

int run_attention(const AttentionOptions& o) {
    o.repeat.validate();
    check_attention_flags(o);
    std::optional<Context> ctx;
    if (o.backend != "cpu") ctx.emplace(o.device.context_options(true));
    const std::string device = ctx ? ctx->device().name + " (" + ctx->device().driver + ")" : "cpu reference";
    if (!o.repeat.json) {
        std::printf("attention on %s: impl %s, %s, H=%d Hkv=%d D=%d%s; %d warm-up, %d timed runs\n", device.c_str(),
                    o.path().c_str(), o.backend == "cpu" ? "f32 inputs" : o.dtype.c_str(), o.heads, o.kv_heads.value_or(o.heads), o.dim,
                    o.causal ? " causal" : "", o.repeat.warmup, o.repeat.reps);
        std::printf("FLOPs counted as 4·H·Lq·Lk·D%s; GB/s counts Q, K, V and O moved once.\n",
                    o.causal ? ", halved for causal when Lq = Lk" : "");
        std::printf("%7s %7s %11s %10s %10s %9s %11s\n", "Lq", "Lk", "median ms", "min ms", "GFLOP/s", "GB/s",
                    "peak MiB");
    }
    Context* c = ctx ? &*ctx : nullptr;
    if (!o.sweep) {
        const int lk = o.lk.value_or(o.lq);
        const Timing t = measure_attention(o, c, o.lq, lk);
        print_attention(o, c, o.lq, lk, t);
        if (!o.repeat.json) std::printf("times from %s\n", t.clock.c_str());
        return kOk;
    }
    std::string clock;
    for (int L = 128; L <= 16384; L *= 2) {
        std::fprintf(stderr, "bench attention: L = %d ...\n", L);
        std::fflush(stderr);
        try {
            const Timing t = measure_attention(o, c, L, L);
            print_attention(o, c, L, L, t);
            clock = t.clock;
        } catch (const Error& e) {
            // In JSON mode stdout holds only measured cases; the refusal goes to stderr.
            std::fprintf(o.repeat.json ? stderr : stdout, "%7d %7d refused: %s\n", L, L, e.what());
        } catch (const std::bad_alloc&) {
            std::fprintf(o.repeat.json ? stderr : stdout, "%7d %7d refused: out of host memory (%s available)\n", L,
                         L, bytes_str(host_memory_available()).c_str());
        }
    }
    if (!o.repeat.json && !clock.empty()) std::printf("times from %s\n", clock.c_str());
    return kOk;
}

// ---- matmul ----

struct MatmulOptions {
    int m = 1024, n = 768, k = 768;
    std::string dtype = "f32";
    std::string layout = "kn";
    Repeat repeat;
    DeviceOption device;
};

int run_matmul(const MatmulOptions& o) {
    o.repeat.validate();
    check_host_memory(4 * (uint64_t(o.m) * o.k + uint64_t(o.k) * o.n), "matmul with these shapes");
    Context ctx(o.device.context_options(true));
    const DType wt = o.dtype == "f16" ? DType::f16 : o.dtype == "bf16" ? DType::bf16 : DType::f32;
    ctx.reset_peak_memory();
    Tensor x(ctx, {o.m, o.k}, random_values(size_t(o.m) * o.k, 1));
    const bool nk = o.layout == "nk";
    Tensor w(ctx, nk ? std::vector<int64_t>{o.n, o.k} : std::vector<int64_t>{o.k, o.n},
             random_values(size_t(o.k) * o.n, 2), wt);
    Tensor y(ctx, {o.m, o.n});
    const Timing t = time_runs(&ctx, o.repeat, "matmul", [&] { nk ? matmul_nt(ctx, x, w, y) : matmul(ctx, x, w, y); });
    const double flops = 2.0 * o.m * o.n * o.k;
    const double bytes = 4.0 * o.m * o.k + double(dtype_size(wt)) * o.k * o.n + 4.0 * o.m * o.n;
    const double gflops = flops / (t.median_ms * 1e6), gbps = bytes / (t.median_ms * 1e6);
    if (o.repeat.json) {
        nlohmann::ordered_json j = {{"bench", "matmul"},      {"device", ctx.device().name},
                                  {"m", o.m},               {"n", o.n},
                                  {"k", o.k},               {"dtype", o.dtype},
                                  {"layout", o.layout},
                                  {"reps", o.repeat.reps},  {"clock", t.clock},
                                  {"median_ms", t.median_ms}, {"min_ms", t.min_ms},
                                  {"flops", flops},         {"gflops", gflops},
                                  {"gbps", gbps},           {"peak_device_bytes", t.peak_bytes}};
        j["version"] = version();
        j["commit"] = git_commit();
        j["driver"] = ctx.device().driver;
        std::printf("%s\n", json_line(j).c_str());
        return kOk;
    }
    std::printf("matmul on %s (%s): y [%d, %d] = x [%d, %d] f32 · w%s [%d, %d] %s; %d warm-up, %d timed runs\n",
                ctx.device().name.c_str(), ctx.device().driver.c_str(), o.m, o.n, o.m, o.k, nk ? "ᵀ" : "",
                nk ? o.n : o.k, nk ? o.k : o.n, o.dtype.c_str(), o.repeat.warmup, o.repeat.reps);
    std::printf("median %.3f ms, min %.3f ms (%s); %.2f GFLOP/s (2·M·N·K), %.2f GB/s (x, w, y once), "
                "peak %.1f MiB\n",
                t.median_ms, t.min_ms, t.clock.c_str(), gflops, gbps, mib(t.peak_bytes));
    return kOk;
}

}  // namespace

Runner add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "Benchmarks: attention, matmul, gpt (median and min of timed runs)");
    bench->require_subcommand(1);

    auto* att = bench->add_subcommand("attention", "Time one attention shape, or sweep L = Lq = Lk over 128 .. 16384");
    auto a = std::make_shared<AttentionOptions>();
    constexpr int kMax = std::numeric_limits<int>::max();
    add_int(*att, "--heads", a->heads, 1, kMax, "query heads H");
    add_int(*att, "--kv-heads", a->kv_heads, 1, kMax, "key/value heads Hkv (default: H)");
    add_int(*att, "--lq", a->lq, 1, kMax, "query length");
    add_int(*att, "--lk", a->lk, 1, kMax, "key length (default: Lq)");
    add_int(*att, "--dim", a->dim, 1, kMax, "head dim D");
    att->add_flag("--causal", a->causal, "causal mask (FLOPs halved when Lq = Lk)");
    a->cmd = att;
    add_choice(*att, "--dtype", a->dtype, {"f32", "f16"}, "storage of Q, K, V, O on the GPU");
    add_choice(*att, "--backend", a->backend, {"vulkan", "cpu"},
               "the GPU, or the CPU reference (double precision, timed by the wall clock)");
    // --impl also takes the old "cpu" (a backend, not a kernel), hidden from the choices --help shows.
    att->add_option_function<std::string>(
           "--impl",
           [a](const std::string& value) {
               if (value == "cpu") {
                   a->backend = "cpu";
                   a->cpu_impl = true;
               } else if (value == "naive" || value == "fused") {
                   a->impl = value;
               } else {
                   throw CLI::ValidationError("--impl: " + quoted_prefix(value) + " is not in {naive,fused}");
               }
           },
           "GPU kernels: naive (three kernels) or fused (flash)")
        ->type_name("TEXT:{naive,fused}")
        ->default_str("fused");
    att->add_flag("--sweep", a->sweep, "L = Lq = Lk over 128, 256, .. 16384; shapes the path refuses are listed "
                                       "with the reason");
    a->repeat.add_to(*att);
    a->device.add_to(*att);

    auto* mm = bench->add_subcommand("matmul", "Time y [M, N] = x [M, K] · w [K, N], or · wᵀ with w [N, K]");
    auto m = std::make_shared<MatmulOptions>();
    add_int(*mm, "--m", m->m, 1, kMax, "rows of x and y");
    add_int(*mm, "--n", m->n, 1, kMax, "columns of w and y");
    add_int(*mm, "--k", m->k, 1, kMax, "columns of x, rows of w");
    add_choice(*mm, "--dtype", m->dtype, {"f32", "f16", "bf16"}, "storage of w (x and y are f32)");
    add_choice(*mm, "--layout", m->layout, {"kn", "nk"},
               "w's layout: kn is [K, N] (y = x · w), nk is [N, K] (y = x · wᵀ, nn.Linear's and Llama's)");
    m->repeat.add_to(*mm);
    m->device.add_to(*mm);

    Runner gpt = add_bench_gpt(*bench);
    return [att, a, mm, m, gpt] {
        if (att->parsed()) return run_attention(*a);
        if (mm->parsed()) return run_matmul(*m);
        return gpt();
    };
}

}  // namespace vkattn::cli
