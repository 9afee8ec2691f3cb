// Safetensors reader: round trips per dtype and one test per way a file can be malformed.
#include "catch.hpp"

#include "model/safetensors.hpp"
#include "model/safetensors_writer.hpp"

#include <cmath>
#include <string>
#include <vector>

using vkattn::model::SafetensorsFile;
using vkattn::model::TensorInfo;
using namespace vkattn::test;

namespace {

// Awkward values: signs, non-representable fractions, large and small magnitudes, exact zeros.
std::vector<float> sample_values(size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) {
        const float base = float(i % 7) / 3.0f - 1.0f;  // thirds: never exact in binary
        v[i] = base * std::pow(10.0f, float(int(i % 9) - 4));
    }
    return v;
}

// The open error for a file holding exactly these bytes.
std::string open_error(const TempDir& dir, const std::string& bytes) {
    const auto path = dir / "bad.safetensors";
    write_bytes(path, bytes);
    return error_of([&] { SafetensorsFile::open(path); });
}

bool has(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("safetensors round trip per dtype", "[cpu][safetensors]") {
    TempDir dir("st-roundtrip");
    const std::vector<float> values = sample_values(2 * 3 * 5);
    const StDtype dtype = GENERATE(StDtype::f32, StDtype::f16, StDtype::bf16);
    INFO("dtype " << st_dtype_name(dtype));
    write_safetensors(dir / "t.safetensors", {{"x", dtype, {2, 3, 5}, values}, {"scalar", dtype, {}, {2.5f}}},
                      {{"format", "pt"}, {"note", "ignored"}});

    const SafetensorsFile file = SafetensorsFile::open(dir / "t.safetensors");
    CHECK(file.names() == std::vector<std::string>{"scalar", "x"});
    const TensorInfo* info = file.find("x");
    REQUIRE(info != nullptr);
    CHECK(info->dtype == st_dtype_name(dtype));
    CHECK(info->shape == std::vector<int64_t>{2, 3, 5});
    CHECK(info->numel() == 30);
    CHECK(info->data.size() == 30 * (dtype == StDtype::f32 ? 4u : 2u));

    const std::vector<float> got = file.read_f32("x");
    REQUIRE(got.size() == values.size());
    // Bitwise equal to one round to nearest even, and so within half an ulp: 2^-11 relative for F16
    // (11-bit significand; these values stay in its normal range), 2^-8 for BF16 (8-bit), exact for F32.
    const float rel = dtype == StDtype::f32 ? 0.0f : dtype == StDtype::f16 ? 1.0f / 2048 : 1.0f / 256;
    for (size_t i = 0; i < values.size(); ++i) {
        INFO("i " << i << " stored " << values[i] << " read " << got[i]);
        CHECK(got[i] == st_round(dtype, values[i]));
        CHECK(std::abs(got[i] - values[i]) <= rel * std::abs(values[i]));
    }
    CHECK(file.read_f32("scalar") == std::vector<float>{2.5f});
    CHECK(file.find("__metadata__") == nullptr);
    CHECK(file.find("y") == nullptr);
}

TEST_CASE("safetensors zero-size tensors, other dtypes and moves", "[cpu][safetensors]") {
    TempDir dir("st-misc");
    const std::string header =
        R"({"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},)"
        R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"__metadata__":{"any":{"nested":[1,2]}}})";
    write_bytes(dir / "m.safetensors", st_raw(header, std::string(16 + 3, '\0')));  // 3 unused bytes at the end

    SafetensorsFile file = SafetensorsFile::open(dir / "m.safetensors");
    CHECK(file.names() == std::vector<std::string>{"empty", "ids"});
    CHECK(file.read_f32("empty").empty());
    CHECK(file.find("ids")->numel() == 2);
    const std::string e = error_of([&] { file.read_f32("ids"); });
    CHECK(has(e, "dtype I64"));
    CHECK(has(e, "only F32, F16 and BF16"));
    CHECK(has(error_of([&] { file.read_f32("nope"); }), "no tensor named 'nope'"));

    const SafetensorsFile moved = std::move(file);
    REQUIRE(moved.find("ids") != nullptr);
    CHECK(moved.find("ids")->data.size() == 16);
    CHECK(moved.path() == dir / "m.safetensors");
}

