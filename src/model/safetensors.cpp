// Safetensors reader. The header is untrusted: every length and offset is checked against the file size
// before any TensorInfo is handed out, so a truncated or hostile file fails in open(), never later.
#include "model/safetensors.hpp"
#include "model/schema.hpp"

#include "cpu/half.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <iterator>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#define VKATTN_HAVE_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
// Without POSIX mmap (Windows) the file is read into memory; a CreateFileMapping path would save the copy.
#include <fstream>
#endif

namespace vkattn::model {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
    throw Error(path.string() + ": " + what);
}

// Untrusted text for a message: a short prefix, quoted, control and non-ASCII bytes as \xNN.
std::string short_quote(std::string_view text, size_t max_chars = 48) {
    std::string out = "'";
    for (size_t i = 0; i < text.size(); ++i) {
        if (i == max_chars) {
            out += "...";
            break;
        }
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
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

// A JSON value for a message without printing it whole (dump() recurses, and the value may nest 100,000
// levels or hold megabytes): scalars short, containers by type and size.
std::string describe(const json& v) {
    switch (v.type()) {
        case json::value_t::array: return "an array of " + std::to_string(v.size()) + " elements";
        case json::value_t::object: return "an object of " + std::to_string(v.size()) + " keys";
        case json::value_t::string: return "the string " + short_quote(v.get_ref<const std::string&>());
        case json::value_t::null: return "null";
        case json::value_t::discarded: return "a discarded value";
        default: return "the " + std::string(v.type_name()) + " " + v.dump();  // number or boolean: short
    }
}

// JSON's own messages quote what they read; say where instead. Parsing also throws out_of_range for a number
// beyond double's range (1e309), not only parse_error.
std::string parse_error_text(const json::exception& e, size_t size) {
    if (const auto* p = dynamic_cast<const json::parse_error*>(&e)) {
        return "not valid JSON (syntax error near byte " + std::to_string(p->byte) + " of " + std::to_string(size) + ")";
    }
    if (e.id == 406) return "not valid JSON (a number beyond the range of a double)";
    return "not valid JSON (nlohmann::json error " + std::to_string(e.id) + ")";
}

#ifdef VKATTN_HAVE_MMAP
// Opens path for reading only when it is a regular file (a FIFO would block in open() or read(), a directory
// fails obscurely); returns the descriptor and its size.
int open_regular(const std::filesystem::path& path, const char* expected, size_t& size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path, std::string("cannot stat: ") + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        const char* kind = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file";
        fail(path, std::string("is ") + kind + ", expected " + expected);
    }
    size = size_t(st.st_size);
    return fd;
}
#endif

// The whole of a small regular file (the index), refusing FIFOs, directories and anything over max_bytes.
std::string read_small_file(const std::filesystem::path& path, const char* expected, size_t max_bytes) {
    std::string text;
#ifdef VKATTN_HAVE_MMAP
    size_t size = 0;
    const int fd = open_regular(path, expected, size);
    if (size > max_bytes) {
        ::close(fd);
        fail(path, "is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                       " bytes allowed for " + expected);
    }
    text.resize(size);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd, text.data() + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            fail(path, n == 0 ? std::string("ends early while reading") : std::string("read error: ") + std::strerror(err));
        }
        done += size_t(n);
    }
    ::close(fd);
#else
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail(path, std::string("is not a regular file, expected ") + expected);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open for reading");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (text.size() > max_bytes) fail(path, std::string("is too large for ") + expected);
#endif
    return text;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

constexpr std::pair<const char*, size_t> k_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

std::string known_dtypes() {
    std::string s;
    for (const auto& [name, size] : k_dtypes) s += (s.empty() ? "" : ", ") + std::string(name);
    return s;
}

uint64_t load_le64(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
    return v;
}

// A JSON array of non-negative integers, or nullopt for anything else (floats, negatives, strings).
std::optional<std::vector<uint64_t>> unsigned_array(const json& value) {
    if (!value.is_array()) return std::nullopt;
    std::vector<uint64_t> out;
    for (const json& v : value) {
        if (!v.is_number_unsigned()) return std::nullopt;
        out.push_back(v.get<uint64_t>());
    }
    return out;
}

}  // namespace

