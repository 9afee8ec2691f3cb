// top_k (the sampler's candidates selected on the device) against cpu::top_k, which the first case checks by
// hand: vocabularies from 1 to Qwen2's 151,936, k from 1 to kTopKMax (and above what is left), skip lists,
// ties across the threshold, -0 and +0, infinities, NaNs, rows at unaligned offsets, and the refusals.
#include "catch.hpp"
#include "cpu/top_k.hpp"
#include "ops/runtime.hpp"
#include "ops/top_k.hpp"
#include "support.hpp"

#include <vkattn/tensor.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace vkattn;
using vkattn::test::error_message;
using vkattn::test::random_values;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<uint32_t> bits(const std::vector<float>& v) {
    std::vector<uint32_t> b;
    for (const float f : v) b.push_back(std::bit_cast<uint32_t>(f));
    return b;
}

// Runs the kernel on row `row` of rows [rows, V] and compares it with the reference, bit for bit.
void check_top_k(const std::string& name, const std::vector<float>& rows_data, uint32_t V, uint32_t row,
                 const std::vector<int>& skip, uint32_t k) {
    INFO(name << ": V " << V << " row " << row << " k " << k << " skip " << skip.size());
    Context& ctx = test::gpu();
    const std::span<const float> x(rows_data.data() + size_t(row) * V, V);
    const cpu::TopK want = cpu::top_k(x, skip, int(k));

    Tensor tx(ctx, {int64_t(rows_data.size())}, rows_data);
    Tensor tskip(ctx, {int64_t(std::max<size_t>(1, skip.size()))});
    const uint64_t words = ops::top_k_words(k, uint32_t(skip.size()));
    Tensor tout(ctx, {int64_t(words)});
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_top_k(enc, ops::buffer(tx), uint64_t(row) * V, V, skip, ops::buffer(tskip), k, ops::buffer(tout));
    });
    const std::vector<float> out = tout.download();
    const std::vector<uint32_t> out_words = bits(out);
    const ops::TopKResult got = ops::read_top_k(out_words, k, uint32_t(skip.size()));
    CHECK(got.first_nan == want.first_nan);
    CHECK(got.ids == want.ids);
    CHECK(bits(got.values) == bits(want.values));
    CHECK(bits(got.skipped) == bits(want.skipped));
}

}  // namespace

TEST_CASE("cpu::top_k of a hand-made row", "[cpu][top_k]") {
    //                         0     1    2     3     4    5     6    7
    const std::vector<float> x{1.0f, 3.0f, kNaN, 3.0f, -0.0f, 0.0f, 5.0f, kNaN};
    const cpu::TopK a = cpu::top_k(x, {}, 4);
    CHECK(a.ids == std::vector<int>{6, 1, 3, 0});  // 3 at ids 1 and 3: the lower id first
    CHECK(a.first_nan == 2);
    const cpu::TopK b = cpu::top_k(x, std::vector<int>{1, 6}, 3);
    CHECK(b.ids == std::vector<int>{3, 0, 4});  // -0 and +0 tie: the lower id
    CHECK(b.skipped == std::vector<float>{3.0f, 5.0f});
    const cpu::TopK c = cpu::top_k(x, std::vector<int>{0, 1, 3, 4, 5}, 8);
    CHECK(c.ids == std::vector<int>{6});  // fewer than k left: NaNs are never chosen
    CHECK(c.values == std::vector<float>{5.0f});
}

TEST_CASE("top_k matches the CPU reference on random rows", "[gpu][top_k]") {
    const uint32_t V = GENERATE(1u, 2u, 7u, 64u, 65u, 1000u, 50257u, 151936u);
    const uint32_t k = GENERATE(1u, 3u, 40u, 256u);
    const std::string name = "random V " + std::to_string(V) + " k " + std::to_string(k);
    check_top_k(name, random_values(V, test::seed_of(name), -10.0f, 10.0f), V, 0, {}, k);
}

TEST_CASE("top_k breaks ties by the lower id, across the threshold", "[gpu][top_k]") {
    // Eight levels over 5000 values: hundreds equal to the k-th largest, spread over every slice.
    const uint32_t V = 5000;
    std::vector<float> x = random_values(V, 11, 0.0f, 8.0f);
    for (float& v : x) v = std::floor(v);
    for (const uint32_t k : {1u, 40u, 256u}) check_top_k("eight levels", x, V, 0, {}, k);
    check_top_k("all equal", std::vector<float>(1000, 0.25f), 1000, 0, {}, 40);
    // -0 and +0 compare equal: they tie, the lower id first, and each keeps its sign.
    std::vector<float> zeros = random_values(300, 12, -1.0f, 1.0f);
    for (float& v : zeros) v = v < -0.5f ? -1.0f : v < 0.0f ? -0.0f : 0.0f;
    for (const uint32_t k : {1u, 10u}) check_top_k("signed zeros", zeros, 300, 0, {}, k);
}

