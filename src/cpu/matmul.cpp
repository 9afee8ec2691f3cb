#include "cpu/matmul.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace vkattn::cpu {

namespace {

// Runs body(item) for item in [0, n_items) on up to hardware_concurrency threads. Small problems stay on
// the calling thread, where starting threads would cost more than the work.
void parallel_for(long n_items, double multiply_adds, const std::function<void(long)>& body) {
    const long hw = std::max(1u, std::thread::hardware_concurrency());
    const long n_threads = multiply_adds < 1e6 ? 1 : std::min(hw, n_items);
    if (n_threads <= 1) {
        for (long item = 0; item < n_items; ++item) body(item);
        return;
    }
    std::atomic<long> next{0};
    auto worker = [&] {
        for (long item = next++; item < n_items; item = next++) body(item);
    };
    std::vector<std::thread> threads;
    for (long t = 1; t < n_threads; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
}

}  // namespace

void matmul(int M, int K, int N, const float* x, const float* w, const float* bias, float* out) {
    // A tile is row_block rows × col_block columns of out. Its double accumulators (8 KiB) stay in L1 while
    // each row of w is streamed once per row_block rows of x instead of once per row.
    constexpr int row_block = 4;
    constexpr int col_block = 256;
    const long row_tiles = (M + row_block - 1) / row_block;
    const long col_tiles = (N + col_block - 1) / col_block;

    parallel_for(row_tiles * col_tiles, double(M) * K * N, [&](long tile) {
        const int i0 = static_cast<int>(tile / col_tiles) * row_block;
        const int j0 = static_cast<int>(tile % col_tiles) * col_block;
        const int rows = std::min(row_block, M - i0);
        const int cols = std::min(col_block, N - j0);

        double acc[row_block][col_block];  // [rows, cols]
        for (int r = 0; r < rows; ++r)
            for (int j = 0; j < cols; ++j) acc[r][j] = bias ? bias[j0 + j] : 0.0;

        // i-k-j order: out[i, j] += x[i, k] · w[k, j], walking w along its contiguous rows.
        for (int k = 0; k < K; ++k) {
            const float* wk = w + static_cast<long>(k) * N + j0;  // [cols] of row k of w
            for (int r = 0; r < rows; ++r) {
                const double xik = x[static_cast<long>(i0 + r) * K + k];
                double* a = acc[r];
                // Unrolled by 4 so that -O2 (GCC's "very cheap" vectorizer) still emits packed double FMAs.
                int j = 0;
                for (; j + 4 <= cols; j += 4)
                    for (int u = 0; u < 4; ++u) a[j + u] += xik * wk[j + u];
                for (; j < cols; ++j) a[j] += xik * wk[j];
            }
        }

        for (int r = 0; r < rows; ++r) {
            float* o = out + static_cast<long>(i0 + r) * N + j0;
            for (int j = 0; j < cols; ++j) o[j] = static_cast<float>(acc[r][j]);
        }
    });
}

void matmul_transposed_b(int M, int K, int N, const float* x, const float* w, float* out) {
    // A work item is a block of rows of w, dotted with every row of x: w (the 150 MB embedding for the LM
    // head) is read once, while x [M, K] is small enough to stay in cache.
    constexpr int n_block = 16;
    const long n_tiles = (N + n_block - 1) / n_block;

    parallel_for(n_tiles, double(M) * K * N, [&](long tile) {
        const int n0 = static_cast<int>(tile) * n_block;
        const int n1 = std::min(N, n0 + n_block);
        for (int i = 0; i < M; ++i) {
            const float* xi = x + static_cast<long>(i) * K;  // [K]
            for (int n = n0; n < n1; ++n) {
                const float* wn = w + static_cast<long>(n) * K;  // [K]
                // Four partial sums break the add dependency chain; still double, so the order barely matters.
                double s[4] = {0.0, 0.0, 0.0, 0.0};
                int k = 0;
                for (; k + 4 <= K; k += 4)
                    for (int u = 0; u < 4; ++u) s[u] += double(xi[k + u]) * wn[k + u];
                for (; k < K; ++k) s[0] += double(xi[k]) * wn[k];
                out[static_cast<long>(i) * N + n] = static_cast<float>((s[0] + s[1]) + (s[2] + s[3]));
            }
        }
    });
}

}  // namespace vkattn::cpu
