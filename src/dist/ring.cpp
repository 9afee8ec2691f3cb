// Ring attention over MPI ranks (see include/vkattn/ring.hpp): zig-zag shards, K/V rotating with non-blocking
// sends and receives, each visiting block's partial softmax state from the device (ops/flash_partial) folded
// into a running fp64 state on the host.
#include "ops/runtime.hpp"
#include "ops/flash_partial.hpp"
#include "dist/agree.hpp"

#include <vkattn/error.hpp>
#include <vkattn/ring.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <future>
#include <limits>
#include <string>
#include <vector>

namespace vkattn::ring {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// This rank's view of the call, exchanged so that every rank checks the same facts.
struct Local {
    int64_t B = 0, H = 0, Hkv = 0, D = 0, lq = 0, lk = 0, dtype = 0, padding = 0, causal = 0, window = 0;
    int64_t scale_bits = 0;
};
constexpr int kLocalFields = 11;

Local check_local(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                  const Tensor* kp, const RingParams& params) {
    for (const Tensor* t : {&q, &k, &v, &out}) {
        if (&t->context() != &ctx) throw Error("a tensor belongs to another Context");
    }
    if (q.shape().size() != 4) throw Error("Q must be [B, H, lq, D], got " + shape_str(q.shape()));
    if (k.shape().size() != 4) throw Error("K must be [B, Hkv, lk, D], got " + shape_str(k.shape()));
    if (v.shape() != k.shape()) throw Error("V has shape " + shape_str(v.shape()) + " but K has " + shape_str(k.shape()));
    if (out.shape() != q.shape()) {
        throw Error("the output has shape " + shape_str(out.shape()) + " but Q has " + shape_str(q.shape()));
    }
    Local l;
    l.B = q.shape()[0];
    l.H = q.shape()[1];
    l.lq = q.shape()[2];
    l.D = q.shape()[3];
    l.Hkv = k.shape()[1];
    l.lk = k.shape()[2];
    if (k.shape()[0] != l.B || k.shape()[3] != l.D) {
        throw Error("K " + shape_str(k.shape()) + " does not match Q " + shape_str(q.shape()) + " in B or D");
    }
    if (l.B < 1 || l.H < 1 || l.Hkv < 1 || l.D < 1) throw Error("Q or K has an empty dimension");
    if (l.H % l.Hkv != 0) {
        throw Error("K has " + std::to_string(l.Hkv) + " heads, which does not divide the " + std::to_string(l.H) +
                    " query heads");
    }
    if (l.D > ops::kMaxHeadDim) {
        throw Error("head dim D = " + std::to_string(l.D) + " is not supported; it must be 1 to " +
                    std::to_string(ops::kMaxHeadDim));
    }
    if (k.dtype() != q.dtype() || v.dtype() != q.dtype() || out.dtype() != q.dtype()) {
        throw Error("Q, K, V and the output must share one dtype");
    }
    if (params.window < 0) throw Error("window must be >= 0 (0 disables it), got " + std::to_string(params.window));
    if (!std::isfinite(params.scale)) throw Error("attention scale must be finite");
    if (kp != nullptr) {
        const std::vector<int64_t> want = {l.B, l.lk};
        if (kp->shape() != want || kp->dtype() != DType::f32) {
            throw Error("the key-padding mask shard must be f32 " + shape_str(want) + ", got " +
                        shape_str(kp->shape()));
        }
        if (&kp->context() != &ctx) throw Error("the key-padding mask belongs to another Context");
    }
    l.dtype = int64_t(q.dtype());
    l.padding = kp != nullptr;
    l.causal = params.causal;
    l.window = params.window;
    uint32_t bits = 0;
    std::memcpy(&bits, &params.scale, 4);
    l.scale_bits = bits;
    return l;
}

// The exchanged views must agree: the same problem on every rank, and shards cut by shard_ranges.
void check_global(const std::vector<Local>& all, int64_t Lq, int64_t Lk) {
    const int N = int(all.size());
    const Local& a = all[0];
    for (int r = 0; r < N; ++r) {
        const Local& b = all[size_t(r)];
        if (b.B != a.B || b.H != a.H || b.Hkv != a.Hkv || b.D != a.D || b.dtype != a.dtype) {
            throw Error("rank " + std::to_string(r) + " has B, H, Hkv, D or dtype different from rank 0's");
        }
        if (b.padding != a.padding || b.causal != a.causal || b.window != a.window || b.scale_bits != a.scale_bits) {
            throw Error("rank " + std::to_string(r) + " has a key-padding mask, causal, window or scale different "
                        "from rank 0's");
        }
        if (b.lq != shard_length(Lq, N, r) || b.lk != shard_length(Lk, N, r)) {
            throw Error("rank " + std::to_string(r) + " holds " + std::to_string(b.lq) + " queries and " +
                        std::to_string(b.lk) + " keys, but the zig-zag shards of Lq = " + std::to_string(Lq) +
                        " and Lk = " + std::to_string(Lk) + " give it " + std::to_string(shard_length(Lq, N, r)) +
                        " and " + std::to_string(shard_length(Lk, N, r)));
        }
    }
    if (Lq > int64_t(UINT32_MAX) || Lk > int64_t(UINT32_MAX)) throw Error("sequence too long for ring attention");
    if (Lq < 2 * N || Lk < 2 * N) {
        throw Error("ring attention over " + std::to_string(N) + " ranks needs Lq and Lk of at least " +
                    std::to_string(2 * N) + " (two chunks per rank), got Lq = " + std::to_string(Lq) +
                    " and Lk = " + std::to_string(Lk));
    }
}

// The running state of every query row of this rank: max (base 2), sum relative to it, and the output as the
// weighted mean of the blocks folded so far (|acc| <= max |V|, as the split-KV merge keeps it).
struct State {
    std::vector<double> m, s, acc;
    std::vector<char> nan;
};

struct Problem {
    int64_t B, H, Hkv, D, Lq, Lk, lq;
    int N, rank;
    bool causal;
    int64_t window;
    float scale;
    DType dtype;
    bool padding;
};

// What a (query chunk, key chunk) pair needs: nothing visible, everything visible, or a mask.
enum class Pair { skip, full, masked };

Pair classify(const Problem& p, int64_t qa, int64_t qb, int64_t ka, int64_t kb) {
    const int64_t off = p.Lk - p.Lq;
    const int64_t W = p.window;
    // Some pair visible: the latest query sees the earliest key (causal), the earliest query the latest key (window).
    const bool any = (!p.causal || ka <= qb - 1 + off) && (W == 0 || kb - 1 > qa + off - W);
    if (!any) return Pair::skip;
    const bool all = (!p.causal || kb - 1 <= qa + off) && (W == 0 || ka > qb - 1 + off - W);
    return all ? Pair::full : Pair::masked;
}

ops::TensorRef ref_rows(const Tensor& t, int64_t heads, int64_t L, int64_t row0, int64_t rows, int64_t B,
                        int64_t D) {
    ops::TensorRef r;
    r.buffer = &ops::buffer(t);
    r.dtype = t.dtype();
    r.offset = uint64_t(row0 * D);
    r.shape = {B, heads, rows, D};
    r.stride = {heads * L * D, L * D, D, 1};
    return r;
}

// Folds one pair's state (out_b [B·H, rows, D] normalised, ml [B·H, rows, parts, 2]) into the rows of `st`
// starting at local query row q0.
void fold(const Problem& p, State& st, int64_t q0, int64_t rows, uint32_t parts, const std::vector<float>& out_b,
          const std::vector<float>& ml) {
    for (int64_t z = 0; z < p.B * p.H; ++z) {
        for (int64_t i = 0; i < rows; ++i) {
            const size_t first = size_t((z * rows + i) * parts) * 2;
            double mb = -std::numeric_limits<double>::infinity();
            bool nan = false;
            for (uint32_t q = 0; q < parts; ++q) {
                const float m = ml[first + 2 * q], l = ml[first + 2 * q + 1];
                if (std::isnan(m) || std::isnan(l)) nan = true;
                else mb = std::max(mb, double(m));
            }
            const size_t row = size_t(z * p.lq + q0 + i);
            if (nan) {
                st.nan[row] = 1;
                continue;
            }
            if (mb == -std::numeric_limits<double>::infinity()) continue;  // no visible key in this block
            double sb = 0;
            for (uint32_t q = 0; q < parts; ++q) {
                sb += double(ml[first + 2 * q + 1]) * std::exp2(double(ml[first + 2 * q]) - mb);
            }
            if (sb <= 0) continue;
            const double m_old = st.m[row];
            const double m_new = std::max(m_old, mb);
            const double a = m_old == -std::numeric_limits<double>::infinity() ? 0.0 : st.s[row] * std::exp2(m_old - m_new);
            const double b = sb * std::exp2(mb - m_new);
            const double wa = a / (a + b), wb = b / (a + b);
            double* acc = &st.acc[row * size_t(p.D)];
            const float* ob = &out_b[size_t(z * rows + i) * size_t(p.D)];
            for (int64_t d = 0; d < p.D; ++d) acc[d] = acc[d] * wa + double(ob[d]) * wb;
            st.m[row] = m_new;
            st.s[row] = a + b;
        }
    }
}

// One visiting block: the bytes of [K | V] in the tensors' dtype, then the key-padding floats, of the shard of
// rank `src`, folded into the state.
void compute_block(Context& ctx, const Problem& p, const Tensor& q, const Tensor* k0, const Tensor* v0,
                   const std::vector<std::byte>& block, int src, State& st, RingStats& stats) {
    const int64_t lk = shard_length(p.Lk, p.N, src);
    const auto kr = shard_ranges(p.Lk, p.N, src);
    const auto qr = shard_ranges(p.Lq, p.N, p.rank);
    const size_t kv_bytes = size_t(p.B * p.Hkv * lk * p.D) * dtype_size(p.dtype);
    std::optional<Tensor> kt, vt;
    if (k0 == nullptr) {  // a visiting block: its bytes straight to the device
        vk::Device& device = ops::runtime(ctx).device();
        kt.emplace(ctx, std::vector<int64_t>{p.B, p.Hkv, lk, p.D}, p.dtype);
        vt.emplace(ctx, std::vector<int64_t>{p.B, p.Hkv, lk, p.D}, p.dtype);
        device.upload(ops::buffer(*kt), 0, block.data(), kv_bytes);
        device.upload(ops::buffer(*vt), 0, block.data() + kv_bytes, kv_bytes);
        k0 = &*kt;
        v0 = &*vt;
    }
    std::vector<float> pad_floats;
    if (p.padding) {
        pad_floats.resize(size_t(p.B * lk));
        // The mask ends the block (on one rank the block is the mask alone: K and V never leave the device).
        std::memcpy(pad_floats.data(), block.data() + block.size() - pad_floats.size() * 4, pad_floats.size() * 4);
    }
    const float* pad = p.padding ? pad_floats.data() : nullptr;
    const int64_t off = p.Lk - p.Lq;
    int64_t q0 = 0;
    for (const auto& [qa, qb] : qr) {
        int64_t k0row = 0;
        for (const auto& [ka, kb] : kr) {
            const int64_t lqc = qb - qa, lkc = kb - ka;
            const Pair kind = lqc > 0 && lkc > 0 ? classify(p, qa, qb, ka, kb) : Pair::skip;
            if (lqc > 0 && lkc > 0 && kind == Pair::skip) ++stats.pairs_skipped;
            if (kind != Pair::skip) {
                ++stats.pairs_computed;
                const ops::AttentionDims dims{uint32_t(p.B), uint32_t(p.H), uint32_t(p.Hkv),
                                              uint32_t(lqc), uint32_t(lkc), uint32_t(p.D)};
                ops::MaskArgs mask;
                std::optional<Tensor> additive, padding;
                if (kind == Pair::masked) {
                    if (qa - ka + off == lkc - lqc) {  // the kernel's own bottom-right diagonal is the global one
                        mask.causal = p.causal;
                        mask.window = uint32_t(p.window);
                    } else {
                        std::vector<float> a(size_t(lqc * lkc), 0.0f);
                        for (int64_t i = 0; i < lqc; ++i) {
                            for (int64_t j = 0; j < lkc; ++j) {
                                const int64_t gi = qa + i, gj = ka + j;
                                const bool hidden = (p.causal && gj > gi + off) || (p.window > 0 && gj <= gi + off - p.window);
                                if (hidden) a[size_t(i * lkc + j)] = -std::numeric_limits<float>::infinity();
                            }
                        }
                        additive.emplace(ctx, std::vector<int64_t>{lqc, lkc}, a);
                        mask.additive = &ops::buffer(*additive);
                    }
                }
                if (pad != nullptr) {
                    std::vector<float> pm(size_t(p.B * lkc));
                    for (int64_t b = 0; b < p.B; ++b) {
                        std::copy_n(pad + b * lk + k0row, lkc, pm.begin() + b * lkc);
                    }
                    padding.emplace(ctx, std::vector<int64_t>{p.B, lkc}, pm);
                    mask.key_padding = &ops::buffer(*padding);
                }
                const ops::FlashPartialLayout layout = ops::flash_partial_layout(ctx.device(), dims, p.dtype);
                Tensor out_b(ctx, {p.B, p.H, lqc, p.D}, layout.out_dtype);
                Tensor ml(ctx, {int64_t(layout.ml_floats)}, DType::f32);
                const ops::TensorRef qref = ref_rows(q, p.H, p.lq, q0, lqc, p.B, p.D);
                const ops::TensorRef kref = ref_rows(*k0, p.Hkv, lk, k0row, lkc, p.B, p.D);
                const ops::TensorRef vref = ref_rows(*v0, p.Hkv, lk, k0row, lkc, p.B, p.D);
                const float scale = p.scale > 0 ? p.scale : float(1.0 / std::sqrt(double(p.D)));
                ops::runtime(ctx).run([&](ops::Encoder& enc) {
                    ops::record_flash_partial(enc, dims, qref, kref, vref, mask, scale, ops::buffer(out_b),
                                              ops::buffer(ml));
                });
                fold(p, st, q0, lqc, layout.parts, out_b.download(), ml.download());
            }
            k0row += lkc;
        }
        q0 += qb - qa;
    }
}

}  // namespace