int64_t TensorInfo::numel() const {
    // open() bounded the product by the file size, except that a zero dim may sit beside huge ones.
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
    for (const auto& [name, size] : k_dtypes) {
        if (dtype == name) return size;
    }
    return 0;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)), base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)), owned_(std::move(other.owned_)), tensors_(std::move(other.tensors_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
        owned_ = std::move(other.owned_);  // a moved vector keeps its buffer, so the spans stay valid
        tensors_ = std::move(other.tensors_);
    }
    return *this;
}

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() noexcept {
#ifdef VKATTN_HAVE_MMAP
    if (base_ != nullptr && owned_.empty()) munmap(const_cast<std::byte*>(base_), size_);
#endif
    base_ = nullptr;
    size_ = 0;
    owned_.clear();
    tensors_.clear();
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(path, "no such file");

    SafetensorsFile file;  // owns the mapping from here on, so a throw below unmaps it
    file.path_ = path;
#ifdef VKATTN_HAVE_MMAP
    size_t size = 0;
    const int fd = open_regular(path, "a .safetensors file", size);
    if (size < 8) {
        ::close(fd);
        fail(path, "is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    }
    void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_err = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED) fail(path, std::string("cannot mmap: ") + std::strerror(map_err));
    file.base_ = static_cast<const std::byte*>(map);
    file.size_ = size;
#else
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) fail(path, "cannot open for reading");
    const std::streamoff size = in.tellg();
    if (size < 8) fail(path, "is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    file.owned_.resize(size_t(size));
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(file.owned_.data()), size)) fail(path, "read error");
    file.base_ = file.owned_.data();
    file.size_ = file.owned_.size();
#endif

    const uint64_t header_len = load_le64(file.base_);
    if (header_len > file.size_ - 8) {
        fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                       std::to_string(file.size_) + " bytes)");
    }
    const char* header_begin = reinterpret_cast<const char*>(file.base_ + 8);
    json header;
    try {
        header = json::parse(header_begin, header_begin + header_len);
    } catch (const json::exception& e) {
        fail(path, "header is " + parse_error_text(e, header_len));
    }
    if (!header.is_object()) fail(path, std::string("header is a JSON ") + header.type_name() + ", expected an object");

    const std::byte* data = file.base_ + 8 + header_len;
    const uint64_t data_size = file.size_ - 8 - header_len;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;  // free-form strings; nothing here needs them
        const std::string where = "tensor " + short_quote(name);
        if (!entry.is_object()) fail(path, where + " is a JSON " + entry.type_name() + ", expected an object");
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!entry.contains(key)) fail(path, where + " has no '" + key + "'");
        }
        TensorInfo info;
        info.name = name;
        const json& dtype = entry.at("dtype");
        if (!dtype.is_string()) fail(path, where + " has a non-string dtype, " + describe(dtype));
        info.dtype = dtype.get<std::string>();
        const size_t item = safetensors_dtype_size(info.dtype);
        if (item == 0) fail(path, where + " has unknown dtype " + short_quote(info.dtype) + "; known dtypes are " + known_dtypes());

        const json& shape_json = entry.at("shape");
        const auto shape = unsigned_array(shape_json);
        if (!shape) fail(path, where + " has shape " + describe(shape_json) + ", expected an array of non-negative integers");
        const bool has_zero = std::find(shape->begin(), shape->end(), 0) != shape->end();
        uint64_t bytes = has_zero ? 0 : item;
        for (uint64_t d : *shape) {
            const bool too_big = d > uint64_t(std::numeric_limits<int64_t>::max()) ||
                                 (!has_zero && bytes > std::numeric_limits<uint64_t>::max() / d);
            if (too_big) fail(path, where + " has a shape of " + std::to_string(shape->size()) + " dimensions too large to address");
            info.shape.push_back(int64_t(d));
            bytes *= d;
        }

        const json& offsets_json = entry.at("data_offsets");
        const auto offsets = unsigned_array(offsets_json);
        if (!offsets || offsets->size() != 2) {
            fail(path, where + " has data_offsets " + describe(offsets_json) + ", expected [begin, end] with non-negative integers");
        }
        const uint64_t begin = (*offsets)[0], end = (*offsets)[1];
        const std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
        if (begin > end) fail(path, where + " has " + range + " with begin after end");
        if (end > data_size) {
            fail(path, where + " has " + range + " past the end of the data section (" + std::to_string(data_size) + " bytes)");
        }
        if (end - begin != bytes) {
            fail(path, where + " of dtype " + info.dtype + " and shape " + shape_str(info.shape) + " needs " +
                           std::to_string(bytes) + " bytes, but its " + range + " span " + std::to_string(end - begin));
        }
        info.data = std::span<const std::byte>(data + begin, size_t(bytes));
        file.tensors_.emplace(name, std::move(info));
    }

    // Two tensors sharing bytes would alias silently; the format forbids it.
    std::vector<const TensorInfo*> by_offset;
    for (const auto& [name, info] : file.tensors_) {
        if (!info.data.empty()) by_offset.push_back(&info);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->data.data() < b->data.data();
    });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo& prev = *by_offset[i - 1];
        const TensorInfo& cur = *by_offset[i];
        if (cur.data.data() < prev.data.data() + prev.data.size()) {
            fail(path, "tensors " + short_quote(prev.name) + " and " + short_quote(cur.name) + " have overlapping data_offsets");
        }
    }
    return file;
}

