// vkattn perplexity: sliding-window perplexity of a text file, as in Hugging Face's "Perplexity of
// fixed-length models" guide.
#include "cli.hpp"
#include "cli_args.hpp"
#include "mpi_cli.hpp"

#include <vkattn/error.hpp>
#ifdef VKATTN_HAS_MPI
#include <vkattn/ring.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string file;
    std::optional<int> context;  // nullopt: the flag is absent
    std::optional<int> stride;
    bool json = false;
    bool ring = false;  // sequence-parallel over MPI ranks
};

// -log p(target | row) for one row of logits [V], by a log-softmax in double.
double nll(std::span<const float> row, int target) {
    const double mx = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (const float x : row) sum += std::exp(double(x) - mx);
    return mx + std::log(sum) - double(row[size_t(target)]);
}

// Where each rank's time went over all windows of a --ring run, printed by rank 0 for every rank.
struct RingTotals {
#ifdef VKATTN_HAS_MPI
    double attention_s = 0, wait_s = 0, sync_s = 0;
    int64_t rows = 0;
    void add(const ring::RingForwardStats& st) {
        attention_s += st.attention_s;
        wait_s += st.attention.wait_s;
        sync_s += st.attention.sync_s;
        rows = std::max(rows, st.rows);
    }
    void print(model::LanguageModel& lm, double total_s) const {
        int rank = 0, N = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &N);
        const Context* ctx = lm.context();
        const double mine[7] = {total_s, attention_s, wait_s, sync_s, double(rows), peak_rss_mib(),
                                ctx ? double(ctx->peak_device_memory_bytes()) / 1048576.0 : 0.0};
        std::vector<double> all(size_t(7 * N));
        MPI_Gather(mine, 7, MPI_DOUBLE, all.data(), 7, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        if (rank != 0) return;
        for (int r = 0; r < N; ++r) {
            const double* t = &all[size_t(7 * r)];
            std::fprintf(stderr,
                         "rank %d: %.2f s, in ring attention %.2f s, waiting on communication %.2f s (%.1f%%), on "
                         "slower ranks %.2f s; %d positions per window at most; peak device memory %.1f MiB, peak "
                         "host memory %.0f MiB\n",
                         r, t[0], t[1], t[2], t[0] > 0 ? 100.0 * t[2] / t[0] : 0.0, t[3], int(t[4]), t[6], t[5]);
        }
    }
#else
    void print(model::LanguageModel&, double) const {}
#endif
};

// Sums of the NLL of the scored tokens and of its square (for the standard error), and their count.
struct Tally {
    double nll = 0, nll2 = 0, scored = 0;
    void add(double v) {
        nll += v;
        nll2 += v * v;
        scored += 1;
    }
};

