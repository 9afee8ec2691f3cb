// Ring attention over MPI ranks against single-device attention and the CPU reference. Run under mpiexec
// (registered in CTest with 2 and 4 ranks); not part of the Catch2 binary, which must not need mpirun.
// Every rank builds the same global inputs from a seed, runs the ring on its zig-zag shard, and compares its
// rows with the single-device result and the fp64 reference; the ranks agree on the verdict.
#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/ring.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

struct Case {
    const char* name;
    int B, H, Hkv, Lq, Lk, D;
    bool causal;
    int window;
    bool padding;
    vkattn::DType dtype;
};

// f16 storage rounds the inputs: the reference must see what the device stores.
std::vector<float> stored(vkattn::Context& ctx, std::vector<float> x, vkattn::DType dtype) {
    if (dtype == vkattn::DType::f32) return x;
    return vkattn::Tensor(ctx, {int64_t(x.size())}, x, dtype).download();
}

// The rows of `ranges` of a [B, heads, L, D] array, concatenated: [B, heads, l, D].
std::vector<float> take_rows(const std::vector<float>& x, int B, int heads, int L, int D,
                             const std::array<std::pair<int64_t, int64_t>, 2>& ranges) {
    std::vector<float> out;
    for (int bh = 0; bh < B * heads; ++bh) {
        for (const auto& [a, b] : ranges) {
            out.insert(out.end(), x.begin() + (int64_t(bh) * L + a) * D, x.begin() + (int64_t(bh) * L + b) * D);
        }
    }
    return out;
}

struct Diff {
    double max_abs = 0;
    size_t bad = 0;
};
Diff compare(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol) {
    Diff d;
    for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::abs(double(got[i]) - double(want[i]));
        if (!(e <= atol + rtol * std::abs(double(want[i])))) ++d.bad;  // NaN counts as bad
        if (e > d.max_abs || std::isnan(e)) d.max_abs = e;
    }
    if (got.size() != want.size()) d.bad += 1;
    return d;
}

