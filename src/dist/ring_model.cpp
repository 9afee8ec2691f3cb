// A model's sequence-parallel forward over MPI ranks (ring_forward in include/vkattn/ring.hpp): the model runs
// its rows (LanguageModel::forward_shard) and hands every layer's attention to a ring attention.
#include "dist/agree.hpp"

#include <vkattn/error.hpp>
#include <vkattn/ring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace vkattn::ring {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Each layer's attention: this rank's rows to the device as tensors, the ring over comm, the output back.
class RingLayers final : public model::ShardAttention {
public:
    RingLayers(Context& ctx, MPI_Comm comm, RingForwardStats& stats) : ctx_(ctx), comm_(comm), stats_(stats) {}

    void attend(const model::ShardLayer& l, std::span<const float> q, std::span<const float> k,
                std::span<const float> v, std::span<float> out) override {
        const auto t0 = Clock::now();
        Tensor tq(ctx_, {1, l.heads, l.rows, l.head_dim}, q);
        Tensor tk(ctx_, {1, l.kv_heads, l.rows, l.head_dim}, k);
        Tensor tv(ctx_, {1, l.kv_heads, l.rows, l.head_dim}, v);
        Tensor to(ctx_, {1, l.heads, l.rows, l.head_dim});
        RingParams params;
        params.scale = l.scale;
        params.causal = true;
        params.window = l.window;
        const RingStats s = ring_attention(ctx_, comm_, tq, tk, tv, to, nullptr, params);
        const std::vector<float> o = to.download();
        std::copy(o.begin(), o.end(), out.begin());
        RingStats& sum = stats_.attention;
        sum.total_s += s.total_s;
        sum.compute_s += s.compute_s;
        sum.wait_s += s.wait_s;
        sum.sync_s += s.sync_s;
        sum.pairs_computed += s.pairs_computed;
        sum.pairs_skipped += s.pairs_skipped;
        stats_.attention_s += seconds_since(t0);
    }

private:
    Context& ctx_;
    MPI_Comm comm_;
    RingForwardStats& stats_;
};

}  // namespace

RingForwardStats ring_forward(model::LanguageModel& lm, MPI_Comm comm, std::span<const int> tokens,
                              const std::function<void(int64_t position, std::span<const float> logits)>& on_logits) {
    const auto t0 = Clock::now();
    RingForwardStats stats;
    int N = 1, rank = 0;
    MPI_Comm_size(comm, &N);
    MPI_Comm_rank(comm, &rank);
    const int64_t L = int64_t(tokens.size());

    std::string error;
    if (lm.context() == nullptr) {
        error = "a sequence-parallel forward needs the vulkan backend; this model runs " + lm.description();
    } else if (L < 2 * int64_t(N)) {
        error = "a forward over " + std::to_string(N) + " ranks needs at least " + std::to_string(2 * N) +
                " tokens (two chunks per rank), got " + std::to_string(L);
    }
    // The same model and tokens everywhere, or the ranks would compute different things (or wait forever).
    uint64_t hash = 14695981039346656037ull;  // FNV-1a over the token ids
    for (const int t : tokens) hash = (hash ^ uint32_t(t)) * 1099511628211ull;
    const int64_t mine[4] = {L, lm.info().n_layer, lm.vocab_size(), int64_t(hash >> 1)};
    int64_t first[4] = {};
    std::copy(mine, mine + 4, first);
    MPI_Bcast(first, 4, MPI_INT64_T, 0, comm);
    if (error.empty() && !std::equal(mine, mine + 4, first)) {
        error = "its tokens or model differ from rank 0's (every rank must run the same sequence and model)";
    }
    agree(comm, error);

    model::ShardForward shard;
    const auto ranges = shard_ranges(L, N, rank);
    std::vector<int> own;
    std::vector<int64_t> positions;
    for (const auto& [a, b] : ranges) {
        if (b <= a) continue;
        shard.runs.push_back({int(a), int(b)});
        for (int64_t p = a; p < b; ++p) {
            own.push_back(tokens[size_t(p)]);
            positions.push_back(p);
        }
    }
    stats.rows = int64_t(own.size());
    shard.tokens = own;
    RingLayers layers(*lm.context(), comm, stats);
    shard.attention = &layers;
    const int64_t V = lm.vocab_size();
    shard.logits = [&](int row0, std::span<const float> logits) {
        for (size_t i = 0; i * size_t(V) < logits.size(); ++i) {
            on_logits(positions[size_t(row0) + i], logits.subspan(i * size_t(V), size_t(V)));
        }
    };
    try {
        lm.forward_shard(shard);
    } catch (const AgreedError&) {
        throw;  // every rank already has it
    } catch (const std::exception& e) {
        error = e.what();
    }
    agree(comm, error);
    stats.total_s = seconds_since(t0);
    return stats;
}

}  // namespace vkattn::ring