void agree(MPI_Comm comm, const std::string& error) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    int mine = error.empty() ? INT_MAX : rank;
    int first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == INT_MAX) return;
    int len = rank == first ? int(std::min<size_t>(error.size(), 4096)) : 0;
    MPI_Bcast(&len, 1, MPI_INT, first, comm);
    std::string message(size_t(len), ' ');
    if (rank == first) std::memcpy(message.data(), error.data(), size_t(len));
    MPI_Bcast(message.data(), len, MPI_CHAR, first, comm);
    throw AgreedError("ring attention: rank " + std::to_string(first) + ": " + message);
}

std::array<std::pair<int64_t, int64_t>, 2> shard_ranges(int64_t L, int ranks, int rank) {
    const int64_t n = 2 * int64_t(ranks);
    const auto cut = [&](int64_t c) { return c * L / n; };
    const int64_t a = rank, b = n - 1 - rank;
    return {{{cut(a), cut(a + 1)}, {cut(b), cut(b + 1)}}};
}

int64_t shard_length(int64_t L, int ranks, int rank) {
    const auto r = shard_ranges(L, ranks, rank);
    return (r[0].second - r[0].first) + (r[1].second - r[1].first);
}

ContextOptions context_options(MPI_Comm comm, ContextOptions base) {
    const char* env = std::getenv("VKATTN_DEVICE");
    if (!base.device.empty() || (env != nullptr && *env != '\0')) return base;
    int rank = 0, local_rank = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm local;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
    std::vector<uint32_t> usable;
    for (const DeviceInfo& d : Context::devices()) {
        if (d.usable) usable.push_back(d.index);
    }
    if (!usable.empty()) base.device = std::to_string(usable[size_t(local_rank) % usable.size()]);
    return base;
}

