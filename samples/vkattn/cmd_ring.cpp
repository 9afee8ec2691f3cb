// vkattn ring-attention (also `vkattn attention --ring`): attention over a sequence sharded across MPI ranks,
// one Vulkan device per rank, K/V rotating around the ring. Run under mpirun; one rank is a plain run.
// Built only with VKATTN_WITH_MPI.
#ifdef VKATTN_HAS_MPI
#include "cli.hpp"
#include "mpi_cli.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/ring.hpp>
#include <vkattn/tensor.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

namespace vkattn::cli {
namespace {

struct Options {
    std::string q_file, k_file, v_file, out_file;
    int batch = 1, heads = 12, kv_heads = 0, lq = 1024, lk = 0, dim = 64;
    uint64_t seed = 0;
    std::string dtype = "f32";
    bool causal = false;
    float scale = 0;
    int window = 0;
    bool check = false;
    int repeat = 1;
    DeviceOption device;
    std::string random_flag;  // the first random-input flag given, refused with --q/--k/--v
};

struct Global {
    reference::AttentionShape s;
    DType dtype = DType::f32;
    std::vector<float> q, k, v;  // whole tensors (rank 0 for files; every rank for random inputs)
};

std::array<int64_t, 4> shape4(const NpyArray& a, const std::string& file) {
    if (a.shape.size() == 3) return {1, a.shape[0], a.shape[1], a.shape[2]};
    if (a.shape.size() == 4) return {a.shape[0], a.shape[1], a.shape[2], a.shape[3]};
    throw Error(file + " must be [H, L, D] or [B, H, L, D]");
}

// The rows `ranges` of [B, heads, L, D], concatenated as [B, heads, l, D].
std::vector<float> take_rows(const std::vector<float>& x, int64_t BH, int64_t L, int64_t D,
                             const std::array<std::pair<int64_t, int64_t>, 2>& ranges) {
    std::vector<float> out;
    for (int64_t z = 0; z < BH; ++z) {
        for (const auto& [a, b] : ranges) out.insert(out.end(), x.begin() + (z * L + a) * D, x.begin() + (z * L + b) * D);
    }
    return out;
}

// Rank 0's whole tensor to every rank's shard of it.
std::vector<float> scatter(const std::vector<float>& whole, int64_t BH, int64_t L, int64_t D, int N, int rank) {
    const int64_t mine = BH * ring::shard_length(L, N, rank) * D;
    std::vector<float> shard(static_cast<size_t>(mine));
    if (rank == 0) {
        for (int r = 1; r < N; ++r) {
            const std::vector<float> part = take_rows(whole, BH, L, D, ring::shard_ranges(L, N, r));
            MPI_Send(part.data(), int(part.size()), MPI_FLOAT, r, 7, MPI_COMM_WORLD);
        }
        return take_rows(whole, BH, L, D, ring::shard_ranges(L, N, 0));
    }
    MPI_Recv(shard.data(), int(mine), MPI_FLOAT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return shard;
}

// Every rank's output shard to rank 0, as the whole [B, H, Lq, D].
std::vector<float> gather(const std::vector<float>& shard, int64_t BH, int64_t L, int64_t D, int N, int rank) {
    if (rank != 0) {
        MPI_Send(shard.data(), int(shard.size()), MPI_FLOAT, 0, 8, MPI_COMM_WORLD);
        return {};
    }
    std::vector<float> whole(size_t(BH * L * D));
    for (int r = 0; r < N; ++r) {
        std::vector<float> part;
        if (r == 0) {
            part = shard;
        } else {
            part.resize(size_t(BH * ring::shard_length(L, N, r) * D));
            MPI_Recv(part.data(), int(part.size()), MPI_FLOAT, r, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        size_t at = 0;
        for (int64_t z = 0; z < BH; ++z) {
            for (const auto& [a, b] : ring::shard_ranges(L, N, r)) {
                std::copy_n(part.begin() + int64_t(at), (b - a) * D, whole.begin() + (z * L + a) * D);
                at += size_t((b - a) * D);
            }
        }
    }
    return whole;
}

int run(const Options& o) {
    MpiSession mpi;
    int rank = 0, N = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &N);
    try {
        Global g;
        const bool files = !o.q_file.empty() || !o.k_file.empty() || !o.v_file.empty();
        on_every_rank([&] {
            if (o.repeat < 1) throw Error("--repeat must be >= 1");
            if (files && (o.q_file.empty() || o.k_file.empty() || o.v_file.empty())) {
                throw Error("--q, --k and --v go together: give all three files or none (for random inputs)");
            }
            if (files && !o.random_flag.empty()) {
                throw Error(o.random_flag + " shapes the random inputs and cannot be used with --q/--k/--v: the .npy "
                            "files give the shape and the dtype (float32 or float16)");
            }
            if (files && rank == 0) {
                NpyArray q = read_npy(o.q_file), k = read_npy(o.k_file), v = read_npy(o.v_file);
                const auto sq = shape4(q, o.q_file), sk = shape4(k, o.k_file), sv = shape4(v, o.v_file);
                if (q.dtype != k.dtype || q.dtype != v.dtype) throw Error("Q, K and V files must share one dtype");
                if (sk != sv) throw Error(o.k_file + " and " + o.v_file + " must have the same shape");
                if (sk[0] != sq[0] || sk[3] != sq[3]) throw Error("K and Q must have the same B and D");
                g.s = {int(sq[0]), int(sq[1]), int(sk[1]), int(sq[2]), int(sk[2]), int(sq[3])};
                g.dtype = q.dtype == NpyDtype::f16 ? DType::f16 : DType::f32;
                g.q = std::move(q.data);
                g.k = std::move(k.data);
                g.v = std::move(v.data);
            } else if (!files) {
                if (o.dtype != "f32" && o.dtype != "f16") throw Error("--dtype must be f32 or f16, got '" + o.dtype + "'");
                const int hkv = o.kv_heads > 0 ? o.kv_heads : o.heads;
                const int lk = o.lk > 0 ? o.lk : o.lq;
                if (o.batch < 1 || o.heads < 1 || o.lq < 1 || lk < 1 || o.dim < 1) {
                    throw Error("--batch, --heads, --lq, --lk and --dim must be positive");
                }
                g.s = {o.batch, o.heads, hkv, o.lq, lk, o.dim};
                g.dtype = o.dtype == "f16" ? DType::f16 : DType::f32;
                // The same seeds and values as `vkattn attention`: the global tensors equal a single-process run's.
                g.q = random_values(size_t(o.batch) * o.heads * o.lq * o.dim, o.seed * 3 + 1, -2, 2);
                g.k = random_values(size_t(o.batch) * hkv * lk * o.dim, o.seed * 3 + 2, -2, 2);
                g.v = random_values(size_t(o.batch) * hkv * lk * o.dim, o.seed * 3 + 3, -1, 1);
                if (g.dtype == DType::f16) {
                    for (auto* t : {&g.q, &g.k, &g.v}) {
                        for (float& x : *t) x = round_to_dtype(x, DType::f16);
                    }
                }
            }
        });
        int dims[7] = {g.s.B, g.s.H, g.s.Hkv, g.s.Lq, g.s.Lk, g.s.D, int(g.dtype)};
        MPI_Bcast(dims, 7, MPI_INT, 0, MPI_COMM_WORLD);
        g.s = {dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]};
        g.dtype = DType(dims[6]);
        const auto& s = g.s;
        on_every_rank([&] {
            if (s.Lq < 2 * N || s.Lk < 2 * N) {
                throw Error("Lq = " + std::to_string(s.Lq) + " and Lk = " + std::to_string(s.Lk) +
                            " must be at least 2 × ranks = " + std::to_string(2 * N) + " (two chunks per rank)");
            }
        });
        std::vector<float> q, k, v;
        if (files) {
            q = scatter(g.q, int64_t(s.B) * s.H, s.Lq, s.D, N, rank);
            k = scatter(g.k, int64_t(s.B) * s.Hkv, s.Lk, s.D, N, rank);
            v = scatter(g.v, int64_t(s.B) * s.Hkv, s.Lk, s.D, N, rank);
        } else {
            q = take_rows(g.q, int64_t(s.B) * s.H, s.Lq, s.D, ring::shard_ranges(s.Lq, N, rank));
            k = take_rows(g.k, int64_t(s.B) * s.Hkv, s.Lk, s.D, ring::shard_ranges(s.Lk, N, rank));
            v = take_rows(g.v, int64_t(s.B) * s.Hkv, s.Lk, s.D, ring::shard_ranges(s.Lk, N, rank));
        }
        if (rank == 0) {
            std::printf("ring attention on %d ranks: B=%d H=%d Hkv=%d Lq=%d Lk=%d D=%d %s%s%s\n", N, s.B, s.H, s.Hkv,
                        s.Lq, s.Lk, s.D, std::string(dtype_name(g.dtype)).c_str(), o.causal ? " causal" : "",
                        o.window ? (" window " + std::to_string(o.window)).c_str() : "");
        }
        std::optional<Context> ctx;
        on_every_rank([&] { ctx.emplace(ring::context_options(MPI_COMM_WORLD, o.device.context_options())); });
        const int64_t lq = ring::shard_length(s.Lq, N, rank), lk = ring::shard_length(s.Lk, N, rank);
        std::optional<Tensor> tq, tk, tv, to;
        on_every_rank([&] {
            tq.emplace(*ctx, std::vector<int64_t>{s.B, s.H, lq, s.D}, q, g.dtype);
            tk.emplace(*ctx, std::vector<int64_t>{s.B, s.Hkv, lk, s.D}, k, g.dtype);
            tv.emplace(*ctx, std::vector<int64_t>{s.B, s.Hkv, lk, s.D}, v, g.dtype);
            to.emplace(*ctx, std::vector<int64_t>{s.B, s.H, lq, s.D}, g.dtype);
        });
        ring::RingParams rp;
        rp.scale = o.scale;
        rp.causal = o.causal;
        rp.window = o.window;
        ring::RingStats st;
        for (int i = 0; i < o.repeat; ++i) st = ring::ring_attention(*ctx, MPI_COMM_WORLD, *tq, *tk, *tv, *to, nullptr, rp);

        // Per-rank timings of the last run, printed by rank 0.
        const double mine[7] = {st.total_s, st.compute_s, st.wait_s, double(st.pairs_computed),
                                double(st.pairs_skipped), peak_rss_mib(), st.sync_s};
        std::vector<double> all(size_t(7 * N));
        MPI_Gather(mine, 7, MPI_DOUBLE, all.data(), 7, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        std::vector<char> names(size_t(256 * N));
        std::string name = ctx->device().name.substr(0, 255);
        name.resize(256, '\0');
        MPI_Gather(name.data(), 256, MPI_CHAR, names.data(), 256, MPI_CHAR, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            for (int r = 0; r < N; ++r) {
                const double* t = &all[size_t(7 * r)];
                std::printf("rank %d (%s): %.2f ms, compute %.2f ms, waiting on communication %.2f ms (%.1f%%), "
                            "on slower ranks %.2f ms, %d block pairs run, %d skipped, peak host memory %.0f MiB\n",
                            r, &names[size_t(256 * r)], 1e3 * t[0], 1e3 * t[1], 1e3 * t[2],
                            t[0] > 0 ? 100.0 * t[2] / t[0] : 0.0, 1e3 * t[6], int(t[3]), int(t[4]), t[5]);
            }
        }

        std::vector<float> out_shard;
        on_every_rank([&] { out_shard = to->download(); });
        const std::vector<float> out = gather(out_shard, int64_t(s.B) * s.H, s.Lq, s.D, N, rank);
        int status = kOk;
        if (rank == 0 && !o.out_file.empty()) {
            const std::vector<int64_t> shape = {s.B, s.H, s.Lq, s.D};
            write_npy(o.out_file, shape, out, g.dtype == DType::f16 ? NpyDtype::f16 : NpyDtype::f32);
            std::printf("wrote %s\n", o.out_file.c_str());
        }
        if (rank == 0 && o.check) {
            // The tolerances of `vkattn attention --check`: f16 output is rounded to fp16 (2^-11 relative).
            const double tol = g.dtype == DType::f16 ? 2e-3 : 1e-4;
            const auto report = [&](const char* what, const std::vector<float>& ref) {
                const ErrorStats e = compare(out, ref, tol, tol);
                std::printf("check against %s: max |ring - it| = %.3g (tolerance %.0e + %.0e·|ref|): %s\n", what,
                            e.max_abs, tol, tol, e.bad == 0 ? "PASS" : "FAIL");
                if (e.bad != 0) {
                    std::printf("  %zu elements out of tolerance; worst at %zu: ring %g, %s %g\n", e.bad, e.worst,
                                double(out[e.worst]), what, double(ref[e.worst]));
                    status = kMismatch;
                }
            };
            {
                Tensor q1(*ctx, {s.B, s.H, s.Lq, s.D}, g.q, g.dtype), o1(*ctx, {s.B, s.H, s.Lq, s.D}, g.dtype);
                Tensor k1(*ctx, {s.B, s.Hkv, s.Lk, s.D}, g.k, g.dtype), v1(*ctx, {s.B, s.Hkv, s.Lk, s.D}, g.v, g.dtype);
                AttentionParams ap;
                ap.scale = o.scale;
                ap.causal = o.causal;
                ap.window = o.window;
                attention(*ctx, q1, k1, v1, o1, ap);
                report("single-device attention", o1.download());
            }
            // The fp64 CPU reference where it takes seconds, not hours (B·H·Lq·Lk·D multiply-adds).
            const double work = double(s.B) * s.H * s.Lq * s.Lk * s.D;
            if (work <= 2e9) {
                report("CPU reference", reference::attention(s, g.q, g.k, g.v, {o.scale, o.causal, o.window, {}, {}}));
            } else {
                std::printf("check against CPU reference: skipped (%.2g multiply-adds; at most 2e9)\n", work);
            }
        }
        MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
        return status;
    } catch (const Error&) {
        // Every rank holds the same message (see agree): rank 0 prints it, the others just exit with the code.
        if (rank == 0) throw;
        return kBadInput;
    }
}

}  // namespace

Runner add_ring_attention(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "ring-attention",
        "Attention sharded by sequence over MPI ranks (mpirun -np N vkattn ring-attention ..., or vkattn attention "
        "--ring ...): each rank keeps its zig-zag shard of Q (chunks r and 2N-1-r of 2N), K/V shards rotate around "
        "the ring while each rank folds every visiting block into its softmax state; rank r uses device r mod the "
        "node's device count unless --device or VKATTN_DEVICE says otherwise. Rank 0 prints per-rank timings and "
        "the share of time spent waiting on communication.");
    auto o = std::make_shared<Options>();
    cmd->add_option("--q", o->q_file, "Q as .npy, [H, Lq, D] or [B, H, Lq, D], read by rank 0 and scattered");
    cmd->add_option("--k", o->k_file, "K as .npy, [Hkv, Lk, D] or [B, Hkv, Lk, D]");
    cmd->add_option("--v", o->v_file, "V as .npy, the shape of K");
    cmd->add_option("--out", o->out_file, "write the gathered output to this .npy (rank 0)");
    cmd->add_option("--batch", o->batch, "random inputs: batch")->capture_default_str();
    cmd->add_option("--heads", o->heads, "random inputs: query heads H")->capture_default_str();
    cmd->add_option("--kv-heads", o->kv_heads, "random inputs: key/value heads (default: H)");
    cmd->add_option("--lq", o->lq, "random inputs: query length (the whole sequence)")->capture_default_str();
    cmd->add_option("--lk", o->lk, "random inputs: key length (default: Lq)");
    cmd->add_option("--dim", o->dim, "random inputs: head dim D (1 to 256)")->capture_default_str();
    cmd->add_option("--seed", o->seed, "random inputs: seed (the same tensors as `vkattn attention`)")->capture_default_str();
    add_choice(*cmd, "--dtype", o->dtype, {"f32", "f16"}, "random inputs: storage of Q, K, V and the output");
    cmd->add_flag("--causal", o->causal, "causal mask over the whole sequence (bottom-right aligned)");
    cmd->add_option("--scale", o->scale, "score scale (default 1/sqrt(D))");
    cmd->add_option("--window", o->window, "sliding window: each query sees at most this many most recent keys");
    cmd->add_option("--repeat", o->repeat, "run the ring this many times; timings are the last run's")->capture_default_str();
    cmd->add_flag("--check", o->check,
                  "gather the output to rank 0 and compare it with single-device attention and, where it takes "
                  "seconds, the CPU reference (exit 1 on mismatch)");
    o->device.add_to(*cmd);
    return [o, cmd] {
        for (const char* flag : {"--batch", "--heads", "--kv-heads", "--lq", "--lk", "--dim", "--seed", "--dtype"}) {
            if (o->random_flag.empty() && given(*cmd, flag)) o->random_flag = flag;
        }
        return run(*o);
    };
}

}  // namespace vkattn::cli
#endif  // VKATTN_HAS_MPI
