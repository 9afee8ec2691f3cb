// Shared by the libFuzzer harnesses (one per parser, each a tiny file calling one entry point): the per-case
// assertion and a structured mutator on top of libFuzzer's byte mutations.
//
// Every case must end in a sane result or a vkattn::Error whose message is one line under kMaxMessage bytes;
// any other exception, a crash, a sanitizer report or a timeout fails the run.
#pragma once

#include <vkattn/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <unistd.h>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace vkattn::fuzz {

constexpr size_t kMaxMessage = 600;  // includes the scratch file's path

[[noreturn]] inline void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "FUZZ FAILURE: %s: %.*s\n", what, int(std::min<size_t>(detail.size(), 2000)), detail.data());
    std::abort();
}

inline void check(bool ok, const char* what) {
    if (!ok) fail("result check", what);
}

// Runs fn and applies the contract to what it throws.
template <class Fn>
void expect_clean(Fn&& fn) {
    try {
        fn();
    } catch (const vkattn::Error& e) {
        const std::string_view m = e.what();
        if (m.empty()) fail("empty vkattn::Error message", m);
        if (m.size() > kMaxMessage) fail("vkattn::Error message over the length cap", m);
        for (unsigned char c : m) {
            if (c < 0x20 || c == 0x7f) fail("vkattn::Error message with a control character or a second line", m);
        }
    } catch (const std::exception& e) {
        fail("exception that is not a vkattn::Error", e.what());
    } catch (...) {
        fail("unknown exception", "");
    }
}

// A scratch directory per process, under TMPDIR (libFuzzer runs each target in one process).
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        auto d = std::filesystem::path(tmp ? tmp : "/tmp") / ("vkattn-fuzz-" + std::to_string(getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

inline std::filesystem::path write_file(const std::string& name, const uint8_t* data, size_t size) {
    const auto path = scratch_dir() / name;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
    return path;
}

// Structured edits a byte mutator rarely finds: nesting thousands deep, extreme numbers, long strings,
// control characters and invalid UTF-8, tokens of the format, repeated slices. Half the time libFuzzer's own
// mutations (bit and byte flips, insertions, crossover) run instead.
inline size_t structured_mutate(uint8_t* data, size_t size, size_t max_size, unsigned seed,
                                std::initializer_list<std::string_view> tokens) {
    std::mt19937 rng(seed);
    const auto pick = [&](size_t n) { return n == 0 ? size_t(0) : size_t(rng() % n); };
    if (rng() % 2 == 0 || size == 0) return LLVMFuzzerMutate(data, size, max_size);
    std::string s(reinterpret_cast<const char*>(data), size);
    const size_t at = pick(s.size() + 1);
    static const std::string_view extremes[] = {"-1", "0", "4294967297", "18446744073709551616", "9223372036854775807",
                                                "1e309", "-0", "2.5", "1e-400", "99999999999999999999999", "NaN"};
    static const std::string_view oddities[] = {"\x01", "\x1b[31m", "\xff\xfe", "\xc3", "\xed\xa0\x80", "\\u0000",
                                                "\\ud800", "\n", "\r\n", "\t", std::string_view("\0", 1)};
    switch (rng() % 7) {
        case 0: {  // deep nesting
            const size_t depth = 1 + pick(std::min<size_t>(max_size / 2, 3000));
            const char open = rng() % 2 ? '[' : '{';
            std::string nest(depth, open);
            if (open == '[') nest += std::string(depth, ']');
            s.insert(at, nest);
            break;
        }
        case 1: {  // an extreme number in place of a run of digits, or inserted
            size_t b = at;
            while (b < s.size() && !(s[b] >= '0' && s[b] <= '9')) ++b;
            size_t e = b;
            while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
            s.replace(std::min(b, s.size()), e - std::min(b, s.size()), extremes[pick(std::size(extremes))]);
            break;
        }
        case 2: s.insert(at, std::string(1 + pick(2000), "aZ\"\\/ "[pick(6)])); break;  // a long run
        case 3: s.insert(at, oddities[pick(std::size(oddities))]); break;
        case 4:
            if (tokens.size() != 0) s.insert(at, *(tokens.begin() + pick(tokens.size())));
            break;
        case 5: {  // repeat a slice
            const size_t len = 1 + pick(std::min<size_t>(64, s.size() - std::min(at, s.size()) + 1));
            const std::string slice = s.substr(std::min(at, s.size()), len);
            for (size_t i = 0, n = 1 + pick(50); i < n; ++i) s.insert(at, slice);
            break;
        }
        default:  // drop a slice
            s.erase(std::min(at, s.size()), pick(64));
            break;
    }
    if (s.size() > max_size) s.resize(max_size);
    std::memcpy(data, s.data(), s.size());
    return s.size();
}

}  // namespace vkattn::fuzz
