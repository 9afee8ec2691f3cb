// Ring attention over the ranks of an MPI communicator: attention over a sequence sharded across processes,
// each on its own Vulkan device, for contexts no single device holds. Only for builds with VKATTN_WITH_MPI
// (the library then links MPI); include it only from code that uses MPI.
//
// Sharding (zig-zag, load-balanced under causality): a length L is cut into 2N chunks, chunk c being
// [c·L/(2N), (c+1)·L/(2N)) (integer division), and rank r of N holds chunks r and 2N−1−r, concatenated in that
// order. Q is sharded over Lq, K, V and the key-padding mask over Lk, by the same rule.
//
// Each rank keeps its queries; the K/V shards travel around the ring (rank r sends to r+1, receives from r−1)
// with non-blocking MPI sends and receives that overlap the attention of the block in hand. For each visiting
// block a rank computes, per pair of (its query chunk, the block's key chunk), the partial softmax state
// (row max, row sum, normalised output) on its device with the fused kernels (the row kernel writing each row's
// state on CPU devices, split-KV on GPUs: ops/flash_partial), and folds it into a running
// state in fp64 on the host exactly as split-KV merges slices. Masks are those of vkattn::attention over the
// whole sequence (bottom-right aligned: global query i sees global key j iff j <= i + Lk − Lq, and the window
// likewise); pairs wholly outside them are skipped, not computed and masked.
#pragma once

#include <vkattn/attention.hpp>
#include <vkattn/context.hpp>
#include <vkattn/export.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/tensor.hpp>

#include <mpi.h>

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>

namespace vkattn::ring {

// The [begin, end) ranges of the global sequence of length L that rank `rank` of `ranks` holds, in shard order.
VKATTN_API std::array<std::pair<int64_t, int64_t>, 2> shard_ranges(int64_t L, int ranks, int rank);
// Their total length: the shard's L.
VKATTN_API int64_t shard_length(int64_t L, int ranks, int rank);

// The context options of this rank: device (local rank mod the number of usable devices), the local rank from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED); VKATTN_DEVICE or base.device, when set, win.
VKATTN_API ContextOptions context_options(MPI_Comm comm, ContextOptions base = {});

struct RingParams {
    float scale = 0;   // <= 0: 1 / sqrt(D)
    bool causal = false;
    int window = 0;    // 0: no sliding window
};

// Where a rank's time went in one ring_attention call.
struct RingStats {
    double total_s = 0;     // the whole call
    double compute_s = 0;   // device work of the blocks (upload, kernels, read-back) and the host merge
    double wait_s = 0;      // waiting on the ring's transfers after the block's compute had finished
    double sync_s = 0;      // waiting for the other ranks at each step's error agreement (load imbalance)
    int pairs_computed = 0; // (query chunk, key chunk) pairs run on the device
    int pairs_skipped = 0;  // pairs wholly masked, never computed
};

// out [B, H, lq, D] = this rank's rows of softmax(mask(scale · Q Kᵀ)) V over the whole sequence, where
// q [B, H, lq, D], k and v [B, Hkv, lk, D] and key_padding [B, lk] f32 (or null) are this rank's shards
// (lq = shard_length(Lq, N, rank), lk likewise; Lq and Lk are the sums over the ranks). Tensors are
// contiguous; Q, K, V and out share one dtype (f32, or f16 where the device stores it). Collective: every
// rank of comm calls it with the same B, H, Hkv, D, dtype and params. Bad input on any rank throws the same
// vkattn::Error on every rank (naming the rank), never a hang.
VKATTN_API RingStats ring_attention(Context& ctx, MPI_Comm comm, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                         const Tensor* key_padding = nullptr, const RingParams& params = {});

// Where a rank's time went in one ring_forward call.
struct RingForwardStats {
    double total_s = 0;     // the whole call
    double attention_s = 0; // inside the layers' ring attentions (compute, transfers, waits)
    RingStats attention;    // the ring attentions' figures, summed over the layers
    int64_t rows = 0;       // this rank's positions
};

// A model's forward over a sequence split across the ranks of comm (sequence parallelism): rank r runs its
// zig-zag shard of `tokens` (shard_ranges(L, N, r); the whole sequence, the same on every rank) through every
// layer of lm, each layer's attention a ring attention over comm, and hands on_logits(position, logits [V])
// the logits of each of its positions, ascending. Weights are replicated (every rank opened the same model on
// its own device: see context_options); activations and keys/values exist only for a rank's own positions, so
// L may exceed what one device's KV cache holds. The logits equal a single device's forward of the whole
// sequence to the attention's tolerance. Empties lm's KV cache. Collective: every rank calls it with the same
// tokens and model. An error on any rank (bad input, a device failure, a throwing on_logits) throws the same
// vkattn::Error on every rank, naming the rank, never a hang. Needs L >= 2N and the vulkan backend.
VKATTN_API RingForwardStats ring_forward(model::LanguageModel& lm, MPI_Comm comm, std::span<const int> tokens,
                                         const std::function<void(int64_t position, std::span<const float> logits)>& on_logits);

}  // namespace vkattn::ring
