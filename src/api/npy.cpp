// .npy reader and writer. Format: "\x93NUMPY", major, minor, a little-endian header length (2 bytes in
// 1.0, 4 in 2.0 and 3.0), an ASCII (3.0: UTF-8) Python dict literal padded with spaces to a multiple of
// 64 bytes and ending in '\n', then the raw C-order data.
#include "vkattn/npy.hpp"

#include "cpu/half.hpp"
#include "vkattn/error.hpp"

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#if defined(__unix__) || defined(__APPLE__)
#define VKATTN_NPY_POSIX 1
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace vkattn {
namespace {

constexpr std::string_view k_magic = "\x93NUMPY";
constexpr size_t k_align = 64;  // numpy aligns the data to 64 bytes so it can be memory-mapped

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
    throw Error(path.string() + ": " + what);
}

// Header text for a message: a short prefix without the padding, quoted, control and non-ASCII bytes as \xNN.
std::string short_quote(std::string_view text, size_t max_chars = 48) {
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.remove_suffix(1);
    std::string out = "'";
    for (size_t i = 0; i < text.size(); ++i) {
        if (i == max_chars) {
            out += "...";
            break;
        }
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += char(c);
        } else {
            static const char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out + "'";
}

// Python's repr of a shape tuple: (), (3,), (2, 3).
std::string shape_repr(std::span<const int64_t> shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

// A shape for a message: Python's repr up to 8 dimensions, then how many there are.
std::string shape_msg(std::span<const int64_t> shape) {
    if (shape.size() <= 8) return shape_repr(shape);
    return shape_repr(shape.first(8)).substr(0, shape_repr(shape.first(8)).size() - 1) + ", ... (" +
           std::to_string(shape.size()) + " dimensions))";
}

const char* dtype_descr(NpyDtype dtype) { return dtype == NpyDtype::f32 ? "<f4" : "<f2"; }
size_t dtype_size(NpyDtype dtype) { return dtype == NpyDtype::f32 ? 4 : 2; }

// prod(shape), or nullopt when it does not fit in int64 (a corrupt header, never a real array).
std::optional<int64_t> checked_numel(std::span<const int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) return std::nullopt;
        if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
        n *= d;
    }
    return n;
}

struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
};

// The header is a Python literal written by numpy (or by hand); this accepts any key order, either quote
// style, free whitespace, a trailing comma and tuples or lists for the shape, and nothing else.
class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::filesystem::path& path) : text_(text), path_(path) {}

    Header parse() {
        Header header;
        bool have_descr = false, have_fortran = false, have_shape = false;
        skip_space();
        expect('{');
        for (;;) {
            skip_space();
            if (peek() == '}') { ++pos_; break; }
            const std::string key = parse_string("a quoted key");
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (peek() == '[') error("descr is a list: structured dtypes are not supported, expected '<f4' or '<f2'");
                header.descr = parse_string("the descr string");
                have_descr = mark_seen(have_descr, key);
            } else if (key == "fortran_order") {
                header.fortran_order = parse_bool();
                have_fortran = mark_seen(have_fortran, key);
            } else if (key == "shape") {
                header.shape = parse_shape();
                have_shape = mark_seen(have_shape, key);
            } else {
                error("unexpected key " + short_quote(key, 24) + "; a .npy header holds only 'descr', 'fortran_order' and 'shape'");
            }
            skip_space();
            if (peek() == ',') { ++pos_; continue; }
            if (peek() == '}') { ++pos_; break; }
            error("expected ',' or '}' after the value of " + short_quote(key, 24) + ", found " + describe_here());
        }
        skip_space();
        if (pos_ != text_.size()) error("unexpected " + describe_here() + " after the closing '}'");
        if (!have_descr) error("the header has no 'descr' key");
        if (!have_fortran) error("the header has no 'fortran_order' key");
        if (!have_shape) error("the header has no 'shape' key");
        return header;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        fail(path_, "cannot parse the .npy header: " + what + " (header starts " + short_quote(text_) + ")");
    }

    bool mark_seen(bool seen, const std::string& key) const {
        if (seen) error("key " + short_quote(key, 24) + " appears twice");
        return true;
    }

    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    std::string describe_here() const {
        if (pos_ >= text_.size()) return "the end of the header";
        return short_quote(text_.substr(pos_, 1)) + " at offset " + std::to_string(pos_);
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }

    void expect(char c) {
        if (peek() != c) error(std::string("expected '") + c + "', found " + describe_here());
        ++pos_;
    }

    std::string parse_string(const char* what) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') error(std::string("expected ") + what + ", found " + describe_here());
        ++pos_;
        std::string out;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
            out += text_[pos_++];
        }
        if (pos_ >= text_.size()) error(std::string("unterminated ") + what);
        ++pos_;
        return out;
    }

    bool parse_bool() {
        for (std::string_view word : {"True", "False"}) {
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return word == "True";
            }
        }
        error("expected True or False for 'fortran_order', found " + describe_here());
    }

    int64_t parse_int() {
        if (peek() == '-') error("a negative dimension in 'shape'");
        if (peek() < '0' || peek() > '9') error("expected a dimension in 'shape', found " + describe_here());
        int64_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            const int digit = peek() - '0';
            if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) error("a dimension in 'shape' overflows int64");
            v = v * 10 + digit;
            ++pos_;
        }
        if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long literal, seen in old files
        return v;
    }

    std::vector<int64_t> parse_shape() {
        const char open = peek();
        if (open != '(' && open != '[') error("expected a tuple for 'shape', found " + describe_here());
        const char close = open == '(' ? ')' : ']';
        ++pos_;
        std::vector<int64_t> shape;
        for (;;) {
            skip_space();
            if (peek() == close) { ++pos_; break; }
            shape.push_back(parse_int());
            skip_space();
            if (peek() == ',') { ++pos_; continue; }
            if (peek() == close) { ++pos_; break; }
            error(std::string("expected ',' or '") + close + "' in 'shape', found " + describe_here());
        }
        return shape;
    }

    std::string_view text_;
    const std::filesystem::path& path_;
    size_t pos_ = 0;
};