TEST_CASE("safetensors rejects malformed files", "[cpu][safetensors]") {
    TempDir dir("st-bad");
    const std::string f32x2 = R"("dtype":"F32","shape":[2])";

    SECTION("missing file") {
        const std::string e = error_of([&] { SafetensorsFile::open(dir / "absent.safetensors"); });
        CHECK(has(e, "absent.safetensors"));
        CHECK(has(e, "no such file"));
    }
    SECTION("a directory") { CHECK(has(error_of([&] { SafetensorsFile::open(dir.path()); }), "is a directory")); }
    SECTION("shorter than 8 bytes") {
        const std::string e = open_error(dir, "abcde");
        CHECK(has(e, "bad.safetensors"));
        CHECK(has(e, "is 5 bytes, shorter than the 8-byte header length"));
        CHECK(has(open_error(dir, ""), "is 0 bytes"));
    }
    SECTION("header length past the end") {
        CHECK(has(open_error(dir, st_raw("{}", "", 1000)), "header length 1000 runs past the end of the file (10 bytes)"));
        CHECK(has(open_error(dir, st_raw("{}", "", ~uint64_t(0))), "runs past the end"));
    }
    SECTION("invalid JSON") { CHECK(has(open_error(dir, st_raw(R"({"x": {"dtype": )")), "header is not valid JSON")); }
    SECTION("header not an object") {
        CHECK(has(open_error(dir, st_raw("[1, 2]")), "header is a JSON array, expected an object"));
    }
    SECTION("entry not an object") {
        CHECK(has(open_error(dir, st_raw(R"({"x": 3})")), "tensor 'x' is a JSON number, expected an object"));
    }
    SECTION("entry missing a field") {
        CHECK(has(open_error(dir, st_raw(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "tensor 'x' has no 'dtype'"));
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "tensor 'x' has no 'shape'"));
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F32","shape":[2]}})", std::string(8, '\0'))),
                  "tensor 'x' has no 'data_offsets'"));
    }
    SECTION("fields of the wrong type") {
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "non-string dtype"));
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "expected an array of non-negative integers"));
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "expected an array of non-negative integers"));
        CHECK(has(open_error(dir, st_raw("{\"x\":{" + f32x2 + ",\"data_offsets\":[0,4,8]}}", std::string(8, '\0'))),
                  "expected [begin, end]"));
    }
    SECTION("unknown dtype") {
        const std::string e = open_error(dir, st_raw(R"({"x":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')));
        CHECK(has(e, "unknown dtype 'Q4_K'"));
        CHECK(has(e, "BF16"));  // lists the known ones
    }
    SECTION("data_offsets past the data") {
        CHECK(has(open_error(dir, st_raw("{\"x\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", std::string(4, '\0'))),
                  "data_offsets [0, 8] past the end of the data section (4 bytes)"));
        CHECK(has(open_error(dir, st_raw("{\"x\":{" + f32x2 + ",\"data_offsets\":[18446744073709551615,8]}}")),
                  "begin after end"));
    }
    SECTION("begin after end") {
        CHECK(has(open_error(dir, st_raw("{\"x\":{" + f32x2 + ",\"data_offsets\":[8,0]}}", std::string(8, '\0'))),
                  "data_offsets [8, 0] with begin after end"));
    }
    SECTION("overlapping ranges") {
        const std::string header = "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[4,12]}}";
        CHECK(has(open_error(dir, st_raw(header, std::string(12, '\0'))), "tensors 'a' and 'b' have overlapping data_offsets"));
    }
    SECTION("shape and byte length disagree") {
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "tensor 'x' of dtype F16 and shape [3] needs 6 bytes, but its data_offsets [0, 8] span 8"));
        CHECK(has(open_error(dir, st_raw(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                         std::string(8, '\0'))),
                  "too large to address"));
    }
}
