// vkattn attention: one attention call from .npy files or seeded random inputs, on the GPU or the CPU.
#include "attention_maps.hpp"
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <optional>

namespace vkattn::cli {
namespace {

struct Options {
    std::string q_file, k_file, v_file, out_file;
    int batch = 1, heads = 12, lq = 128, dim = 64;
    std::optional<int> kv_heads, lk;  // absent: H and Lq
    uint64_t seed = 0;
    std::string dtype = "f32";
    bool causal = false;
    std::optional<float> scale;       // absent: 1/sqrt(D)
    int window = 0;
    std::string backend = "vulkan";
    std::string impl = "fused";
    bool check = false;
    DeviceOption device;
    AttentionMapOptions maps;
    CLI::App* cmd = nullptr;
};

// Flags that cannot apply to this command line, refused before anything runs.
void check_flags(const Options& o) {
    const CLI::App& c = *o.cmd;
    const bool files = !o.q_file.empty() || !o.k_file.empty() || !o.v_file.empty();
    if (files) {
        // The files carry their shape and dtype; convert a float32 .npy with numpy's astype(np.float16) for f16.
        for (const char* random_only : {"--batch", "--heads", "--kv-heads", "--lq", "--lk", "--dim", "--seed", "--dtype"}) {
            if (given(c, random_only)) {
                throw Error(std::string(random_only) + " shapes the random inputs and cannot be used with --q/--k/--v: " +
                            "the .npy files give the shape and the dtype (float32 or float16)");
            }
        }
    }
    if (o.backend == "cpu") {
        if (o.check) {
            throw Error("--check compares the GPU with the CPU reference and cannot be used with --backend cpu, which "
                        "runs only the reference");
        }
        for (const char* gpu_only : {"--impl", "--device"}) {
            if (given(c, gpu_only)) {
                throw Error(std::string(gpu_only) + " chooses how the GPU runs and cannot be used with --backend cpu");
            }
        }
    }
}

struct Inputs {
    reference::AttentionShape shape;
    DType dtype = DType::f32;
    std::vector<float> q, k, v;
};

// [H, L, D] or [B, H, L, D] from a file, as B, heads, L, D.
std::array<int64_t, 4> shape4(const std::vector<int64_t>& s) {
    if (s.size() == 3) return {1, s[0], s[1], s[2]};
    return {s[0], s[1], s[2], s[3]};
}

AttentionInputNames file_names(const Options& o) {
    return {"Q (" + o.q_file + ")", "K (" + o.k_file + ")", "V (" + o.v_file + ")"};
}

// The shapes from the files (read whole: they exist, so they fit in memory) or the options, checked by the
// library's one validation before anything large is allocated.
Inputs load(const Options& o, std::optional<NpyArray>& q, std::optional<NpyArray>& k, std::optional<NpyArray>& v) {
    Inputs in;
    const bool any_file = !o.q_file.empty() || !o.k_file.empty() || !o.v_file.empty();
    if (any_file) {
        if (o.q_file.empty() || o.k_file.empty() || o.v_file.empty()) {
            throw Error("--q, --k and --v go together: give all three files or none (for random inputs)");
        }
        q = read_npy(o.q_file);
        k = read_npy(o.k_file);
        v = read_npy(o.v_file);
        check_attention_shapes(q->shape, k->shape, v->shape, file_names(o));
        if (q->dtype != k->dtype || q->dtype != v->dtype) {
            throw Error("Q, K and V files must share one dtype (float32 or float16)");
        }
        const auto sq = shape4(q->shape), sk = shape4(k->shape);
        in.shape = {int(sq[0]), int(sq[1]), int(sk[1]), int(sq[2]), int(sk[2]), int(sq[3])};
        in.dtype = q->dtype == NpyDtype::f16 ? DType::f16 : DType::f32;
        return in;
    }
    if (o.dtype != "f32" && o.dtype != "f16") throw Error("--dtype must be f32 or f16, got " + quoted_prefix(o.dtype));
    in.shape = {o.batch, o.heads, o.kv_heads.value_or(o.heads), o.lq, o.lk.value_or(o.lq), o.dim};
    const int64_t sq[] = {o.batch, o.heads, o.lq, o.dim};
    const int64_t sk[] = {o.batch, in.shape.Hkv, in.shape.Lk, o.dim};
    check_attention_shapes(sq, sk, sk, {"Q (--batch, --heads, --lq, --dim)", "K (--kv-heads, --lk)", "V"});
    in.dtype = o.dtype == "f16" ? DType::f16 : DType::f32;
    return in;
}

// Seeded random inputs, after the memory checks.
void fill_random(const Options& o, Inputs& in) {
    const auto& s = in.shape;
    const size_t nq = size_t(s.B) * s.H * s.Lq * s.D, nk = size_t(s.B) * s.Hkv * s.Lk * s.D;
    in.q = random_values(nq, o.seed * 3 + 1, -2, 2);
    in.k = random_values(nk, o.seed * 3 + 2, -2, 2);
    in.v = random_values(nk, o.seed * 3 + 3, -1, 1);
    if (in.dtype == DType::f16) {
        // Round through a device-independent path so the CPU reference sees exactly what the GPU stores.
        for (auto* t : {&in.q, &in.k, &in.v}) {
            for (float& x : *t) x = round_to_dtype(x, DType::f16);
        }
    }
}

// Says on stderr what a long step is doing, and when it is done; silent for short ones.
class Stage {
public:
    Stage(const std::string& what, double flops) : what_(what), loud_(flops > 2e9) {
        if (loud_) {
            std::fprintf(stderr, "attention: %s (%.3g GFLOP) ...\n", what_.c_str(), flops / 1e9);
            std::fflush(stderr);
        }
    }
    void done() {
        if (loud_) std::fprintf(stderr, "attention: %s done in %s\n", what_.c_str(), duration_str(ms_since(t0_) / 1e3).c_str());
    }

private:
    std::string what_;
    bool loud_;
    std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

int run(const Options& o) {
    check_flags(o);
    const float scale = o.scale.value_or(0.0f);  // 0: the library's 1/sqrt(D)
    check_attention_options(scale, o.window);
    std::optional<NpyArray> qf, kf, vf;
    Inputs in = load(o, qf, kf, vf);
    const auto& s = in.shape;
    check_attention_map_options(o.maps, s.H);
    if (!o.out_file.empty()) check_writable_folder(o.out_file, "--out");

    // Memory, from the shapes, before anything large is allocated: the host holds Q, K, V and the output (twice
    // more for --check: the reference's result), the device its four tensors (and the naive path's scores).
    const uint64_t nq = uint64_t(s.B) * s.H * s.Lq * s.D, nk = uint64_t(s.B) * s.Hkv * s.Lk * s.D;
    const bool run_reference = o.backend == "cpu" || o.check;
    const uint64_t host_bytes = 4 * (2 * nq + 2 * nk + (run_reference ? nq : 0));
    std::optional<Context> device_ctx;
    const AttentionImpl impl = o.impl == "naive" ? AttentionImpl::naive : AttentionImpl::fused;
    if (o.backend == "vulkan") {
        device_ctx.emplace(o.device.context_options(true));
        const int64_t q_shape[] = {s.B, s.H, s.Lq, s.D}, k_shape[] = {s.B, s.Hkv, s.Lk, s.D};
        check_attention_fits(*device_ctx, q_shape, k_shape, in.dtype, impl);
    }
    if (!qf) check_host_memory(host_bytes, "attention with these shapes");
    if (qf) {
        in.q = std::move(qf->data);
        in.k = std::move(kf->data);
        in.v = std::move(vf->data);
    } else {
        fill_random(o, in);
    }

    // With --json, stdout holds only the JSON object; the report goes to stderr.
    FILE* report = o.maps.json ? stderr : stdout;
    nlohmann::ordered_json j = provenance(device_ctx ? &*device_ctx : nullptr);
    j["shape"] = {{"B", s.B}, {"H", s.H}, {"Hkv", s.Hkv}, {"Lq", s.Lq}, {"Lk", s.Lk}, {"D", s.D}};
    j["dtype"] = dtype_name(in.dtype);
    j["causal"] = o.causal;
    j["window"] = o.window;
    j["backend"] = o.backend;
    if (o.backend == "vulkan") j["impl"] = o.impl;
    std::fprintf(report, "attention B=%d H=%d Hkv=%d Lq=%d Lk=%d D=%d %s%s%s, backend %s\n", s.B, s.H, s.Hkv, s.Lq,
                 s.Lk, s.D, std::string(dtype_name(in.dtype)).c_str(), o.causal ? " causal" : "",
                 o.window ? (" window " + std::to_string(o.window)).c_str() : "", o.backend.c_str());
    const double flops = 4.0 * double(s.B) * s.H * double(s.Lq) * double(s.Lk) * s.D;

    reference::AttentionOptions ref_opts{scale, o.causal, o.window, {}, {}};
    std::vector<float> out;
    std::optional<std::vector<float>> ref;
    if (run_reference) {
        const auto t0 = std::chrono::steady_clock::now();
        Stage stage("the CPU reference", flops);
        ref = reference::attention(s, in.q, in.k, in.v, ref_opts);
        stage.done();
        std::fprintf(report, "CPU reference: %.2f ms\n", ms_since(t0));
        j["cpu_ms"] = ms_since(t0);
    }
    if (o.backend == "cpu") {
        out = *ref;
    } else {
        Context& ctx = *device_ctx;
        std::fprintf(report, "device: %s (%s)\n", ctx.device().name.c_str(), ctx.device().driver.c_str());
        Tensor q(ctx, {s.B, s.H, s.Lq, s.D}, in.q, in.dtype);
        Tensor k(ctx, {s.B, s.Hkv, s.Lk, s.D}, in.k, in.dtype);
        Tensor v(ctx, {s.B, s.Hkv, s.Lk, s.D}, in.v, in.dtype);
        Tensor result(ctx, {s.B, s.H, s.Lq, s.D}, in.dtype);
        AttentionParams params;
        params.scale = scale;
        params.causal = o.causal;
        params.window = o.window;
        params.impl = impl;
        Stage stage("the " + o.impl + " attention on the GPU", flops);
        attention(ctx, q, k, v, result, params);
        stage.done();
        double total = 0;
        std::string parts;
        for (const auto& t : ctx.last_timings()) {
            total += t.ms;
            parts += (parts.empty() ? "" : ", ") + t.name + " " + std::to_string(t.ms).substr(0, 6);
        }
        std::fprintf(report, "GPU time (timestamps): %.2f ms [%s]\n", total, parts.c_str());
        j["gpu_ms"] = total;
        out = result.download();
        print_warnings(&ctx);
    }
    if (!o.out_file.empty()) {
        const std::vector<int64_t> shape = {s.B, s.H, s.Lq, s.D};
        write_npy(o.out_file, shape, out, in.dtype == DType::f16 ? NpyDtype::f16 : NpyDtype::f32);
        std::fprintf(report, "wrote %s: the output [B, H, Lq, D] = [%d, %d, %d, %d] %s\n", o.out_file.c_str(), s.B, s.H,
                     s.Lq, s.D, in.dtype == DType::f16 ? "float16" : "float32");
        j["out"] = o.out_file;
    }
    int rc = kOk;
    if (o.check) {
        // f32: fp32 sums against a double reference. f16: the output itself is rounded to fp16 (2^-11 relative).
        const double atol = in.dtype == DType::f16 ? 2e-3 : 1e-4;
        const double rtol = in.dtype == DType::f16 ? 2e-3 : 1e-4;
        const ErrorStats e = compare(out, *ref, atol, rtol);
        std::fprintf(report, "check: max |GPU - CPU| = %.3g, max relative = %.3g (tolerance %.0e + %.0e·|CPU|): %s\n",
                     e.max_abs, e.max_rel, atol, rtol, e.bad == 0 ? "PASS" : "FAIL");
        if (e.bad == 0 && e.max_rel > rtol) {
            // The usual surprise: a "large" relative error that is only a tiny absolute one next to a near-zero value.
            std::fprintf(report,
                         "  the max relative error is at an element where |CPU| = %.3g and |GPU - CPU| = %.3g: near "
                         "zero a tiny absolute error is a large relative one, and the test, |GPU - CPU| <= %.0e + "
                         "%.0e·|CPU| for every element, passes it\n",
                         std::abs(double((*ref)[e.worst_rel])), std::abs(double(out[e.worst_rel]) - (*ref)[e.worst_rel]),
                         atol, rtol);
        }
        j["check"] = {{"max_abs", e.max_abs}, {"max_rel", e.max_rel}, {"atol", atol}, {"rtol", rtol},
                      {"bad", e.bad},         {"pass", e.bad == 0}};
        if (e.bad != 0) {
            std::fprintf(report, "  %zu elements out of tolerance; worst at %zu: GPU %g, CPU %g\n", e.bad, e.worst,
                         double(out[e.worst]), double((*ref)[e.worst]));
            rc = kMismatch;
        }
    }
    if (rc == kOk) {
        const AttentionMapInputs maps{s,          in.dtype, in.q,    in.k,     o.scale.value_or(0.0f),
                                      o.causal,   o.window, o.backend, o.check, o.device};
        rc = write_attention_maps(o.maps, maps, o.maps.json ? &j : nullptr);
    }
    if (o.maps.json) std::printf("%s\n", json_line(j).c_str());
    return rc;
}

}  // namespace

Runner add_attention(CLI::App& app) {
    auto* cmd = app.add_subcommand("attention",
                                   "Run one attention (GPU or CPU reference), check it, draw its attention maps (--png)");
    auto o = std::make_shared<Options>();
    o->cmd = cmd;
    cmd->add_option("--q", o->q_file, "Q as .npy, [H, Lq, D] or [B, H, Lq, D], float32 or float16");
    cmd->add_option("--k", o->k_file, "K as .npy, [Hkv, Lk, D] or [B, Hkv, Lk, D]");
    cmd->add_option("--v", o->v_file, "V as .npy, the shape of K");
    constexpr int kMax = std::numeric_limits<int>::max();
    add_int(*cmd, "--batch", o->batch, 1, kMax, "random inputs: batch");
    add_int(*cmd, "--heads", o->heads, 1, kMax, "random inputs: query heads H");
    add_int(*cmd, "--kv-heads", o->kv_heads, 1, kMax, "random inputs: key/value heads (default: H)");
    add_int(*cmd, "--lq", o->lq, 1, kMax, "random inputs: query length");
    add_int(*cmd, "--lk", o->lk, 1, kMax, "random inputs: key length (default: Lq)");
    add_int(*cmd, "--dim", o->dim, 1, kMax, "random inputs: head dim D (1 to 256)");
    add_uint64(*cmd, "--seed", o->seed, "random inputs: seed");
    add_choice(*cmd, "--dtype", o->dtype, {"f32", "f16"}, "random inputs: storage of Q, K, V and the output");
    cmd->add_flag("--causal", o->causal, "causal mask, aligned bottom-right: query i sees key j iff j <= i + Lk - Lq");
    add_positive_float(*cmd, "--scale", o->scale, "score scale, positive (default 1/sqrt(D))");
    add_int(*cmd, "--window", o->window, 0, kMax,
            "sliding window: each query sees at most this many most recent keys (0: none)");
    add_choice(*cmd, "--backend", o->backend, {"vulkan", "cpu"}, "the GPU, or the CPU reference (double precision)");
    add_choice(*cmd, "--impl", o->impl, {"fused", "naive"},
               "GPU kernels: fused (flash, one kernel, no Lq×Lk buffer) or naive (three kernels: scores, softmax, values)");
    cmd->add_option("--out", o->out_file, "write the output [B, H, Lq, D] as .npy (the inputs' dtype)");
    cmd->add_flag("--check", o->check,
                  "also run the CPU reference; exit 1 unless every |GPU - CPU| <= atol + rtol·|CPU| (f32: 1e-4 + "
                  "1e-4·|CPU|; f16: 2e-3 + 2e-3·|CPU|), so a large relative error next to a tiny absolute one, near "
                  "zero, passes");
    o->maps.add_to(*cmd);
    o->device.add_to(*cmd);
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
