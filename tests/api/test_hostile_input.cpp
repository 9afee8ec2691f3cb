// Hostile input at the library's boundary (issue 9): one validation shared by every backend, files that are not
// regular files, JSON nested 100,000 deep, and messages that stay one short line whatever the input holds.
#include "catch.hpp"
#include "support.hpp"

#include "model/safetensors.hpp"
#include "model/safetensors_writer.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace vkattn;
using vkattn::test::error_message;
using vkattn::test::error_of;
using vkattn::test::TempDir;

namespace {

constexpr size_t kMaxMessage = 400;  // every message here stays a short line, whatever the input held

bool one_short_line(const std::string& m) {
    if (m.empty() || m.size() > kMaxMessage) return false;
    for (unsigned char c : m) {
        if (c < 0x20) return false;
    }
    return true;
}

std::string shape_error(std::vector<int64_t> q, std::vector<int64_t> k, std::vector<int64_t> v) {
    return error_message([&] { check_attention_shapes(q, k, v, {"Q (q.npy)", "K (k.npy)", "V (v.npy)"}); });
}

// Calls fn, which must throw Error quickly. Before the fix a FIFO blocked open() or read() forever; a writer
// opened after `grace` unblocks it so that the old behaviour fails this test instead of hanging it.
template <class Fn>
std::string error_without_blocking(const std::filesystem::path& fifo, Fn fn) {
    const auto start = std::chrono::steady_clock::now();
    std::atomic<bool> done{false};
    std::thread unblock([&] {
        for (int i = 0; i < 40 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (done) return;
        const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // never blocks: ENXIO without a reader
        if (fd >= 0) {
            [[maybe_unused]] const ssize_t n = ::write(fd, "garbage", 7);
            ::close(fd);
        }
    });
    std::string message;
    try {
        fn();
    } catch (const Error& e) {
        message = e.what();
    }
    done = true;
    unblock.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO("message: " << message);
    CHECK(seconds < 1.5);
    return message;
}

std::string nested_array(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("check_attention_shapes compares every dimension of K and V with Q", "[cpu][hostile]") {
    SECTION("Q [1, 2, 4, 64] with K and V [2, 2, 4, 32] (issue 9 bug 3)") {
        const std::string e = shape_error({1, 2, 4, 64}, {2, 2, 4, 32}, {2, 2, 4, 32});
        VKATTN_REQUIRE_CONTAINS(e, "K (k.npy) has batch 2 but Q (q.npy) has batch 1");
    }
    SECTION("head dim") {
        VKATTN_REQUIRE_CONTAINS(shape_error({2, 4, 64}, {2, 4, 32}, {2, 4, 32}), "K (k.npy) has head dim 32 but Q (q.npy) has head dim 64");
    }
    SECTION("heads that do not divide") {
        VKATTN_REQUIRE_CONTAINS(shape_error({1, 4, 8, 64}, {1, 3, 8, 64}, {1, 3, 8, 64}), "K (k.npy) has 3 heads");
    }
    SECTION("V differs from K in each dimension, named") {
        VKATTN_REQUIRE_CONTAINS(shape_error({2, 4, 8, 64}, {2, 2, 8, 64}, {1, 2, 8, 64}),
                                "V (v.npy) has shape [1, 2, 8, 64] but K (k.npy) has shape [2, 2, 8, 64]: the batch differs");
        VKATTN_REQUIRE_CONTAINS(shape_error({2, 4, 8, 64}, {2, 2, 8, 64}, {2, 4, 8, 64}), "the head count differs");
        VKATTN_REQUIRE_CONTAINS(shape_error({2, 4, 8, 64}, {2, 2, 8, 64}, {2, 2, 9, 64}), "the length differs");
        VKATTN_REQUIRE_CONTAINS(shape_error({2, 4, 8, 64}, {2, 2, 8, 64}, {2, 2, 8, 32}), "the head dim differs");
    }
    SECTION("ranks, empty and overflowing dimensions are shown as given") {
        VKATTN_REQUIRE_CONTAINS(shape_error({64}, {2, 4, 64}, {2, 4, 64}), "Q (q.npy) must be [B, heads, L, D]");
        VKATTN_REQUIRE_CONTAINS(shape_error({1, 4294967297, 0, 32}, {1, 1, 4, 32}, {1, 1, 4, 32}),
                                "[1, 4294967297, 0, 32]");
        VKATTN_REQUIRE_CONTAINS(shape_error({1, 1, 4, 32}, {1, 1, int64_t(1) << 31, 32}, {1, 1, 4, 32}), "2147483647");
    }
    SECTION("3-D inputs are batch 1, and good shapes pass") {
        CHECK(error_of([] { check_attention_shapes(std::vector<int64_t>{4, 8, 64}, std::vector<int64_t>{1, 2, 5, 64},
                                                   std::vector<int64_t>{2, 5, 64}); })
                  .empty());
    }
}

TEST_CASE("the CPU reference refuses exactly what attention() refuses (issue 9 bug 6)", "[cpu][hostile]") {
    const reference::AttentionShape s{1, 2, 2, 3, 3, 32};
    const std::vector<float> q(2 * 3 * 32, 0.5f), k = q, v = q;
    const auto ref_error = [&](reference::AttentionOptions o) {
        return error_message([&] { reference::attention(s, q, k, v, o); });
    };
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (float scale : {nan, inf, -inf, -1.0f}) {
        INFO("scale " << scale);
        VKATTN_REQUIRE_CONTAINS(ref_error({.scale = scale}), "scale must be positive and finite");
        VKATTN_REQUIRE_CONTAINS(error_message([&] { check_attention_options(scale, 0); }), "scale");
    }
    VKATTN_REQUIRE_CONTAINS(ref_error({.window = -3}), "window must be >= 0");
    CHECK(error_of([&] { reference::attention(s, q, k, v, {.scale = 0.25f, .window = 2}); }).empty());

    SECTION("a bad shape names the dimension instead of 'invalid shape'") {
        const reference::AttentionShape bad{1, 3, 2, 3, 3, 32};
        const std::string e = error_message([&] { reference::attention(bad, q, k, v); });
        VKATTN_REQUIRE_CONTAINS(e, "2 heads, which does not divide the 3 query heads");
        CHECK(e.find("invalid shape") == std::string::npos);
    }
}

TEST_CASE("attention() on the device refuses a negative scale instead of using the default", "[gpu][hostile]") {
    Context& ctx = test::gpu();
    Tensor q(ctx, {1, 2, 4, 32}), k(ctx, {1, 2, 4, 32}), v(ctx, {1, 2, 4, 32}), o(ctx, {1, 2, 4, 32});
    for (float scale : {-1.0f, std::numeric_limits<float>::quiet_NaN()}) {
        VKATTN_REQUIRE_CONTAINS(error_message([&] { attention(ctx, q, k, v, o, {.scale = scale}); }),
                                "scale must be positive and finite");
    }
}

TEST_CASE("check_attention_fits refuses shapes the device cannot hold, before allocating (issue 9 bug 8)",
          "[gpu][hostile]") {
    Context& ctx = test::gpu();
    const std::vector<int64_t> q{1, 4096, 1, 32}, k{1, 4096, 65536, 32};  // K and V: 32 GiB each in f32
    const std::string e = error_message([&] { check_attention_fits(ctx, q, k, DType::f32); });
    VKATTN_REQUIRE_CONTAINS(e, "K [1, 4096, 65536, 32] f32 needs 32 GiB (34359738368 bytes)");
    CHECK(one_short_line(e));
    const std::vector<int64_t> small{1, 2, 64, 32};
    CHECK(error_of([&] { check_attention_fits(ctx, small, small, DType::f32, AttentionImpl::naive); }).empty());
    const std::vector<int64_t> long_q{1, 64, 65536, 32};  // fits fused, but not 1.1 TB of naive scores
    VKATTN_REQUIRE_CONTAINS(error_message([&] { check_attention_fits(ctx, long_q, long_q, DType::f16, AttentionImpl::naive); }),
                            "scores");
}

TEST_CASE("parsers refuse FIFOs instead of blocking (issue 9 bug 2)", "[cpu][hostile]") {
    TempDir dir("fifo");
    const auto fifo = dir / "pipe";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    VKATTN_REQUIRE_CONTAINS(error_without_blocking(fifo, [&] { read_npy(fifo); }), "is a FIFO");
    VKATTN_REQUIRE_CONTAINS(error_without_blocking(fifo, [&] { model::SafetensorsFile::open(fifo); }), "is a FIFO");
    VKATTN_REQUIRE_CONTAINS(error_without_blocking(fifo, [&] { model::read_safetensors_index(fifo); }), "is a FIFO");
    VKATTN_REQUIRE_CONTAINS(error_message([&] { read_npy(dir.path()); }), "is a directory");
    VKATTN_REQUIRE_CONTAINS(error_message([&] { model::read_safetensors_index(dir.path()); }), "is a directory");
}

TEST_CASE("JSON nested 100,000 levels deep is refused without a crash (issue 9 bug 1)", "[cpu][hostile]") {
    TempDir dir("nested");
    const std::string deep = nested_array(100000);
    const auto st = dir / "model.safetensors";
    const auto open_error = [&](const std::string& header) {
        test::write_bytes(st, test::st_raw(header));
        return error_message([&] { model::SafetensorsFile::open(st); });
    };
    for (const std::string& header :
         {R"({"x": {"dtype": "F32", "shape": )" + deep + R"(, "data_offsets": [0, 0]}})",
          R"({"x": {"dtype": )" + deep + R"(, "shape": [1], "data_offsets": [0, 4]}})",
          R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": )" + deep + "}}", R"({"x": )" + deep + "}", deep}) {
        const std::string e = open_error(header);
        INFO(e.substr(0, 300));
        CHECK(one_short_line(e));
    }
    const auto index = dir / "model.safetensors.index.json";
    for (const std::string& text : {R"({"weight_map": {"wte.weight": )" + deep + "}}", R"({"weight_map": )" + deep + "}", deep}) {
        test::write_bytes(index, text);
        const std::string e = error_message([&] { model::read_safetensors_index(index); });
        INFO(e.substr(0, 300));
        CHECK(one_short_line(e));
    }
}

TEST_CASE("messages stay one short line whatever the file holds (issue 9 bug 11)", "[cpu][hostile]") {
    TempDir dir("messages");
    SECTION("a 100 kB tensor name, an invalid header, a long dtype") {
        const auto st = dir / "model.safetensors";
        const std::string name(100000, 'n');
        for (const std::string& header : {"{\"" + name + R"(": 3})", R"({"x": {"dtype": ")" + name + R"(", "shape": [1]}})",
                                          std::string(R"({"x": {"dtype": "F32", )") + name, std::string("{\"\x01\x02\": 3}")}) {
            test::write_bytes(st, test::st_raw(header));
            const std::string e = error_message([&] { model::SafetensorsFile::open(st); });
            INFO(e.substr(0, 300));
            CHECK(one_short_line(e));
            CHECK(e.find("json.exception") == std::string::npos);
        }
    }
    SECTION("a .npy header with control characters and padding") {
        const auto path = dir / "bad.npy";
        std::string header = "{'descr': '<f4\x01\x1b[31m', 'fortran_order': False, 'shape': (2,), }";
        header += std::string(60000, ' ') + "\n";
        std::string bytes = "\x93NUMPY\x01";
        bytes += '\0';
        bytes += char(header.size() & 0xff);
        bytes += char(header.size() >> 8);
        test::write_bytes(path, bytes + header + std::string(8, '\0'));
        const std::string e = error_message([&] { read_npy(path); });
        INFO(e.substr(0, 300));
        CHECK(one_short_line(e));
        VKATTN_REQUIRE_CONTAINS(e, "\\x01");
    }
    SECTION("a .npy header that does not parse shows a short escaped prefix") {
        const auto path = dir / "bad.npy";
        const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x\x07': " +
                                   std::string(50000, 'y') + "}\n";
        std::string bytes = "\x93NUMPY\x01";
        bytes += '\0';
        bytes += char(header.size() & 0xff);
        bytes += char(header.size() >> 8);
        test::write_bytes(path, bytes + header);
        const std::string e = error_message([&] { read_npy(path); });
        INFO(e.substr(0, 300));
        CHECK(one_short_line(e));
    }
    SECTION("an index with a long or odd shard name") {
        const auto index = dir / "model.safetensors.index.json";
        test::write_bytes(index, R"({"weight_map": {"w": ")" + std::string(100000, 'a') + "/b\"}}");
        CHECK(one_short_line(error_message([&] { model::read_safetensors_index(index); })));
        test::write_bytes(index, R"({"weight_map": {"w": 3)");
        const std::string e = error_message([&] { model::read_safetensors_index(index); });
        CHECK(one_short_line(e));
        CHECK(e.find("json.exception") == std::string::npos);
    }
}
