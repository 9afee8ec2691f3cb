// NumPy .npy files (format versions 1.0, 2.0 and 3.0), for exchanging tensors with Python: reference
// activations in tests, logits from the CLI. Only little-endian float32 / float16 in C order.
#pragma once

#include <vkattn/export.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace vkattn {

// Element type as stored in the file; in memory the values are always float.
enum class NpyDtype { f32, f16 };

struct VKATTN_API NpyArray {
    std::vector<int64_t> shape;        // () for a scalar
    NpyDtype dtype = NpyDtype::f32;    // what the file held
    std::vector<float> data;           // [prod(shape)] C order; f16 values widened exactly

    // Number of elements, prod(shape); 1 for a scalar.
    int64_t numel() const;
};

// Reads '<f4' or '<f2' ('=' and '|' accepted on little-endian hosts); throws vkattn::Error naming the file.
VKATTN_API NpyArray read_npy(const std::filesystem::path& path);

// Writes format 1.0 (2.0 when the header needs it); f16 rounds to nearest even. data is [prod(shape)].
VKATTN_API void write_npy(const std::filesystem::path& path, std::span<const int64_t> shape, std::span<const float> data,
               NpyDtype dtype = NpyDtype::f32);

}  // namespace vkattn