NpyDtype decode_descr(const std::string& descr, const std::filesystem::path& path) {
    const std::string supported = "supported dtypes are '<f4' (float32) and '<f2' (float16)";
    if (descr.size() == 3 && (descr.substr(1) == "f4" || descr.substr(1) == "f2")) {
        const NpyDtype dtype = descr[2] == '4' ? NpyDtype::f32 : NpyDtype::f16;
        const char order = descr[0];
        if (order == '<') return dtype;
        // '=' is native order and numpy reads '|' on a multi-byte type as native too.
        if (order == '=' || order == '|') {
            if constexpr (std::endian::native == std::endian::little) return dtype;
            fail(path, "dtype " + short_quote(descr) + " is native-order on a big-endian host; " + supported);
        }
        if (order == '>') fail(path, "dtype " + short_quote(descr) + " is big-endian; " + supported);
    }
    fail(path, "dtype " + short_quote(descr) + " is not supported; " + supported);
}

uint32_t load_le32(const unsigned char* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint16_t load_le16(const unsigned char* p) { return uint16_t(p[0] | p[1] << 8); }

// The whole file, opened only when it is a regular file: a FIFO would block in open() or read() forever, and a
// directory or device is never a .npy file.
std::vector<unsigned char> read_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
#ifndef VKATTN_NPY_POSIX
    if (!std::filesystem::is_regular_file(path, ec)) fail(path, "is not a regular file, expected a .npy file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open for reading");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
#else
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path, std::string("cannot open for reading: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const bool dir = S_ISDIR(st.st_mode), fifo = S_ISFIFO(st.st_mode);
        ::close(fd);
        fail(path, std::string("is ") + (dir ? "a directory" : fifo ? "a FIFO" : "not a regular file") +
                       ", expected a .npy file");
    }
    std::vector<unsigned char> bytes;
    try {
        bytes.resize(size_t(st.st_size));
    } catch (const std::bad_alloc&) {
        ::close(fd);
        fail(path, "is " + std::to_string(st.st_size) + " bytes, more than this process can hold in memory");
    }
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            fail(path, n == 0 ? std::string("ended while reading (was it truncated?)")
                              : std::string("read error: ") + std::strerror(err));
        }
        done += size_t(n);
    }
    ::close(fd);
    return bytes;
#endif
}

}  // namespace

int64_t NpyArray::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