std::vector<std::pair<std::string, std::string>> read_safetensors_index(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
    // Real indexes are a few hundred kB (one line per tensor); 64 MB leaves room and bounds a hostile file.
    const std::string text = read_small_file(path, "a model.safetensors.index.json file", size_t(64) << 20);
    json index;
    try {
        index = json::parse(text);
    } catch (const json::exception& e) {
        fail(path, "is " + parse_error_text(e, text.size()));
    }
    if (!index.is_object()) fail(path, "is " + describe(index) + ", expected a JSON object with a 'weight_map'");
    const auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object()) {
        fail(path, "has no 'weight_map' object mapping tensor names to shard files");
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, shard] : map->items()) {
        const std::string where = "weight_map[" + short_quote(name) + "]";
        if (!shard.is_string()) fail(path, where + " is " + describe(shard) + ", expected a file name");
        const std::string& file = shard.get_ref<const std::string&>();
        // Shards sit beside the index; a path could reach outside the model directory.
        if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
            file.find('\\') != std::string::npos || file.find('\0') != std::string::npos) {
            fail(path, where + " is " + short_quote(file) + ", expected a file name in the same directory");
        }
        out.emplace_back(name, file);
    }
    return out;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, info] : tensors_) out.push_back(name);
    return out;
}

std::vector<float> SafetensorsFile::read_f32(const std::string& name) const {
    const TensorInfo* info = find(name);
    if (info == nullptr) fail(path_, "has no tensor named " + short_quote(name));
    const size_t n = size_t(info->numel());
    std::vector<float> out(n);
    const auto* src = reinterpret_cast<const unsigned char*>(info->data.data());
    if (info->dtype == "F32") {
        for (size_t i = 0; i < n; ++i) {
            const unsigned char* p = src + 4 * i;
            out[i] = std::bit_cast<float>(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
        }
    } else if (info->dtype == "F16" || info->dtype == "BF16") {
        const bool half = info->dtype == "F16";
        for (size_t i = 0; i < n; ++i) {
            const uint16_t bits = uint16_t(src[2 * i] | src[2 * i + 1] << 8);
            out[i] = half ? cpu::half_to_float(bits) : cpu::bf16_to_float(bits);
        }
    } else {
        fail(path_, "tensor " + short_quote(name) + " has dtype " + info->dtype + "; only F32, F16 and BF16 convert to float");
    }
    return out;
}

CheckpointFiles::CheckpointFiles(const std::filesystem::path& dir) : dir_(dir) {
    const auto single = dir / "model.safetensors";
    const auto index = dir / "model.safetensors.index.json";
    std::error_code ec;
    if (std::filesystem::exists(single, ec)) {
        files_.push_back(SafetensorsFile::open(single));
        for (const std::string& name : files_[0].names()) where_[name] = 0;
        return;
    }
    if (!std::filesystem::exists(index, ec)) {
        const std::string hint = std::filesystem::exists(dir / "pytorch_model.bin", ec)
                                     ? " (pytorch_model.bin is not read; save with safetensors)"
                                     : "";
        fail(dir, "has neither model.safetensors nor model.safetensors.index.json" + hint);
    }
    std::map<std::string, size_t> file_index;
    for (const auto& [name, file] : read_safetensors_index(index)) {
        auto it = file_index.find(file);
        if (it == file_index.end()) {
            if (!std::filesystem::exists(dir / file, ec)) {
                fail(dir, "is missing shard " + short_quote(file) + " listed in model.safetensors.index.json");
            }
            files_.push_back(SafetensorsFile::open(dir / file));
            it = file_index.emplace(file, files_.size() - 1).first;
        }
        if (files_[it->second].find(name) == nullptr) {
            fail(files_[it->second].path(),
                 "has no tensor " + short_quote(name) + ", which model.safetensors.index.json places there");
        }
        where_[name] = it->second;
    }
}

std::vector<float> CheckpointFiles::read(const std::string& name, const std::vector<int64_t>& shape,
                                         const std::string& missing_hint) const {
    const auto it = where_.find(name);
    if (it == where_.end()) fail(dir_, "missing tensor '" + name + "' " + shape_text(shape) + missing_hint);
    const SafetensorsFile& file = files_[it->second];
    const TensorInfo* info = file.find(name);
    if (info->shape != shape) {
        fail(file.path(), "tensor '" + name + "' has shape " + shape_text(info->shape) + ", expected " +
                              shape_text(shape) + " from config.json");
    }
    return file.read_f32(name);
}

}  // namespace vkattn::model