// Returns the number of mismatching elements on this rank.
size_t run_case(vkattn::Context& ctx, MPI_Comm comm, const Case& c, int rank, int N) {
    using vkattn::DType;
    std::mt19937 gen(uint32_t(1234 + c.Lq * 31 + c.Lk * 7 + c.D));
    std::uniform_real_distribution<float> uq(-2, 2), uv(-1, 1);
    std::vector<float> q(size_t(c.B) * c.H * c.Lq * c.D), k(size_t(c.B) * c.Hkv * c.Lk * c.D), v(k.size());
    for (float& x : q) x = uq(gen);
    for (float& x : k) x = uq(gen);
    for (float& x : v) x = uv(gen);
    q = stored(ctx, q, c.dtype);
    k = stored(ctx, k, c.dtype);
    v = stored(ctx, v, c.dtype);
    std::vector<float> pad;
    if (c.padding) {
        pad.assign(size_t(c.B) * c.Lk, 0.0f);
        for (size_t j = 0; j < pad.size(); ++j) pad[j] = (gen() % 4 == 0) && (j % size_t(c.Lk)) != 0 ? 1.0f : 0.0f;
    }

    // Single device, whole sequence.
    vkattn::Tensor tq(ctx, {c.B, c.H, c.Lq, c.D}, q, c.dtype), tk(ctx, {c.B, c.Hkv, c.Lk, c.D}, k, c.dtype),
        tv(ctx, {c.B, c.Hkv, c.Lk, c.D}, v, c.dtype), to(ctx, {c.B, c.H, c.Lq, c.D}, c.dtype);
    std::optional<vkattn::Tensor> tpad;
    if (c.padding) tpad.emplace(ctx, std::vector<int64_t>{c.B, c.Lk}, pad);
    vkattn::AttentionParams ap;
    ap.causal = c.causal;
    ap.window = c.window;
    ap.key_padding_mask = c.padding ? &*tpad : nullptr;
    vkattn::attention(ctx, tq, tk, tv, to, ap);
    const std::vector<float> single = to.download();
    vkattn::reference::AttentionOptions ro;
    ro.causal = c.causal;
    ro.window = c.window;
    ro.key_padding_mask = pad;
    const std::vector<float> ref =
        vkattn::reference::attention({c.B, c.H, c.Hkv, c.Lq, c.Lk, c.D}, q, k, v, ro);

    // The ring, on this rank's shard.
    const auto qr = vkattn::ring::shard_ranges(c.Lq, N, rank);
    const auto kr = vkattn::ring::shard_ranges(c.Lk, N, rank);
    const int64_t lq = vkattn::ring::shard_length(c.Lq, N, rank), lk = vkattn::ring::shard_length(c.Lk, N, rank);
    vkattn::Tensor sq(ctx, {c.B, c.H, lq, c.D}, take_rows(q, c.B, c.H, c.Lq, c.D, qr), c.dtype);
    vkattn::Tensor sk(ctx, {c.B, c.Hkv, lk, c.D}, take_rows(k, c.B, c.Hkv, c.Lk, c.D, kr), c.dtype);
    vkattn::Tensor sv(ctx, {c.B, c.Hkv, lk, c.D}, take_rows(v, c.B, c.Hkv, c.Lk, c.D, kr), c.dtype);
    vkattn::Tensor so(ctx, {c.B, c.H, lq, c.D}, c.dtype);
    std::optional<vkattn::Tensor> spad;
    if (c.padding) spad.emplace(ctx, std::vector<int64_t>{c.B, lk}, take_rows(pad, c.B, 1, c.Lk, 1, kr));
    vkattn::ring::RingParams rp;
    rp.causal = c.causal;
    rp.window = c.window;
    const vkattn::ring::RingStats st =
        vkattn::ring::ring_attention(ctx, comm, sq, sk, sv, so, c.padding ? &*spad : nullptr, rp);
    const std::vector<float> got = so.download();

    // Tolerances of the single-device attention tests (tests/ops/attention_cases.hpp): f16 storage rounds O.
    const double tol = c.dtype == DType::f16 ? 2e-3 : 1e-4;
    const Diff vs_ref = compare(got, take_rows(ref, c.B, c.H, c.Lq, c.D, qr), tol, tol);
    const Diff vs_single = compare(got, take_rows(single, c.B, c.H, c.Lq, c.D, qr), tol, tol);
    std::printf("rank %d/%d %-22s pairs %d run %d skipped  vs reference max|d| %.2e bad %zu  vs single device "
                "max|d| %.2e bad %zu\n",
                rank, N, c.name, st.pairs_computed, st.pairs_skipped, vs_ref.max_abs, vs_ref.bad, vs_single.max_abs,
                vs_single.bad);
    return vs_ref.bad + vs_single.bad;
}


// -log softmax(logits)[target], in double.
double nll(std::span<const float> logits, int target) {
    double mx = -std::numeric_limits<double>::infinity();
    for (const float x : logits) mx = std::max(mx, double(x));
    double sum = 0;
    for (const float x : logits) sum += std::exp(double(x) - mx);
    return std::log(sum) + mx - double(logits[size_t(target)]);
}

