// matmul on cooperative matrices (tensor cores), shaders/matmul_coopmat.comp: record_matmul hands a product
// with f16 weights here when the device's matmul_f16_path is "coopmat_nv" and the product fits the kernel.
#pragma once

#include "ops/matmul.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace vkattn::ops {

// The kernel's blocking; see shaders/matmul_coopmat.comp for what each number means.
struct CoopmatConfig {
    bool emulate = false;                      // matmul_coopmat_emu_*: the same kernel without cooperative matrices
    std::array<uint32_t, 3> shape{16, 16, 16};  // LM, LN, LK: the cooperative-matrix shape
    uint32_t tm = 2, tn = 2;                   // accumulators per subgroup, down and across
    uint32_t sgm = 2, sgn = 2;                 // subgroups per workgroup, down and across
    uint32_t bk = 32;                          // K per shared-memory step
    uint32_t subgroup = 32;                    // invocations per subgroup

    uint32_t block_m() const { return sgm * tm * shape[0]; }
    uint32_t block_n() const { return sgn * tn * shape[1]; }
    uint32_t invocations() const { return sgm * sgn * subgroup; }
    uint64_t shared_bytes(bool w_transposed) const;
};

// Fewer rows of X than this are a decode step: reading W bounds it, tensor cores would idle on a mostly
// padded block, and record_matmul's other kernels read W just as well.
inline constexpr uint32_t kCoopmatMinRows = 8;

// The blocking the device runs for y [M, N]: 128 × 128 blocks when there are enough of them to fill a large
// GPU, 64 × 64 otherwise (decode steps, GPT-2's 128-token prefill).
CoopmatConfig coopmat_config(const DeviceInfo& device, uint32_t M, uint32_t N);

// Whether the product can run on cooperative matrices with cfg: f16 weights, f32 x and y, each operand in one
// binding (no split over K or N), the grid and the workgroup within the device's limits.
bool coopmat_fits(const vk::Device& device, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                  const MatrixRef& y, const MatmulEpilogue& ep, const CoopmatConfig& cfg);

// What record_matmul runs for this product: the device's config where the device's matmul_f16_path is
// "coopmat_nv" (or emulate_coopmat_for_testing is on, ops/self_check.hpp, which runs the emulated kernel), W is
// f16, X has at least kCoopmatMinRows rows, coopmat_fits holds, and the pipeline passed its
// self-check on this device (a [BM + 3, 2·BK + 5] · W + bias product against vkattn::reference::matmul);
// else nullopt, and record_matmul's other kernels run.
std::optional<CoopmatConfig> coopmat_choice(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                                            const MatrixRef& y, const MatmulEpilogue& ep);
// The self-check of cfg's pipeline for this W layout: "" when it agrees with the reference, else the error.
std::string coopmat_self_check(Encoder& enc, const CoopmatConfig& cfg, bool w_transposed);

// y [M, N] f32 = x [M, K] f32 · w (+ bias)(GELU)(+ y), w f16 [K, N] or, when w_transposed, [N, K]: the contract
// of record_matmul, for a product coopmat_fits accepts. Its dispatch is labelled with the kernel's name
// ("matmul_coopmat_f16", "matmul_coopmat_nt_f16", or "matmul_coopmat_emu_..." when emulated).
void record_matmul_coopmat(Encoder& enc, const MatrixRef& x, const MatrixRef& w, bool w_transposed,
                           const MatrixRef& y, const MatmulEpilogue& ep, const CoopmatConfig& cfg);

}  // namespace vkattn::ops
