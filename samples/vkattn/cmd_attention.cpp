// vkattn attention: one attention call from .npy files or seeded random inputs, on the GPU or the CPU.
#include "cli.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

namespace vkattn::cli {
namespace {

struct Options {
    std::string q_file, k_file, v_file, out_file;
    int batch = 1, heads = 12, kv_heads = 0, lq = 128, lk = 0, dim = 64;
    uint64_t seed = 0;
    std::string dtype = "f32";
    bool causal = false;
    float scale = 0;
    int window = 0;
    std::string backend = "vulkan";
    std::string impl = "fused";
    bool check = false;
    DeviceOption device;
};

struct Inputs {
    reference::AttentionShape shape;
    DType dtype = DType::f32;
    std::vector<float> q, k, v;
};

// [H, L, D] or [B, H, L, D] from a file, as B, heads, L, D.
std::array<int64_t, 4> shape4(const NpyArray& a, const std::string& file) {
    if (a.shape.size() == 3) return {1, a.shape[0], a.shape[1], a.shape[2]};
    if (a.shape.size() == 4) return {a.shape[0], a.shape[1], a.shape[2], a.shape[3]};
    std::string dims;
    for (auto d : a.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    throw Error(file + " has shape [" + dims + "]; attention inputs are [H, L, D] or [B, H, L, D]");
}

Inputs load(const Options& o) {
    Inputs in;
    const bool any_file = !o.q_file.empty() || !o.k_file.empty() || !o.v_file.empty();
    if (any_file) {
        if (o.q_file.empty() || o.k_file.empty() || o.v_file.empty()) {
            throw Error("--q, --k and --v go together: give all three files or none (for random inputs)");
        }
        NpyArray q = read_npy(o.q_file), k = read_npy(o.k_file), v = read_npy(o.v_file);
        const auto sq = shape4(q, o.q_file), sk = shape4(k, o.k_file), sv = shape4(v, o.v_file);
        if (q.dtype != k.dtype || q.dtype != v.dtype) {
            throw Error("Q, K and V files must share one dtype (float32 or float16)");
        }
        if (sk != sv) throw Error(o.k_file + " and " + o.v_file + " must have the same shape");
        in.shape = {int(sq[0]), int(sq[1]), int(sk[1]), int(sq[2]), int(sk[2]), int(sq[3])};
        in.dtype = q.dtype == NpyDtype::f16 ? DType::f16 : DType::f32;
        in.q = std::move(q.data);
        in.k = std::move(k.data);
        in.v = std::move(v.data);
        return in;
    }
    if (o.dtype != "f32" && o.dtype != "f16") throw Error("--dtype must be f32 or f16, got '" + o.dtype + "'");
    const int hkv = o.kv_heads > 0 ? o.kv_heads : o.heads;
    const int lk = o.lk > 0 ? o.lk : o.lq;
    if (o.batch < 1 || o.heads < 1 || o.lq < 1 || lk < 1 || o.dim < 1) {
        throw Error("--batch, --heads, --lq, --lk and --dim must be positive");
    }
    in.shape = {o.batch, o.heads, hkv, o.lq, lk, o.dim};
    in.dtype = o.dtype == "f16" ? DType::f16 : DType::f32;
    const size_t nq = size_t(o.batch) * o.heads * o.lq * o.dim, nk = size_t(o.batch) * hkv * lk * o.dim;
    in.q = random_values(nq, o.seed * 3 + 1, -2, 2);
    in.k = random_values(nk, o.seed * 3 + 2, -2, 2);
    in.v = random_values(nk, o.seed * 3 + 3, -1, 1);
    if (in.dtype == DType::f16) {
        // Round through a device-independent path so the CPU reference sees exactly what the GPU stores.
        for (auto* t : {&in.q, &in.k, &in.v}) {
            for (float& x : *t) x = round_to_dtype(x, DType::f16);
        }
    }
    return in;
}

int run(const Options& o) {
    const Inputs in = load(o);
    const auto& s = in.shape;
    if (o.backend != "vulkan" && o.backend != "cpu") throw Error("--backend must be vulkan or cpu, got '" + o.backend + "'");
    if (o.impl != "fused" && o.impl != "naive") throw Error("--impl must be fused or naive, got '" + o.impl + "'");
    std::printf("attention B=%d H=%d Hkv=%d Lq=%d Lk=%d D=%d %s%s%s, backend %s\n", s.B, s.H, s.Hkv, s.Lq, s.Lk, s.D,
                std::string(dtype_name(in.dtype)).c_str(), o.causal ? " causal" : "",
                o.window ? (" window " + std::to_string(o.window)).c_str() : "", o.backend.c_str());

    reference::AttentionOptions ref_opts{o.scale, o.causal, o.window, {}, {}};
    std::vector<float> out;
    std::optional<std::vector<float>> ref;
    if (o.backend == "cpu" || o.check) {
        if (s.H % s.Hkv != 0) {
            throw Error("K has " + std::to_string(s.Hkv) + " heads, which does not divide the " + std::to_string(s.H) +
                        " query heads");
        }
        const auto t0 = std::chrono::steady_clock::now();
        ref = reference::attention(s, in.q, in.k, in.v, ref_opts);
        std::printf("CPU reference: %.2f ms\n", ms_since(t0));
    }
    if (o.backend == "cpu") {
        out = *ref;
    } else {
        Context ctx(o.device.context_options(true));
        std::printf("device: %s (%s)\n", ctx.device().name.c_str(), ctx.device().driver.c_str());
        Tensor q(ctx, {s.B, s.H, s.Lq, s.D}, in.q, in.dtype);
        Tensor k(ctx, {s.B, s.Hkv, s.Lk, s.D}, in.k, in.dtype);
        Tensor v(ctx, {s.B, s.Hkv, s.Lk, s.D}, in.v, in.dtype);
        Tensor result(ctx, {s.B, s.H, s.Lq, s.D}, in.dtype);
        AttentionParams params;
        params.scale = o.scale;
        params.causal = o.causal;
        params.window = o.window;
        params.impl = o.impl == "naive" ? AttentionImpl::naive : AttentionImpl::fused;
        attention(ctx, q, k, v, result, params);
        double total = 0;
        std::string parts;
        for (const auto& t : ctx.last_timings()) {
            total += t.ms;
            parts += (parts.empty() ? "" : ", ") + t.name + " " + std::to_string(t.ms).substr(0, 6);
        }
        std::printf("GPU time (timestamps): %.2f ms [%s]\n", total, parts.c_str());
        out = result.download();
    }
    if (!o.out_file.empty()) {
        const std::vector<int64_t> shape = {s.B, s.H, s.Lq, s.D};
        write_npy(o.out_file, shape, out, in.dtype == DType::f16 ? NpyDtype::f16 : NpyDtype::f32);
        std::printf("wrote %s\n", o.out_file.c_str());
    }
    if (o.check && o.backend == "vulkan") {
        // f32: fp32 sums against a double reference. f16: the output itself is rounded to fp16 (2^-11 relative).
        const double atol = in.dtype == DType::f16 ? 2e-3 : 1e-4;
        const double rtol = in.dtype == DType::f16 ? 2e-3 : 1e-4;
        const ErrorStats e = compare(out, *ref, atol, rtol);
        std::printf("check: max |GPU - CPU| = %.3g, max relative = %.3g (tolerance %.0e + %.0e·|ref|): %s\n", e.max_abs,
                    e.max_rel, atol, rtol, e.bad == 0 ? "PASS" : "FAIL");
        if (e.bad != 0) {
            std::printf("  %zu elements out of tolerance; worst at %zu: GPU %g, CPU %g\n", e.bad, e.worst,
                        double(out[e.worst]), double((*ref)[e.worst]));
            return kMismatch;
        }
    }
    return kOk;
}

}  // namespace

Runner add_attention(CLI::App& app) {
    auto* cmd = app.add_subcommand("attention", "Run one attention (GPU or CPU reference) and optionally check it");
    auto o = std::make_shared<Options>();
    cmd->add_option("--q", o->q_file, "Q as .npy, [H, Lq, D] or [B, H, Lq, D], float32 or float16");
    cmd->add_option("--k", o->k_file, "K as .npy, [Hkv, Lk, D] or [B, Hkv, Lk, D]");
    cmd->add_option("--v", o->v_file, "V as .npy, the shape of K");
    cmd->add_option("--batch", o->batch, "random inputs: batch")->capture_default_str();
    cmd->add_option("--heads", o->heads, "random inputs: query heads H")->capture_default_str();
    cmd->add_option("--kv-heads", o->kv_heads, "random inputs: key/value heads (default: H)");
    cmd->add_option("--lq", o->lq, "random inputs: query length")->capture_default_str();
    cmd->add_option("--lk", o->lk, "random inputs: key length (default: Lq)");
    cmd->add_option("--dim", o->dim, "random inputs: head dim D (1 to 256)")->capture_default_str();
    cmd->add_option("--seed", o->seed, "random inputs: seed")->capture_default_str();
    cmd->add_option("--dtype", o->dtype, "random inputs: storage f32 or f16")->capture_default_str();
    cmd->add_flag("--causal", o->causal, "causal mask, aligned bottom-right: query i sees key j iff j <= i + Lk - Lq");
    cmd->add_option("--scale", o->scale, "score scale (default 1/sqrt(D))");
    cmd->add_option("--window", o->window, "sliding window: each query sees at most this many most recent keys");
    cmd->add_option("--backend", o->backend, "vulkan or cpu")->capture_default_str();
    cmd->add_option("--impl", o->impl, "fused (no L×L buffer) or naive (three kernels)")->capture_default_str();
    cmd->add_option("--out", o->out_file, "write the output [B, H, Lq, D] as .npy");
    cmd->add_flag("--check", o->check, "also run the CPU reference; exit 1 past the tolerance");
    o->device.add_to(*cmd);
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
