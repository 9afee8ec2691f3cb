// .npy reading and writing: round trips, hand-written headers as other writers produce them, and every
// way a file can be refused.
#include "catch.hpp"
#include "support.hpp"

#include "cpu/half.hpp"
#include "vkattn/error.hpp"
#include "vkattn/npy.hpp"

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using vkattn::NpyArray;
using vkattn::NpyDtype;
using vkattn::read_npy;
using vkattn::write_npy;

namespace {

using vkattn::test::error_of;
using vkattn::test::TempDir;

bool has(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }

std::string file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

// A .npy file with this header text and data, unpadded, as a careless writer could produce.
std::string npy_bytes(const std::string& header, const std::string& data, int major = 1, int minor = 0) {
    std::string out = "\x93NUMPY";
    out += char(major);
    out += char(minor);
    const size_t len_bytes = major == 1 ? 2 : 4;
    for (size_t b = 0; b < len_bytes; ++b) out += char((header.size() >> (8 * b)) & 0xff);
    return out + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
    std::string out;
    for (float v : values) {
        const uint32_t bits = std::bit_cast<uint32_t>(v);
        for (int b = 0; b < 4; ++b) out += char((bits >> (8 * b)) & 0xff);
    }
    return out;
}

}  // namespace

TEST_CASE("npy round trip", "[cpu][npy]") {
    TempDir dir;
    const std::vector<int64_t> shape = GENERATE(std::vector<int64_t>{}, std::vector<int64_t>{3}, std::vector<int64_t>{2, 3},
                                                std::vector<int64_t>{2, 1, 5}, std::vector<int64_t>{0, 4});
    const NpyDtype dtype = GENERATE(NpyDtype::f32, NpyDtype::f16);
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    std::vector<float> values(static_cast<size_t>(numel));
    for (size_t i = 0; i < values.size(); ++i) values[i] = (float(i) - 2.0f) / 3.0f;  // thirds: rounding shows
    INFO("rank " << shape.size() << " f16 " << (dtype == NpyDtype::f16));

    write_npy(dir / "a.npy", shape, values, dtype);
    const std::string bytes = file_bytes(dir / "a.npy");
    const size_t header_len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    CHECK((10 + header_len) % 64 == 0);  // numpy's data alignment
    CHECK(bytes[10 + header_len - 1] == '\n');
    CHECK(bytes.size() == 10 + header_len + values.size() * (dtype == NpyDtype::f32 ? 4 : 2));

    const NpyArray a = read_npy(dir / "a.npy");
    CHECK(a.shape == shape);
    CHECK(a.dtype == dtype);
    CHECK(a.numel() == numel);
    REQUIRE(a.data.size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        // f16 storage rounds to nearest even: within 2^-11 relative for these normal-range values.
        const float want = dtype == NpyDtype::f32 ? values[i] : vkattn::cpu::half_to_float(vkattn::cpu::float_to_half(values[i]));
        CHECK(a.data[i] == want);
        CHECK(std::abs(a.data[i] - values[i]) <= std::abs(values[i]) / 2048);
    }
}

TEST_CASE("npy writes the header numpy writes", "[cpu][npy]") {
    TempDir dir;
    const std::vector<int64_t> shape{3};
    const std::vector<float> values{1.0f, -2.0f, 0.5f};
    write_npy(dir / "v.npy", shape, values);
    const std::string bytes = file_bytes(dir / "v.npy");
    CHECK(bytes.substr(10, 60) == "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }   ");
    CHECK(bytes.substr(bytes.size() - 12) == f32_bytes(values));
}

TEST_CASE("npy reads headers in any reasonable spelling", "[cpu][npy]") {
    TempDir dir;
    const std::string data = f32_bytes({1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f});
    const auto read_header = [&](const std::string& header, int major = 1) {
        write_bytes(dir / "h.npy", npy_bytes(header, data, major));
        return read_npy(dir / "h.npy");
    };
    const std::vector<int64_t> shape23{2, 3};
    CHECK(read_header("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}").shape == shape23);
    CHECK(read_header("{ \"descr\" : \"<f4\" ,\"fortran_order\":False,\"shape\":(2,3,) , }\n").shape == shape23);
    CHECK(read_header("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}      \n").shape == shape23);
    CHECK(read_header("{'descr': '=f4', 'fortran_order': False, 'shape': (6L,), }").shape == std::vector<int64_t>{6});
    CHECK(read_header("{'descr': '|f4', 'fortran_order': False, 'shape': (3, 2), }").data[5] == -8.5f);
    CHECK(read_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 2).data[2] == 3.25f);
    CHECK(read_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 6), }", 3).shape == std::vector<int64_t>{1, 6});

    // f16: 1.0, -2.0, 65504 (largest finite), 2^-24 (smallest subnormal), widened exactly.
    write_bytes(dir / "half.npy", npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
                                            std::string("\x00\x3c\x00\xc0\xff\x7b\x01\x00", 8)));
    const NpyArray h = read_npy(dir / "half.npy");
    CHECK(h.dtype == NpyDtype::f16);
    CHECK(h.data == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});

    write_bytes(dir / "scalar.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32_bytes({4.0f})));
    const NpyArray s = read_npy(dir / "scalar.npy");
    CHECK(s.shape.empty());
    CHECK(s.data == std::vector<float>{4.0f});
}