// A model's forward over the ranks (ring_forward) against the same model's single-device forward of the whole
// sequence on this rank: the logits of this rank's positions, and the summed NLL of every next token (the
// perplexity's numerator) gathered over the ranks. Returns the number of failures on this rank.
size_t run_model_case(vkattn::Context& ctx, MPI_Comm comm, const char* name, const std::string& dir, int L,
                      bool fused, int rank, int N) {
    namespace model = vkattn::model;
    model::ModelOptions mo;
    mo.context = &ctx;
    mo.fused_attention = fused;
    const std::unique_ptr<model::LanguageModel> lm = model::open_model(std::string(VKATTN_FIXTURES_DIR) + "/" + dir,
                                                                       model::Backend::vulkan, mo);
    const int V = lm->vocab_size();
    std::vector<int> tokens(static_cast<size_t>(L));
    for (int i = 0; i < L; ++i) tokens[size_t(i)] = (i * 37 + 11) % V;
    const std::vector<float> single = lm->forward(tokens);
    double single_nll = 0;
    for (int p = 0; p + 1 < L; ++p) {
        single_nll += nll(std::span<const float>(single).subspan(size_t(p) * V, size_t(V)), tokens[size_t(p + 1)]);
    }

    Diff d;
    double ring_nll = 0;
    int64_t rows = 0, last = -1;
    bool ordered = true;
    const vkattn::ring::RingForwardStats st =
        vkattn::ring::ring_forward(*lm, comm, tokens, [&](int64_t pos, std::span<const float> logits) {
            ordered = ordered && pos > last;
            last = pos;
            ++rows;
            const std::vector<float> got(logits.begin(), logits.end());
            const std::vector<float> want(single.begin() + pos * V, single.begin() + (pos + 1) * V);
            const Diff r = compare(got, want, 1e-4, 1e-4);
            d.bad += r.bad;
            d.max_abs = std::max(d.max_abs, r.max_abs);
            if (pos + 1 < L) ring_nll += nll(logits, tokens[size_t(pos + 1)]);
        });
    double total = 0;
    MPI_Allreduce(&ring_nll, &total, 1, MPI_DOUBLE, MPI_SUM, comm);
    const double rel = std::abs(total - single_nll) / single_nll;
    const size_t bad = d.bad + (rel > 1e-6 ? 1 : 0) + (rows != vkattn::ring::shard_length(L, N, rank) || !ordered ? 1 : 0) +
                       (lm->position() != 0 ? 1 : 0);
    std::printf("rank %d/%d model %-24s L %d rows %lld  logits vs single device max|d| %.2e bad %zu  "
                "PPL %.6f vs %.6f (rel %.1e)\n",
                rank, N, name, L, (long long)rows, d.max_abs, d.bad, std::exp(total / (L - 1)),
                std::exp(single_nll / (L - 1)), rel);
    (void)st;
    return bad;
}