NpyArray read_npy(const std::filesystem::path& path) {
    const std::vector<unsigned char> bytes = read_file(path);
    if (bytes.size() < k_magic.size() + 2 ||
        std::memcmp(bytes.data(), k_magic.data(), k_magic.size()) != 0) {
        fail(path, "not a .npy file: it does not start with the magic \"\\x93NUMPY\"");
    }
    const int major = bytes[6], minor = bytes[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        fail(path, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                       "; supported versions are 1.0, 2.0 and 3.0");
    }
    const size_t len_bytes = major == 1 ? 2 : 4;
    const size_t preamble = 8 + len_bytes;
    if (bytes.size() < preamble) fail(path, "file ends inside the header length field");
    const size_t header_len = major == 1 ? load_le16(bytes.data() + 8) : load_le32(bytes.data() + 8);
    if (header_len > bytes.size() - preamble) {
        fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                       std::to_string(bytes.size()) + " bytes)");
    }
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + preamble, header_len);
    const Header header = HeaderParser(text, path).parse();
    if (header.fortran_order) fail(path, "fortran_order is True; only C-order arrays are supported");

    NpyArray array;
    array.dtype = decode_descr(header.descr, path);
    array.shape = header.shape;
    const size_t item = dtype_size(array.dtype);
    const std::optional<int64_t> numel = checked_numel(array.shape);
    const size_t data_bytes = bytes.size() - preamble - header_len;
    if (!numel || uint64_t(*numel) > std::numeric_limits<uint64_t>::max() / item) {
        fail(path, "shape " + shape_msg(array.shape) + " is too large");
    }
    const uint64_t need = uint64_t(*numel) * item;
    if (data_bytes != need) {
        fail(path, std::string("holds ") + std::to_string(data_bytes) + " bytes of data but shape " +
                       shape_msg(array.shape) + " of '" + header.descr + "' needs " + std::to_string(need) +
                       (data_bytes < need ? " (file truncated)" : " (trailing bytes)"));
    }
    const unsigned char* src = bytes.data() + preamble + header_len;
    array.data.resize(size_t(*numel));
    if (array.dtype == NpyDtype::f32) {
        for (size_t i = 0; i < array.data.size(); ++i) array.data[i] = std::bit_cast<float>(load_le32(src + 4 * i));
    } else {
        for (size_t i = 0; i < array.data.size(); ++i) array.data[i] = cpu::half_to_float(load_le16(src + 2 * i));
    }
    return array;
}

void write_npy(const std::filesystem::path& path, std::span<const int64_t> shape, std::span<const float> data,
               NpyDtype dtype) {
    const std::optional<int64_t> numel = checked_numel(shape);
    if (!numel) fail(path, "cannot write shape " + shape_msg(shape) + ": dimensions must be non-negative and their product fit in int64");
    if (uint64_t(*numel) != data.size()) {
        fail(path, "cannot write shape " + shape_msg(shape) + ": it needs " + std::to_string(*numel) +
                       " values, got " + std::to_string(data.size()));
    }
    std::string header = std::string("{'descr': '") + dtype_descr(dtype) + "', 'fortran_order': False, 'shape': " +
                         shape_repr(shape) + ", }";
    // Version 1.0 unless the header outgrows its 16-bit length (only for shapes of thousands of dims).
    int major = 1;
    size_t preamble = 10;
    size_t padded = (preamble + header.size() + 1 + k_align - 1) / k_align * k_align - preamble;
    if (padded > 0xffff) {
        major = 2;
        preamble = 12;
        padded = (preamble + header.size() + 1 + k_align - 1) / k_align * k_align - preamble;
    }
    header.resize(padded - 1, ' ');
    header += '\n';

    std::string out(k_magic);
    out += char(major);
    out += char(0);
    for (size_t i = 0; i < preamble - 8; ++i) out += char((padded >> (8 * i)) & 0xff);
    out += header;
    const size_t item = dtype_size(dtype);
    const size_t data_start = out.size();
    out.resize(data_start + data.size() * item);
    unsigned char* dst = reinterpret_cast<unsigned char*>(out.data() + data_start);
    for (size_t i = 0; i < data.size(); ++i) {
        const uint32_t bits = dtype == NpyDtype::f32 ? std::bit_cast<uint32_t>(data[i]) : cpu::float_to_half(data[i]);
        for (size_t b = 0; b < item; ++b) dst[item * i + b] = (unsigned char)((bits >> (8 * b)) & 0xff);
    }

    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    if (!file) fail(path, "cannot open for writing");
    file.write(out.data(), std::streamsize(out.size()));
    file.close();
    if (!file) fail(path, "write error");
}

}  // namespace vkattn