TEST_CASE("npy refuses what it cannot read", "[cpu][npy]") {
    TempDir dir;
    const std::string ok_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    const std::string two = f32_bytes({1.0f, 2.0f});
    const auto error_for = [&](const std::string& bytes) {
        write_bytes(dir / "bad.npy", bytes);
        return error_of([&] { read_npy(dir / "bad.npy"); });
    };

    SECTION("missing file") {
        const std::string e = error_of([&] { read_npy(dir / "absent.npy"); });
        CHECK(has(e, "absent.npy"));
        CHECK(has(e, "no such file"));
    }
    SECTION("bad magic") {
        const std::string e = error_for("PK\x03\x04 not numpy at all");
        CHECK(has(e, "bad.npy"));
        CHECK(has(e, "does not start with the magic"));
        CHECK(has(error_for(""), "does not start with the magic"));
    }
    SECTION("unsupported version") {
        CHECK(has(error_for(npy_bytes(ok_header, two, 4)), "unsupported .npy format version 4.0"));
        CHECK(has(error_for(npy_bytes(ok_header, two, 1, 1)), "version 1.1"));
    }
    SECTION("truncated preamble or header") {
        CHECK(has(error_for(std::string("\x93NUMPY\x02\x00\x10", 9)), "ends inside the header length"));
        CHECK(has(error_for(npy_bytes(ok_header, "").substr(0, 30)), "runs past the end of the file"));
    }
    SECTION("header parse failures") {
        CHECK(has(error_for(npy_bytes("not a dict", two)), "cannot parse the .npy header: expected '{'"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False", two)), "expected ',' or '}'"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'shape': (2,)}", two)), "no 'fortran_order' key"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False}", two)), "no 'shape' key"));
        CHECK(has(error_for(npy_bytes("{'fortran_order': False, 'shape': (2,)}", two)), "no 'descr' key"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", two)), "expected True or False"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", two)), "negative dimension"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two)), "unexpected key 'x'"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", two)), "appears twice"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", two)), "after the closing '}'"));
        CHECK(has(error_for(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", two)), "structured dtypes"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", two)), "overflows"));
    }
    SECTION("fortran order") {
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", two)),
                  "fortran_order is True; only C-order arrays are supported"));
    }
    SECTION("big-endian and other dtypes") {
        const std::string big = error_for(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", two));
        CHECK(has(big, "dtype '>f4' is big-endian"));
        CHECK(has(big, "supported dtypes are '<f4' (float32) and '<f2' (float16)"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", two)),
                  "dtype '<f8' is not supported; supported dtypes are '<f4'"));
        CHECK(has(error_for(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", two)), "dtype '<i4' is not supported"));
        CHECK(has(error_for(npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (8,)}", two)), "dtype '|u1' is not supported"));
    }
    SECTION("data shorter or longer than the shape") {
        CHECK(has(error_for(npy_bytes(ok_header, two.substr(0, 6))),
                  "holds 6 bytes of data but shape (2,) of '<f4' needs 8 (file truncated)"));
        CHECK(has(error_for(npy_bytes(ok_header, two + "xy")), "holds 10 bytes of data but shape (2,) of '<f4' needs 8 (trailing bytes)"));
        CHECK(has(error_for(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4),}", two)),
                  "is too large"));
    }
    SECTION("writing a shape that does not match the data") {
        const std::vector<int64_t> shape{2, 3};
        const std::vector<float> five(5, 1.0f);
        const std::string e = error_of([&] { write_npy(dir / "w.npy", shape, five); });
        CHECK(has(e, "w.npy"));
        CHECK(has(e, "cannot write shape (2, 3): it needs 6 values, got 5"));
        const std::vector<int64_t> negative{-1};
        CHECK(has(error_of([&] { write_npy(dir / "w.npy", negative, five); }), "dimensions must be non-negative"));
        CHECK(has(error_of([&] { write_npy(dir / "no-such-dir" / "w.npy", shape, std::vector<float>(6)); }), "cannot open for writing"));
    }
}
