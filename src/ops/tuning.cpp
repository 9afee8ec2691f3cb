#include "ops/tuning.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <string>
#include <thread>

namespace vkattn::ops {
namespace {
std::atomic<uint32_t> grid_limit_for_testing{0};

// The threads llvmpipe runs workgroups on: LP_NUM_THREADS, by default one per CPU. Read once: tuning_for runs
// for every matmul recorded.
uint32_t lavapipe_threads() {
    static const uint32_t threads = [] {
        if (const char* env = std::getenv("LP_NUM_THREADS"); env != nullptr && std::atoi(env) > 0) {
            return uint32_t(std::atoi(env));
        }
        return std::max(1u, std::thread::hardware_concurrency());
    }();
    return threads;
}
}

void set_grid_limit_for_testing(uint32_t max_x) { grid_limit_for_testing = max_x; }

std::array<uint32_t, 3> folded_grid(const DeviceInfo& d, uint64_t groups, uint32_t z, const char* what) {
    uint64_t max_x = d.max_workgroup_count[0], max_y = d.max_workgroup_count[1];
    if (const uint32_t cap = grid_limit_for_testing; cap != 0) max_x = std::min<uint64_t>(max_x, cap);
    groups = std::max<uint64_t>(groups, 1);
    const uint64_t x = std::min(groups, max_x);
    const uint64_t y = (groups + x - 1) / x;
    if (y > max_y) {
        throw Error(std::string(what) + " needs " + std::to_string(groups) + " workgroups, more than the device's " +
                    std::to_string(max_x) + " × " + std::to_string(max_y) + " grid");
    }
    return {uint32_t(x), uint32_t(y), z};
}

Tuning tuning_for(const DeviceInfo& d) {
    Tuning t;
    const uint32_t inv = d.max_workgroup_invocations;
    t.matmul_tile = (inv >= 256 && d.max_workgroup_size[0] >= 16 && d.max_workgroup_size[1] >= 16) ? 16 : 8;
    uint32_t wg = 128;
    while (wg > inv || wg > d.max_workgroup_size[0]) wg /= 2;
    t.softmax_wg = std::max(1u, wg);
    // CPU devices (lavapipe, SwiftShader) pay for every barrier; one subgroup per row needs none.
    t.norm_wg = d.type == "cpu" ? d.subgroup_size : std::min(256u, d.max_workgroup_invocations);
    t.gemm_wg = t.matmul_tile;
    // Shared memory: BK × (BM + BN + 2) floats; 16 × 130 × 4 ≈ 8 KiB fits every Vulkan device's 16 KiB minimum.
    // On an H200 these 16 × 16 invocations of 4 × 4 outputs ran f32 [512, 768] · [768, 2304] at 14 TFLOP/s and
    // [1024, 768] · [768, 3072] at 20; 8 × 8 outputs per invocation ran at 1.6-2 (register spills).
    // matvec on GPUs, timed on an H200 (f32, M = 1): [768, 3072] weights took 6 µs (1.5 TB/s) as 256 invocations
    // in 64 K slices of 4 column invocations, 14 µs as 64 in 4 slices (too few loads in flight); the LM head's
    // [50257, 768] took 39 µs (3.9 TB/s) as 64 invocations per 4 rows of W. Partial sums in shared memory:
    // 4 · mv_rows floats per invocation.
    uint32_t mv = 256;
    while (mv > 1 && (mv > inv || mv > d.max_workgroup_size[0] || 16 * t.mv_rows * mv > d.max_shared_memory)) mv /= 2;
    t.mv_wg = mv;
    t.mv_split = std::max(1u, mv / 4);
    t.mv_wg_t = std::min(64u, wg);
    t.sample_on_host = d.type == "cpu" && d.unified_memory;
    if (d.type == "cpu") {
        // llvmpipe: a workgroup is one thread, its invocations SIMD lanes; a barrier switches coroutines and
        // shared memory costs like global memory, and a vec4 load costs what a scalar one does. On lavapipe
        // (Mesa 22.3, 2 threads, 8 lanes) simd runs [512, 768] · [768, 2304] at ~30 GFLOP/s, the tiled kernel
        // at 0.7. It decodes too: at TM = M it reads each weight once, with the wide rows per workgroup that
        // CPU prefetchers want (matvec's one vec4 per invocation ran 4× slower there). simd_tm = 32 ran ~20%
        // faster than 16 but takes llvmpipe ~6 s instead of ~2 to compile, on every first use without a warm
        // shader cache.
        t.gemm_kernel = MatmulKernel::simd;
        t.decode_kernel = MatmulKernel::simd;
        t.mv_wg = t.mv_wg_t = std::max(1u, d.subgroup_size);
        t.mv_split = 1;  // when forced: no K slices, so no shared memory and no barrier
        // Decode reads each weight once, and there llvmpipe is bound by its loads: a lane's step of k costs a
        // shuffle and loop overhead however many columns it owns, and wide strips of W's rows keep the CPU's
        // prefetchers streaming. Mesa 22.3, 2 threads, f32 [768, 3072] at M = 1: 4 column groups per lane
        // (BN = 128) ran 3.0-5.0 ms, 24 (4 workgroups of 768 columns) 1.6-2.2 ms. Widening past 32 costs
        // compile time (~3.7 s at 32) for little.
        t.cpu_threads = lavapipe_threads();
        // W [N, K] there: each lane walks its own rows of W in order, which CPU prefetchers follow, where [K, N]
        // reads a strip of every row with a stride of N. Mesa 22.3, 2 threads, f32, M = 1: [12288, 3072] (151
        // MB, beyond the caches) at 4.1-5.4 GB/s against 1.8-2.4 for [K, N]; M = 128, [768, 3072]: 56-75 ms
        // against 184-241 (same runs, interleaved; vkattn bench matmul --layout nk|kn).
        t.weights_nk = true;
        t.simd_w64 = d.shader_int64;
        t.loop_budget = 32768;  // half of llvmpipe's 65,535: the kernels' other loops run too
    }
    // Fused attention. On lavapipe a 16-byte load costs about what 8 FMAs do and a barrier far more, so
    // flash_rows shares each loaded key across a subgroup by shuffles (measured, Mesa 22.3, 2 threads, H = 12,
    // D = 64, Lq = Lk = 1024 causal: 53 ms f32, 43 ms f16, against ~17 s for the three-kernel path).
    t.flash_tpr = inv >= 256 ? 4 : 2;
    t.flash_split_wg = std::min(32u, wg);
    t.flash_merge_wg = std::min(64u, wg);
    if (d.type == "cpu") {
        t.flash_rows = true;
        t.flash_rows_wg = std::max(1u, d.subgroup_size);
        t.flash_rows_kb = std::clamp(d.subgroup_size, 1u, 8u);
        t.flash_split_wg = std::max(1u, d.subgroup_size);  // one SIMD vector: each lane its own keys
        t.flash_split_target_wgs = 32;                      // enough for the CPU's threads
        t.flash_merge_wg = std::max(1u, d.subgroup_size);
    }
    return t;
}

uint32_t simd_decode_tn(const Tuning& t, uint32_t lanes, uint32_t M, uint32_t N) {
    // As many rounds of cpu_threads workgroups as strips of the widest TN need, then the narrowest TN (a
    // multiple of 4, so that few pipelines serve every N) that still covers N in that many workgroups.
    const uint32_t rows = std::bit_ceil(std::max(1u, M));
    const uint64_t max_tn = std::max(1u, t.simd_decode_vec4 / rows);
    const uint64_t per_round = uint64_t(t.cpu_threads) * lanes * 4 * max_tn;
    const uint64_t workgroups = t.cpu_threads * ((N + per_round - 1) / per_round);
    const uint64_t tn = (N + workgroups * lanes * 4 - 1) / (workgroups * lanes * 4);
    return uint32_t(std::min(max_tn, (tn + 3) / 4 * 4));
}

FlashTiles flash_tiles(const Tuning& t, const DeviceInfo& d, uint32_t D) {
    FlashTiles f;
    // Two rows per invocation halve the key loads per row; at D = 256 the registers (and llvmpipe's compile
    // time, ~8 s) make one row the better trade.
    f.rows_r = D <= 128 ? 2 : 1;
    // flash_tiled's shared memory: Q and K tiles with padded rows, the V tile, the scores.
    f.bq = t.flash_bq;
    f.bk = t.flash_bk;
    f.tpr = t.flash_tpr;
    const auto bytes = [&] { return 4 * (f.bq * (D + 1) + f.bk * (D + 1) + f.bk * D + f.bq * (f.bk + 1)); };
    while (bytes() > d.max_shared_memory && (f.bq > 4 || f.bk > 4)) {
        if (f.bk >= f.bq / 2 && f.bk > 4) {
            f.bk /= 2;
        } else {
            f.bq /= 2;
        }
    }
    while (f.bq * f.tpr > d.max_workgroup_invocations && f.tpr > 1) f.tpr /= 2;
    while (f.bq * f.tpr > d.max_workgroup_invocations && f.bq > 1) f.bq /= 2;
    // flash_split holds every query row's q and accumulator in each invocation: 256 floats of each at most.
    f.split_qn = std::max(1u, std::min(t.flash_split_max_lq, 256u / D));
    return f;
}

void check_loop_budget(const DeviceInfo& device, uint64_t iterations, const std::string& what, const std::string& hint) {
    const uint32_t budget = tuning_for(device).loop_budget;
    if (budget == 0 || iterations <= budget) return;
    throw Error(what + " needs about " + std::to_string(iterations) + " loop iterations per shader invocation; on " +
                device.name + " a kernel may run " + std::to_string(budget) +
                " (llvmpipe ends an invocation's loops after 65,535 in all, silently); " + hint);
}

}  // namespace vkattn::ops
