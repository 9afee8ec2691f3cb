// One Context shared by four threads: tensors made, filled, read and freed, matmuls and attention recorded
// and submitted at the same time, each thread checking its own results against the CPU reference.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/context.hpp>
#include <vkattn/matmul.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace vkattn;

TEST_CASE("four threads share one Context", "[gpu][context][threads]") {
    Context& ctx = test::gpu();
    const uint64_t memory_before = ctx.device_memory_bytes();
    constexpr int kThreads = 4, kRounds = 6;
    std::vector<std::string> failures(kThreads);
    std::atomic<int> done{0};
    const auto work = [&](int id) {
        try {
            for (int round = 0; round < kRounds; ++round) {
                const uint64_t seed = test::seed_of("threads " + std::to_string(id) + " " + std::to_string(round));
                // Shapes differ per thread, so a result computed for another thread's inputs cannot pass.
                const int M = 3 + id, K = 17 + round, N = 9 + 2 * id;
                const auto x = test::random_values(size_t(M) * K, seed), w = test::random_values(size_t(K) * N, seed + 1);
                Tensor tx(ctx, {M, K}, x), tw(ctx, {K, N}, w), ty(ctx, {M, N});
                matmul(ctx, tx, tw, ty);
                // fp32 dot products of length K <= 22 against the reference's.
                const auto c1 = test::compare(ty.download(), reference::matmul(M, K, N, x, w), 1e-4, 1e-4);
                if (!c1.ok) throw std::runtime_error("matmul: " + c1.describe());

                const reference::AttentionShape s{1, 2, 2, 5 + id, 7 + round, 32};
                const size_t nq = size_t(s.H) * s.Lq * s.D, nk = size_t(s.Hkv) * s.Lk * s.D;
                const auto q = test::random_values(nq, seed + 2), k = test::random_values(nk, seed + 3);
                const auto v = test::random_values(nk, seed + 4);
                Tensor tq(ctx, {1, s.H, s.Lq, s.D}, q), tk(ctx, {1, s.Hkv, s.Lk, s.D}, k), tv(ctx, {1, s.Hkv, s.Lk, s.D}, v);
                Tensor out(ctx, {1, s.H, s.Lq, s.D});
                attention(ctx, tq, tk, tv, out, {.causal = true});
                // fp32 GPU against the double reference, as the attention tests allow.
                const auto c2 = test::compare(out.download(), reference::attention(s, q, k, v, {.causal = true}), 1e-4, 1e-4);
                if (!c2.ok) throw std::runtime_error("attention: " + c2.describe());
            }
            done.fetch_add(1);
        } catch (const std::exception& e) {
            failures[size_t(id)] = e.what();
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(work, i);
    for (std::thread& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) {
        INFO("thread " << i << ": " << failures[size_t(i)]);
        CHECK(failures[size_t(i)].empty());
    }
    CHECK(done.load() == kThreads);
    CHECK(ctx.device_memory_bytes() == memory_before);  // every tensor's bytes were given back, none twice
}