// A failure on one rank in the middle of a model's forward (its on_logits throws) reaches every rank as the
// same error; a rank with other tokens is refused before any compute.
size_t run_model_failures(vkattn::Context& ctx, MPI_Comm comm, int rank, int N) {
    namespace model = vkattn::model;
    model::ModelOptions mo;
    mo.context = &ctx;
    const auto lm = model::open_model(std::string(VKATTN_FIXTURES_DIR) + "/tiny_llama3_gqa", model::Backend::vulkan, mo);
    std::vector<int> tokens(40, 5);
    size_t bad = 0;
    const auto expect = [&](const char* what, const std::string& needle, const auto& run) {
        std::string message;
        try {
            run();
        } catch (const vkattn::Error& e) {
            message = e.what();
        }
        if (message.find(needle) == std::string::npos) {
            std::printf("rank %d: %s gave '%s', expected '%s'\n", rank, what, message.c_str(), needle.c_str());
            ++bad;
        }
    };
    expect("a throwing on_logits on the last rank", "rank " + std::to_string(N - 1) + ": no room for logits", [&] {
        vkattn::ring::ring_forward(*lm, comm, tokens, [&](int64_t, std::span<const float>) {
            if (rank == N - 1) throw vkattn::Error("no room for logits");
        });
    });
    if (N > 1) {
        std::vector<int> other = tokens;
        if (rank == N - 1) other[3] = 6;
        expect("other tokens on the last rank", "rank " + std::to_string(N - 1) + ": its tokens or model differ", [&] {
            vkattn::ring::ring_forward(*lm, comm, other, [](int64_t, std::span<const float>) {});
        });
    }
    expect("a token outside the vocabulary", "is out of range", [&] {
        std::vector<int> wrong = tokens;
        wrong[7] = 1000;
        vkattn::ring::ring_forward(*lm, comm, wrong, [](int64_t, std::span<const float>) {});
    });
    // The model still works after every failure.
    tokens[0] = 1;
    const std::vector<float> again = lm->forward(tokens);
    if (again.size() != tokens.size() * size_t(lm->vocab_size())) ++bad;
    return bad;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, N = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &N);
    using vkattn::DType;
    // Few distinct (D, dtype): each is a pipeline every rank compiles, and lavapipe compiles slowly.
    const Case cases[] = {
        {"causal f32 D24", 1, 2, 2, 37, 37, 24, true, 0, false, DType::f32},
        {"full f32 D24", 1, 2, 2, 37, 37, 24, false, 0, false, DType::f32},
        {"causal MQA f16", 2, 4, 1, 37, 37, 24, true, 0, false, DType::f16},
        {"causal window 3", 1, 2, 1, 41, 41, 24, true, 3, false, DType::f32},
        {"window 9 no causal", 1, 2, 2, 41, 41, 24, false, 9, false, DType::f32},
        {"padding GQA f16", 2, 4, 2, 29, 29, 24, false, 0, true, DType::f16},
        {"causal pad window f16", 1, 2, 1, 43, 43, 64, true, 11, true, DType::f16},
        {"Lq<Lk causal window", 1, 2, 2, 19, 45, 24, true, 7, false, DType::f32},
        {"Lq>Lk causal (empty)", 1, 2, 2, 45, 19, 24, true, 0, false, DType::f32},
    };
    size_t bad = 0;
    int status = 0;
    try {
        vkattn::Context ctx(vkattn::ring::context_options(MPI_COMM_WORLD));
        for (const Case& c : cases) bad += run_case(ctx, MPI_COMM_WORLD, c, rank, N);

        // Models over the ranks: GPT-2 (learned positions, MHA), Llama 3 (RoPE, GQA; both attention paths),
        // Mistral (a sliding window of 6, shorter than most shards).
        bad += run_model_case(ctx, MPI_COMM_WORLD, "gpt2", "tiny_gpt2", 45, true, rank, N);
        bad += run_model_case(ctx, MPI_COMM_WORLD, "llama3 GQA", "tiny_llama3_gqa", 101, true, rank, N);
        bad += run_model_case(ctx, MPI_COMM_WORLD, "llama3 GQA naive", "tiny_llama3_gqa", 37, false, rank, N);
        bad += run_model_case(ctx, MPI_COMM_WORLD, "mistral window 6", "tiny_mistral_window", 50, true, rank, N);
        bad += run_model_failures(ctx, MPI_COMM_WORLD, rank, N);

        // Bad input on one rank: every rank gets the same one-line error, nobody hangs.
        // (rank N - 1 gives K and V 3 heads, which do not divide Q's 2).
        const int64_t lq = vkattn::ring::shard_length(cases[0].Lq, N, rank);
        const int64_t hkv = rank == N - 1 ? 3 : 2;
        vkattn::Tensor q(ctx, {1, 2, lq, 24}), k(ctx, {1, hkv, lq, 24}), v(ctx, {1, hkv, lq, 24}),
            o(ctx, {1, 2, lq, 24});
        std::string message;
        try {
            vkattn::ring::ring_attention(ctx, MPI_COMM_WORLD, q, k, v, o);
        } catch (const vkattn::Error& e) {
            message = e.what();
        }
        const bool named = message.find("rank " + std::to_string(N - 1) + ": K has 3 heads") != std::string::npos;
        if (!named) {
            std::printf("rank %d: a bad shard on rank %d gave '%s'\n", rank, N - 1, message.c_str());
            ++bad;
        }
    } catch (const std::exception& e) {
        std::printf("rank %d: %s\n", rank, e.what());
        status = 1;
    }
    unsigned long long mine = bad + size_t(status), total = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) std::printf("ring attention on %d ranks: %s (%llu bad)\n", N, total == 0 ? "ok" : "FAILED", total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