TEST_CASE("top_k with infinities and NaNs", "[gpu][top_k]") {
    std::vector<float> x = random_values(2000, 13, -5.0f, 5.0f);
    x[10] = kInf;
    x[1999] = kInf;
    x[500] = -kInf;
    for (const uint32_t k : {1u, 5u}) {  // k = 1 takes the kernel's one-sweep path
        check_top_k("infinities", x, 2000, 0, {}, k);
        check_top_k("all -inf", std::vector<float>(100, -kInf), 100, 0, {}, k);
    }
    x[1234] = kNaN;
    x[77] = kNaN;
    for (const uint32_t k : {1u, 8u}) {
        check_top_k("NaNs", x, 2000, 0, {}, k);
        check_top_k("a NaN in the skip list comes first", x, 2000, 0, {3, 10, 77, 1500}, k);
        check_top_k("only NaNs", std::vector<float>(50, kNaN), 50, 0, {}, k);
    }
}

TEST_CASE("top_k leaves out the skip list and returns its values", "[gpu][top_k]") {
    const uint32_t V = 50257;
    std::vector<float> x = random_values(V, 14, -10.0f, 10.0f);
    // The row's 64 largest ids among the skipped: the selection must reach below them.
    const cpu::TopK top = cpu::top_k(x, {}, 64);
    std::vector<int> skip = top.ids;
    for (int i = 0; i < 64; ++i) skip.push_back(int((uint64_t(i) * 7919) % V));
    std::sort(skip.begin(), skip.end());
    skip.erase(std::unique(skip.begin(), skip.end()), skip.end());
    for (const uint32_t k : {1u, 40u, 256u}) check_top_k("top ids skipped", x, V, 0, skip, k);
    // Fewer left than k: all of them.
    std::vector<int> most;
    for (int i = 0; i < 20; ++i) {
        if (i != 4 && i != 13) most.push_back(i);
    }
    std::vector<int> all(20);
    for (int i = 0; i < 20; ++i) all[size_t(i)] = i;
    for (const uint32_t k : {1u, 5u}) {
        check_top_k("two left", random_values(20, 15), 20, 0, most, k);
        check_top_k("none left", random_values(20, 16), 20, 0, all, k);
    }
}

TEST_CASE("top_k of a row at an unaligned offset", "[gpu][top_k]") {
    const uint32_t V = 1001;
    const std::vector<float> rows = random_values(3 * V, 17, -3.0f, 3.0f);
    for (const uint32_t row : {1u, 2u}) {
        for (const uint32_t k : {1u, 40u}) check_top_k("row", rows, V, row, {5, 900}, k);
    }
}

TEST_CASE("top_k refuses k, skip lists and rows it cannot take", "[gpu][top_k]") {
    Context& ctx = test::gpu();
    Tensor tx(ctx, {100}, random_values(100, 18));
    Tensor tskip(ctx, {64}), tout(ctx, {1024});
    auto run = [&](std::vector<int> skip, uint32_t k) {
        ops::runtime(ctx).run([&](ops::Encoder& enc) {
            ops::record_top_k(enc, ops::buffer(tx), 0, 100, skip, ops::buffer(tskip), k, ops::buffer(tout));
        });
    };
    CHECK(error_message([&] { run({}, 0); }).find("k = 0 is outside [1, 256]") != std::string::npos);
    CHECK(error_message([&] { run({}, 257); }).find("k = 257 is outside [1, 256]") != std::string::npos);
    const std::string order = "the skipped ids must be ascending, distinct and in [0, V)";
    CHECK(error_message([&] { run({5, 3}, 4); }).find(order + "; entry 1 is 3") != std::string::npos);
    CHECK(error_message([&] { run({5, 5}, 4); }).find(order) != std::string::npos);
    CHECK(error_message([&] { run({100}, 4); }).find(order + "; entry 0 is 100") != std::string::npos);
    CHECK(error_message([&] { run({-1}, 4); }).find(order) != std::string::npos);
}
