// rope against cpu::rope: Q and K inside fused QKV rows of a KV-cache buffer (the layout gpt2_gpu.cpp uses),
// multi-head, grouped-query and multi-query heads, head dims 8 to 128, decode steps at an offset position,
// positions past the llama3 scaling's original_max_position_embeddings and far beyond, Q alone.
#include "api/context_impl.hpp"
#include "catch.hpp"
#include "cpu/rope.hpp"
#include "ops/llama_ops.hpp"
#include "support.hpp"

#include <optional>
#include <string>

using namespace vkattn;
using vkattn::test::compare;
using vkattn::test::random_values;

namespace {

struct Heads {
    uint32_t H, Hkv;
};

struct Case {
    uint32_t T, D;
    Heads heads;
    uint32_t pos0;
    bool llama3 = false;
    bool with_k = true;
};

std::string describe(const Case& c) {
    return "rope T " + std::to_string(c.T) + " D " + std::to_string(c.D) + " H " + std::to_string(c.heads.H) +
           " Hkv " + std::to_string(c.heads.Hkv) + " pos0 " + std::to_string(c.pos0) + (c.llama3 ? " llama3" : "") +
           (c.with_k ? "" : " Q only");
}

void check_rope(const Case& c) {
    Context& ctx = test::gpu();
    const std::string name = describe(c);
    INFO(name);
    const uint64_t seed = test::seed_of(name);
    const uint32_t H = c.heads.H, Hkv = c.heads.Hkv, D = c.D, T = c.T;
    // A KV cache of P fused rows [Q | K | V] (row = (H + 2·Hkv)·D); this step owns rows pos0 .. pos0 + T − 1.
    // Only the step's rows exist in the buffer past a few earlier ones, so large pos0 stays cheap: the row
    // index inside the buffer (slot) and the position are separate, as in a cache that is a sliding window.
    const uint32_t row = (H + 2 * Hkv) * D;
    const uint32_t slot0 = 3;  // rows before the step's: they must not change
    const uint32_t rows = slot0 + T + 2;
    const auto before = random_values(size_t(rows) * row, seed);

    std::optional<cpu::Llama3RopeScaling> scaling;
    if (c.llama3) scaling = cpu::Llama3RopeScaling{8.0, 1.0, 4.0, 8192};  // Llama 3.1's values
    const auto inv = cpu::rope_inv_freq(int(D), c.llama3 ? 500000.0 : 10000.0, scaling);

    std::vector<float> ref = before;
    float* step = ref.data() + size_t(slot0) * row;
    cpu::rope(int(T), int(H), int(D), long(row), int(c.pos0), inv.data(), step);
    if (c.with_k) cpu::rope(int(T), int(Hkv), int(D), long(row), int(c.pos0), inv.data(), step + size_t(H) * D);

    Tensor tqkv(ctx, {int64_t(before.size())}, before), tinv(ctx, {int64_t(inv.size())}, inv);
    ctx.impl().run([&](ops::Encoder& enc) {
        const vk::Buffer& b = tqkv.impl().buffer;
        const ops::TensorRef q{&b, DType::f32, uint64_t(slot0) * row, {1, H, T, D}, {0, D, row, 1}};
        ops::TensorRef k{&b, DType::f32, uint64_t(slot0) * row + uint64_t(H) * D, {1, Hkv, T, D}, {0, D, row, 1}};
        if (!c.with_k) k = ops::TensorRef{};
        ops::record_rope(enc, c.pos0, tinv.impl().buffer, q, k);
    });
    const auto got = tqkv.download();
    // Everything else (earlier rows, V, K when absent, later rows) is compared too, and must be unchanged.
    // sin and cos come within ~2e−7 of double precision for the same float angle (see rope.comp); two fp32
    // products and a sum of values in [−1, 1] add a few 1e−7 (2.4e−7 at most seen on lavapipe).
    const auto cmp = compare(got, ref, 1e-6, 0.0);
    INFO(cmp.describe());
    CHECK(cmp.ok);
}

}  // namespace

TEST_CASE("rope matches the CPU reference over head dims, GQA and positions", "[gpu][rope]") {
    const uint32_t T = GENERATE(1u, 7u, 64u);
    const uint32_t D = GENERATE(8u, 16u, 64u, 128u);
    const Heads heads = GENERATE(Heads{4, 4}, Heads{6, 2}, Heads{4, 1});
    const uint32_t pos0 = GENERATE(0u, 37u);
    check_rope({T, D, heads, pos0});
}

TEST_CASE("rope with llama3 scaling past original_max_position_embeddings, and at large positions",
          "[gpu][rope]") {
    const uint32_t D = GENERATE(8u, 64u, 128u);
    // Straddling 8192 (the original context), then Llama 3.1's 128k context and the 2^24 limit.
    const uint32_t pos0 = GENERATE(8160u, 131000u, (1u << 24) - 64u);
    const bool llama3 = GENERATE(true, false);
    check_rope({64, D, Heads{6, 2}, pos0, llama3});
}

TEST_CASE("rope on Q alone leaves K and V alone", "[gpu][rope]") {
    check_rope({7, 16, Heads{4, 2}, 5, false, false});
}

TEST_CASE("rope refuses an odd head dim and positions past 2^24", "[gpu][rope][errors]") {
    Context& ctx = test::gpu();
    Tensor buf(ctx, {64}, std::vector<float>(64, 0.0f)), inv(ctx, {4}, std::vector<float>(4, 1.0f));
    const auto run = [&](uint32_t D, uint32_t pos0) {
        ctx.impl().run([&](ops::Encoder& enc) {
            const ops::TensorRef q{&buf.impl().buffer, DType::f32, 0, {1, 2, 2, D}, {0, D, 2 * D, 1}};
            ops::record_rope(enc, pos0, inv.impl().buffer, q, {});
        });
    };
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { run(7, 0); }), "even head dim, got 7");
    VKATTN_REQUIRE_CONTAINS(test::error_message([&] { run(8, (1u << 24) - 1); }), "past the supported 2^24");
}