// Scores the targets i in [first, end) of window [begin, end) of ids, the logits at window row i - begin - 1
// predicting token i: the whole window on this device, or (ring) this rank's rows of a sequence-parallel forward
// over the MPI ranks, the window's tally then summed over the ranks.
Tally score_window(model::LanguageModel& lm, const std::vector<int>& ids, int begin, int end, int first, bool ring,
                   RingTotals& totals) {
    const auto window = std::span<const int>(ids).subspan(size_t(begin), size_t(end - begin));
    Tally t;
    const auto score = [&](int64_t row, std::span<const float> logits) {
        const int64_t i = begin + row + 1;
        if (i >= first && i < end) t.add(nll(logits, ids[size_t(i)]));
    };
    if (!ring) {
        lm.reset();
        const std::vector<float> logits = lm.forward(window);
        const size_t V = size_t(lm.vocab_size());
        for (int64_t row = 0; row < end - begin; ++row) {
            score(row, std::span<const float>(logits).subspan(size_t(row) * V, V));
        }
        return t;
    }
#ifdef VKATTN_HAS_MPI
    const ring::RingForwardStats st = ring::ring_forward(lm, MPI_COMM_WORLD, window, score);
    totals.add(st);
    static_assert(sizeof(Tally) == 3 * sizeof(double), "Tally is reduced as three doubles");
    Tally sum;
    MPI_Allreduce(&t, &sum, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sum;
#else
    (void)totals;
    throw Error("--ring needs a vkattn built with MPI (VKATTN_WITH_MPI)");
#endif
}

int run(const Options& o) {
#ifdef VKATTN_HAS_MPI
    std::optional<MpiSession> mpi;
    int rank = 0, ranks = 1;
    if (o.ring) {
        mpi.emplace();
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    }
#else
    const int rank = 0, ranks = 1;
    if (o.ring) throw Error("--ring needs a vkattn built with MPI (VKATTN_WITH_MPI)");
#endif
    // Every rank opens the model on its own device and reads the same file; any failure reaches every rank.
    const auto everywhere = [&](const auto& f) {
#ifdef VKATTN_HAS_MPI
        if (o.ring) return on_every_rank(f);
#endif
        f();
    };
    try {
        model::ModelInfo info;
        int N = 0, S = 0;
        std::string text;
        LoadedModel loaded;
        std::vector<int> ids;
        everywhere([&] {
            info = model::inspect_model(o.model.model);
            const int P = info.context_length;
            // Absent flags take their defaults; a given value must be in range, so a typo is not silently a default.
            N = o.context.value_or(P);
            if (N < 2 || N > P) {
                throw Error("--context " + std::to_string(N) + " must be in [2, the model's context = " + std::to_string(P) + "]");
            }
            S = o.stride.value_or(std::max(1, N / 2));
            if (S < 1) throw Error("--stride " + std::to_string(S) + " must be >= 1");
            if (S > N) throw Error("--stride " + std::to_string(S) + " is larger than --context " + std::to_string(N) +
                                   ", which would leave tokens unscored");
            o.model.check_flags();
            if (o.ring && o.model.backend != "vulkan") throw Error("--ring runs on vulkan devices, not --backend " + o.model.backend);
            text = read_text_file("--file", o.file, false);
        });
        everywhere([&] {
            ModelOptions mo = o.model;
#ifdef VKATTN_HAS_MPI
            if (o.ring) mo.device.device = ring::context_options(MPI_COMM_WORLD, mo.device.context_options()).device;
#endif
            loaded = open_timed(mo);
            ids = need_tokenizer(*loaded.lm, "perplexity").encode(text);
            if (ids.size() < 2) throw Error(o.file + " has " + std::to_string(ids.size()) + " token(s); perplexity needs at least 2");
            if (o.ring && std::min<size_t>(ids.size(), size_t(N)) < size_t(2 * ranks)) {
                throw Error("a window over " + std::to_string(ranks) + " ranks needs at least " + std::to_string(2 * ranks) +
                            " tokens (two chunks per rank)");
            }
        });
        model::LanguageModel& lm = *loaded.lm;
        const bool report = rank == 0;
        const int n = int(ids.size());
        const int windows = n <= N ? 1 : 1 + (n - N + S - 1) / S;
        if (report) {
            std::fprintf(stderr, "loaded in %s: %s; %d tokens, context %d, stride %d, %d windows%s\n",
                         duration_str(loaded.load_ms / 1e3).c_str(), lm.description().c_str(), n, N, S, windows,
                         o.ring ? (", sequence-parallel over " + std::to_string(ranks) + " ranks").c_str() : "");
        }

        // Window w covers tokens [begin, end) with begin = w·S and scores only the targets no earlier window
        // scored, [prev_end, end); the first window scores all but its first token, which has no context.
        const auto t0 = std::chrono::steady_clock::now();
        Tally total;
        RingTotals ring_totals;
        int prev_end = 0, done = 0;
        std::optional<Progress> progress;
        if (report) progress.emplace("perplexity windows", windows);
        for (int begin = 0;; begin += S) {
            const int end = std::min(begin + N, n);
            const Tally t = score_window(lm, ids, begin, end, std::max(prev_end, begin + 1), o.ring, ring_totals);
            total.nll += t.nll;
            total.nll2 += t.nll2;
            total.scored += t.scored;
            prev_end = end;
            char running[64];
            std::snprintf(running, sizeof running, "running PPL %.4f", std::exp(total.nll / total.scored));
            if (progress) progress->update(++done, running);
            if (end == n) break;
        }
        const double ms = ms_since(t0);
        if (o.ring) ring_totals.print(lm, ms / 1e3);
        if (!report) return kOk;
        // llama-perplexity's estimate: the standard error of the mean NLL, sqrt((E[x²] - E[x]²) / (count - 1)),
        // propagated to PPL = exp(mean) by d exp(m) = exp(m) dm.
        const long scored = long(total.scored);
        const double mean = total.nll / total.scored;
        const double ppl = std::exp(mean);
        const double variance = total.nll2 / total.scored - mean * mean;
        const double se_nll = scored > 1 && variance > 0 ? std::sqrt(variance / double(scored - 1)) : 0.0;
        FILE* out = o.json ? stderr : stdout;
        std::fprintf(out, "perplexity: %.4f over %ld scored tokens (%d tokens, context %d, stride %d, %d windows, %.1f s)\n",
                     ppl, scored, n, N, S, windows, ms / 1e3);
        std::fprintf(out, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, se_nll * ppl);
        if (o.json) {
            nlohmann::ordered_json j = provenance(lm.context());
            j["model"] = o.model.model;
            j["backend"] = o.model.backend;
            j["file"] = o.file;
            j["perplexity"] = ppl;
            j["perplexity_stderr"] = se_nll * ppl;
            j["mean_nll"] = mean;
            j["mean_nll_stderr"] = se_nll;
            j["scored_tokens"] = scored;
            j["tokens"] = n;
            j["context"] = N;
            j["stride"] = S;
            j["windows"] = windows;
            j["ranks"] = ranks;
            j["load_ms"] = loaded.load_ms;
            j["seconds"] = ms / 1e3;
            std::printf("%s\n", json_line(j).c_str());
        }
        return kOk;
    } catch (const Error&) {
        // Under --ring every rank holds the same message: rank 0 prints it, the others exit with the code.
        if (rank == 0) throw;
        return kBadInput;
    }
}

}  // namespace

