// Per-device choices of tile and workgroup sizes, in one table, derived from the device's limits.
#pragma once

#include <vkattn/device_info.hpp>

#include <array>
#include <cstdint>
#include <string>

namespace vkattn::ops {

// matmul kernels: tiled (shared-memory tiles, for GPUs), simd (one subgroup, no barriers, for CPU devices),
// matvec (a few rows of X on GPUs: each weight read once, N spread over many workgroups).
enum class MatmulKernel { tiled, simd, matvec };

struct Tuning {
    uint32_t matmul_tile = 16;     // qk/pv: TILE × TILE invocations, TILE × TILE outputs per workgroup
    uint32_t softmax_wg = 128;     // invocations per softmax row (power of two)
    uint32_t norm_wg = 64;         // LayerNorm invocations per row: one subgroup on CPU devices
    // matmul (ops/matmul.cpp): up to mv_rows rows of X (decode) take decode_kernel, more take gemm_kernel.
    MatmulKernel gemm_kernel = MatmulKernel::tiled;
    MatmulKernel decode_kernel = MatmulKernel::matvec;
    uint32_t gemm_wg = 16;         // tiled: gemm_wg × gemm_wg invocations ...
    uint32_t gemm_tm = 4;          // ... each owning gemm_tm × gemm_tn outputs in registers
    uint32_t gemm_tn = 4;
    uint32_t gemm_bk = 16;         // K step staged in shared memory per iteration
    uint32_t simd_tm = 16;         // simd: rows of Y per one-subgroup workgroup ...
    uint32_t simd_tn = 2;          // ... and vec4 column groups ([K, N]) or columns ([N, K]) per lane
    uint32_t simd_tn_t = 4;
    // simd with at most mv_rows rows ([K, N]): strips of W as wide as the registers allow (simd_decode_vec4
    // accumulators per lane), spread evenly over cpu_threads (simd_decode_tn()).
    uint32_t simd_decode_vec4 = 32;
    // Models keep their [K, N] matmul weights as [N, K] (GPT-2's Conv1D layout transposed at load): on CPU
    // devices simd's [N, K] form streams each weight row from memory in order, 2-3x faster (see tuning.cpp).
    bool weights_nk = false;
    bool simd_w64 = false;         // simd's 64-bit weight loads (matmul_simd64_*), where the device has shaderInt64
    uint32_t cpu_threads = 1;      // CPU devices: the threads that run workgroups
    // The sampler's candidates (LanguageModel::forward_select) picked by the host from the logits where they
    // are, not by the top_k kernel: CPU devices with unified memory, whose logits already sit in the host's
    // cached memory and whose one-workgroup top_k runs on one thread (on lavapipe 1 ms of a ~100 ms GPT-2
    // step greedy, 3 ms with top-k; the host's pick takes ~0.1 ms).
    bool sample_on_host = false;
    uint32_t mv_rows = 4;          // the most rows that count as decode; matvec's rows per dispatch
    // The most iterations a kernel's loop may run in one invocation; 0: no limit. llvmpipe (Mesa 22.3, Debian
    // 12's) ends an invocation's loops after 65,535 iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS),
    // silently: a matmul summing 140,000 ones gave 52,430 there, and 140,000 on Mesa 25.0. So on CPU devices
    // the ops cut longer work: matmul slices K (its loops run about K times for W [K, N], K / 4 for [N, K]) and
    // accumulates the slices in Y; fused attention past loop_budget blocks of keys per flash_rows invocation
    // takes split-KV, with slices of at most loop_budget keys per invocation. Before, vkattn::matmul with
    // K = 70,000 and attention with Lq = 16, Lk = 600,000 gave wrong numbers on lavapipe without an error.
    uint32_t loop_budget = 0;
    uint32_t mv_wg = 256;          // [K, N]: invocations per workgroup (power of two) ...
    uint32_t mv_split = 64;        // ... in this many K slices (power of two dividing mv_wg)
    uint32_t mv_wg_t = 64;         // [N, K]: invocations per workgroup (power of two) ...
    uint32_t mv_split_t = 4;       // ... sharing this many rows of W
    // Fused attention (ops/flash.cpp). CPU devices run flash_rows: one subgroup per workgroup, each invocation
    // owning query rows in registers, keys handed round by subgroup shuffles, no barrier. GPUs run flash_tiled:
    // query rows × key tiles staged in shared memory (flash_tiles() shrinks them to fit per head dim).
    bool flash_rows = false;
    uint32_t flash_rows_wg = 8;         // rows: invocations per workgroup (the subgroup size)
    uint32_t flash_rows_kb = 8;         // rows: keys per block, one per lane, at most the subgroup size
    uint32_t flash_bq = 64;             // tiled: query rows per workgroup ...
    uint32_t flash_bk = 32;             // ... keys per tile ...
    uint32_t flash_tpr = 4;             // ... and invocations per row in the PV step
    // Split-KV (decode): up to flash_split_max_lq query rows with at least flash_split_min_lk keys take
    // flash_split + flash_merge: keys cut into slices of at least flash_split_min_keys, aiming at
    // flash_split_target_wgs workgroups of flash_split_wg invocations in all.
    uint32_t flash_split_max_lq = 4;
    uint32_t flash_split_min_lk = 256;
    uint32_t flash_split_min_keys = 256;
    uint32_t flash_split_target_wgs = 128;
    uint32_t flash_split_wg = 32;
    uint32_t flash_merge_wg = 64;
};

// simd's column groups per lane for a [K, N] product of M <= mv_rows rows (see Tuning::simd_decode_vec4).
uint32_t simd_decode_tn(const Tuning& t, uint32_t lanes, uint32_t M, uint32_t N);

// Tile sizes of the fused attention kernels for one head dim D.
struct FlashTiles {
    uint32_t rows_r = 2;   // flash_rows: query rows per invocation
    uint32_t bq = 64;      // flash_tiled: query rows, keys per tile, invocations per row (bq · tpr in all)
    uint32_t bk = 32;
    uint32_t tpr = 4;
    uint32_t split_qn = 1; // flash_split: query rows per workgroup
};
FlashTiles flash_tiles(const Tuning& t, const DeviceInfo& device, uint32_t D);

// The grid of a dispatch of `groups` workgroups along one axis (and z along z), folded into x and y so that each
// fits maxComputeWorkGroupCount: the kernels number workgroups n = x + y · gridX and skip n >= groups.
// Throws vkattn::Error naming the limit when even x · y cannot hold them.
std::array<uint32_t, 3> folded_grid(const DeviceInfo& device, uint64_t groups, uint32_t z, const char* what);

// For tests: the largest grid x folded_grid uses, below the device's; 0 restores the device's limit.
void set_grid_limit_for_testing(uint32_t max_x);

// Every device gets 16 × 16 tiles unless it cannot run 256 invocations per workgroup (Vulkan only promises
// 128), and softmax workgroups of 128 or the device's maximum power of two below it. CPU devices multiply
// matrices with the simd kernel and decode without barriers.
Tuning tuning_for(const DeviceInfo& device);

// Throws vkattn::Error when `iterations` (a kernel's loop iterations per invocation, estimated) exceed the
// device's Tuning::loop_budget: what names the work, hint what to do instead.
void check_loop_budget(const DeviceInfo& device, uint64_t iterations, const std::string& what, const std::string& hint);

}  // namespace vkattn::ops
