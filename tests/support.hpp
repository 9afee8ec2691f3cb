// Shared pieces of the test suite: one GPU context per process, seeded data, and comparisons.
#pragma once

#include "catch.hpp"

#include <vkattn/context.hpp>
#include <vkattn/error.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::test {

// The process-wide GPU context, created on first use with the validation layer as VKATTN_VALIDATION says.
Context& gpu();
// Destroys it; main() calls this before checking that no validation message was seen.
void release_gpu();

// Deterministic values uniform in [lo, hi) from a seed (splitmix64), the same on every platform.
std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// A seed derived from a test's name and its parameters, so each case has its own fixed data.
uint64_t seed_of(const std::string& text);

// Result of comparing got against ref with |got − ref| <= atol + rtol·|ref| (llm.c's validate_result).
struct Comparison {
    bool ok = true;
    size_t bad = 0;
    size_t worst_index = 0;
    double max_abs = 0;
    double max_rel = 0;
    float worst_got = 0, worst_ref = 0;
    std::string describe() const;
};
Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, double atol, double rtol);

// The message of the vkattn::Error that fn throws, or "" when it throws none (other exceptions propagate).
template <typename F>
std::string error_of(F&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return {};
}

// The same, failing the test when nothing is thrown.
template <typename F>
std::string error_message(F&& fn) {
    std::string message = error_of(fn);
    if (message.empty()) FAIL("expected a vkattn::Error, but nothing was thrown");
    return message;
}

// A fresh directory under the system temp dir, removed with everything in it when the test ends.
class TempDir {
public:
    explicit TempDir(std::string_view tag = "test");
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    // Writes contents to a file in the directory and returns its path.
    std::filesystem::path write(const std::string& name, const std::string& contents) const;

private:
    std::filesystem::path path_;
};

}  // namespace vkattn::test

// Checks that `text` contains `part`, printing both when it does not.
#define VKATTN_REQUIRE_CONTAINS(text, part)                                   \
    do {                                                                       \
        const std::string vkattn_text_ = (text);                               \
        INFO("message: " << vkattn_text_);                                     \
        REQUIRE(vkattn_text_.find(part) != std::string::npos);                 \
    } while (0)
