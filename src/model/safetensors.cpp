// Safetensors reader. The header is untrusted: every length and offset is checked against the file size
// before any TensorInfo is handed out, so a truncated or hostile file fails in open(), never later.
#include "model/safetensors.hpp"

#include "cpu/half.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
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
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, expected a .safetensors file");

    SafetensorsFile file;  // owns the mapping from here on, so a throw below unmaps it
    file.path_ = path;
#ifdef VKATTN_HAVE_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path, std::string("cannot stat: ") + std::strerror(err));
    }
    const size_t size = size_t(st.st_size);
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
    } catch (const json::parse_error& e) {
        fail(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail(path, std::string("header is a JSON ") + header.type_name() + ", expected an object");

    const std::byte* data = file.base_ + 8 + header_len;
    const uint64_t data_size = file.size_ - 8 - header_len;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;  // free-form strings; nothing here needs them
        const std::string where = "tensor '" + name + "'";
        if (!entry.is_object()) fail(path, where + " is a JSON " + entry.type_name() + ", expected an object");
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!entry.contains(key)) fail(path, where + " has no '" + key + "'");
        }
        TensorInfo info;
        info.name = name;
        if (!entry["dtype"].is_string()) fail(path, where + " has a non-string dtype " + entry["dtype"].dump());
        info.dtype = entry["dtype"].get<std::string>();
        const size_t item = safetensors_dtype_size(info.dtype);
        if (item == 0) fail(path, where + " has unknown dtype '" + info.dtype + "'; known dtypes are " + known_dtypes());

        const auto shape = unsigned_array(entry["shape"]);
        if (!shape) fail(path, where + " has shape " + entry["shape"].dump() + ", expected an array of non-negative integers");
        const bool has_zero = std::find(shape->begin(), shape->end(), 0) != shape->end();
        uint64_t bytes = has_zero ? 0 : item;
        for (uint64_t d : *shape) {
            const bool too_big = d > uint64_t(std::numeric_limits<int64_t>::max()) ||
                                 (!has_zero && bytes > std::numeric_limits<uint64_t>::max() / d);
            if (too_big) fail(path, where + " has shape " + entry["shape"].dump() + ", too large to address");
            info.shape.push_back(int64_t(d));
            bytes *= d;
        }

        const auto offsets = unsigned_array(entry["data_offsets"]);
        if (!offsets || offsets->size() != 2) {
            fail(path, where + " has data_offsets " + entry["data_offsets"].dump() + ", expected [begin, end] with non-negative integers");
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
            fail(path, "tensors '" + prev.name + "' and '" + cur.name + "' have overlapping data_offsets");
        }
    }
    return file;
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
    if (info == nullptr) fail(path_, "has no tensor named '" + name + "'");
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
        fail(path_, "tensor '" + name + "' has dtype " + info->dtype + "; only F32, F16 and BF16 convert to float");
    }
    return out;
}

}  // namespace vkattn::model