RingStats ring_attention(Context& ctx, MPI_Comm comm, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                         const Tensor* key_padding, const RingParams& params) {
    const auto t_start = Clock::now();
    RingStats stats;
    int N = 1, rank = 0;
    MPI_Comm_size(comm, &N);
    MPI_Comm_rank(comm, &rank);

    Local local;
    std::string error;
    try {
        local = check_local(ctx, q, k, v, out, key_padding, params);
    } catch (const std::exception& e) {
        error = e.what();
    }
    agree(comm, error);
    std::vector<Local> all(static_cast<size_t>(N));
    static_assert(sizeof(Local) == kLocalFields * sizeof(int64_t));
    MPI_Allgather(&local, kLocalFields, MPI_INT64_T, all.data(), kLocalFields, MPI_INT64_T, comm);
    int64_t Lq = 0, Lk = 0;
    for (const Local& l : all) {
        Lq += l.lq;
        Lk += l.lk;
    }
    check_global(all, Lq, Lk);  // the same data on every rank: the same verdict, no agreement needed

    const Problem p{local.B, local.H, local.Hkv, local.D, Lq, Lk, local.lq, N, rank, params.causal,
                    params.window, params.scale, q.dtype(), key_padding != nullptr};
    State st;
    const size_t rows = size_t(p.B * p.H * p.lq);
    st.m.assign(rows, -std::numeric_limits<double>::infinity());
    st.s.assign(rows, 0.0);
    st.acc.assign(rows * size_t(p.D), 0.0);
    st.nan.assign(rows, 0);

    // The block that travels: [K | V] of one shard as the device stores them (f16 stays 2 bytes on the wire),
    // then its key-padding mask as floats.
    const auto block_bytes = [&](int src) {
        const int64_t lk = shard_length(Lk, N, src);
        return size_t(2 * p.B * p.Hkv * lk * p.D) * dtype_size(p.dtype) + size_t(p.padding ? p.B * lk * 4 : 0);
    };
    for (int r = 0; r < N; ++r) {  // the same verdict on every rank: the sizes are global
        if (block_bytes(r) > size_t(INT_MAX)) {
            throw Error("ring attention: rank " + std::to_string(r) + "'s K/V shard has " +
                        std::to_string(block_bytes(r)) + " bytes, over MPI's 2^31 - 1 per message; use more ranks");
        }
    }
    std::vector<std::byte> cur, next;
    try {
        const size_t kv_bytes = N > 1 ? size_t(p.B * p.Hkv * local.lk * p.D) * dtype_size(p.dtype) : 0;
        cur.resize(2 * kv_bytes + size_t(p.padding ? p.B * local.lk * 4 : 0));
        if (N > 1) {
            vk::Device& device = ops::runtime(ctx).device();
            device.download(ops::buffer(k), 0, cur.data(), kv_bytes);
            device.download(ops::buffer(v), 0, cur.data() + kv_bytes, kv_bytes);
        }
        if (key_padding != nullptr) {
            const std::vector<float> ph = key_padding->download();
            std::memcpy(cur.data() + 2 * kv_bytes, ph.data(), ph.size() * 4);
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    agree(comm, error);

    const int to = (rank + 1) % N, from = (rank - 1 + N) % N;
    for (int step = 0; step < N; ++step) {
        const int src = (rank - step + N) % N;  // whose shard is in hand
        MPI_Request reqs[2];
        int nreq = 0;
        if (step + 1 < N) {
            const int next_src = (rank - step - 1 + 2 * N) % N;
            next.resize(block_bytes(next_src));
            MPI_Irecv(next.data(), int(next.size()), MPI_BYTE, from, step, comm, &reqs[nreq++]);
            MPI_Isend(cur.data(), int(cur.size()), MPI_BYTE, to, step, comm, &reqs[nreq++]);
        }
        // The block's device work runs on a worker thread while this one drives MPI's progress.
        const auto t_compute = Clock::now();
        auto work = std::async(std::launch::async, [&] {
            const bool own = step == 0;
            compute_block(ctx, p, q, own ? &k : nullptr, own ? &v : nullptr, cur, src, st, stats);
            return seconds_since(t_compute);
        });
        int done = nreq == 0;
        while (!done) {
            MPI_Testall(nreq, reqs, &done, MPI_STATUSES_IGNORE);
            if (done || work.wait_for(std::chrono::microseconds(200)) == std::future_status::ready) break;
        }
        try {
            stats.compute_s += work.get();
        } catch (const std::exception& e) {
            error = e.what();
        }
        const auto t_wait = Clock::now();
        if (nreq > 0) MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE);
        stats.wait_s += seconds_since(t_wait);
        const auto t_sync = Clock::now();
        agree(comm, error);
        stats.sync_s += seconds_since(t_sync);
        std::swap(cur, next);
    }

    std::vector<float> result(rows * size_t(p.D));
    for (size_t r = 0; r < rows; ++r) {
        for (int64_t d = 0; d < p.D; ++d) {
            result[r * size_t(p.D) + size_t(d)] =
                st.nan[r] ? std::numeric_limits<float>::quiet_NaN() : float(st.acc[r * size_t(p.D) + size_t(d)]);
        }
    }
    try {
        out.upload(result);
    } catch (const std::exception& e) {
        error = e.what();
    }
    agree(comm, error);
    stats.total_s = seconds_since(t_start);
    return stats;
}

}  // namespace vkattn::ring