Runner add_perplexity(CLI::App& app) {
    auto* cmd = app.add_subcommand("perplexity", "Sliding-window perplexity of a text file (Hugging Face's method)");
    auto o = std::make_shared<Options>();
    o->model.add_to(*cmd);
    cmd->add_option("--file", o->file, "UTF-8 text to score")->required();
    cmd->add_option_function<int>(
        "--context", [o](const int& n) { o->context = n; }, "window length N (default: the model's context)");
    cmd->add_option_function<int>(
        "--stride", [o](const int& s) { o->stride = s; },
        "window step 1 <= S <= N (default: N/2); each window scores its last S tokens");
    cmd->add_flag("--ring", o->ring,
                  "sequence-parallel over MPI ranks (mpirun -np N vkattn perplexity --ring ...): each rank runs its "
                  "zig-zag shard of every window on its own device, every attention a ring attention, so a window "
                  "may exceed one device's KV cache; rank 0 prints, with each rank's time and communication share");
    cmd->add_flag("--json", o->json,
                  "one JSON object on stdout (perplexity, its standard error, tokens, version, commit, device and "
                  "driver); the report goes to stderr");
    cmd->footer("Prints the windows done, the running perplexity and an ETA on stderr (plain lines when stderr is not "
                "a terminal), then `perplexity: ...` and llama-perplexity's `Final estimate: PPL = x +/- y` (y: the "
                "standard error of the mean negative log-likelihood, times PPL).");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
