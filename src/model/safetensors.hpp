// Read-only safetensors files, memory-mapped: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the tensor bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vkattn::model {

struct TensorInfo {
    std::string name;
    std::string dtype;                 // as in the file: "F32", "F16", "BF16", "I64", ...
    std::vector<int64_t> shape;        // [] for a scalar
    std::span<const std::byte> data;   // the tensor's bytes inside the mapping, little-endian, maybe unaligned

    int64_t numel() const;
};

// Bytes per element of a safetensors dtype name, or 0 when the name is not one the format defines.
size_t safetensors_dtype_size(const std::string& dtype);

// model.safetensors.index.json: the (tensor name, shard file name) pairs of its weight_map, each file name a
// plain name in the index's directory. Throws vkattn::Error naming the file and what is malformed; refuses
// anything that is not a regular file.
std::vector<std::pair<std::string, std::string>> read_safetensors_index(const std::filesystem::path& path);

// One open file. Every offset and size is checked in open(), so TensorInfo::data never points past the end.
class SafetensorsFile {
public:
    // Throws vkattn::Error naming the file and what is malformed.
    static SafetensorsFile open(const std::filesystem::path& path);

    SafetensorsFile(SafetensorsFile&& other) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;
    ~SafetensorsFile();

    const std::filesystem::path& path() const { return path_; }
    // nullptr when the file has no tensor of that name.
    const TensorInfo* find(const std::string& name) const;
    // Sorted by name; "__metadata__" is not a tensor and is not listed.
    std::vector<std::string> names() const;
    // The tensor widened to float, [numel] in C order; F32, F16 and BF16 only. Throws when absent.
    std::vector<float> read_f32(const std::string& name) const;

private:
    SafetensorsFile() = default;
    void release() noexcept;

    std::filesystem::path path_;
    const std::byte* base_ = nullptr;  // the whole file, mapped (or read into owned_ where mmap is missing)
    size_t size_ = 0;
    std::vector<std::byte> owned_;
    std::map<std::string, TensorInfo> tensors_;
};

// A checkpoint's tensors across dir/model.safetensors, or the shards dir/model.safetensors.index.json lists
// (each opened once). Throws vkattn::Error naming the directory or file: neither file present (with a hint for
// pytorch_model.bin), a malformed index, a missing shard, a tensor the index places in a shard without it.
class CheckpointFiles {
public:
    explicit CheckpointFiles(const std::filesystem::path& dir);

    // Every stored tensor name, sorted, with the index of the file that holds it.
    const std::map<std::string, size_t>& names() const { return where_; }
    bool contains(const std::string& name) const { return where_.count(name) != 0; }

    // The tensor widened to float, after checking that its shape is `shape` (from config.json). A missing
    // tensor is "<dir>: missing tensor 'name' [shape]" followed by `missing_hint`.
    std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape,
                            const std::string& missing_hint = "") const;

private:
    std::filesystem::path dir_;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

}  // namespace vkattn::model
