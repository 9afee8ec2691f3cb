// Test helpers: a small safetensors writer, a whole GPT-2 checkpoint directory in Hugging Face layout, and
// a self-deleting temporary directory. Header-only so any test can include it.
#pragma once

#include "cpu/half.hpp"
#include "model/gpt2_schema.hpp"
#include "support.hpp"
#include <vkattn/model/gpt2_weights.hpp>
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::test {

enum class StDtype { f32, f16, bf16 };

inline const char* st_dtype_name(StDtype dtype) {
    switch (dtype) {
        case StDtype::f32: return "F32";
        case StDtype::f16: return "F16";
        case StDtype::bf16: return "BF16";
    }
    return "?";
}

// The value the loader should return after storing v in dtype (round to nearest even).
inline float st_round(StDtype dtype, float v) {
    switch (dtype) {
        case StDtype::f32: return v;
        case StDtype::f16: return cpu::half_to_float(cpu::float_to_half(v));
        case StDtype::bf16: return cpu::bf16_to_float(cpu::float_to_bf16(v));
    }
    return v;
}

struct StTensor {
    std::string name;
    StDtype dtype = StDtype::f32;
    std::vector<int64_t> shape;
    std::vector<float> values;  // [prod(shape)]
};

// values as little-endian bytes of dtype.
inline std::string st_encode(StDtype dtype, const std::vector<float>& values) {
    std::string out;
    const size_t item = dtype == StDtype::f32 ? 4 : 2;
    out.reserve(values.size() * item);
    for (float v : values) {
        const uint32_t bits = dtype == StDtype::f32   ? std::bit_cast<uint32_t>(v)
                              : dtype == StDtype::f16 ? cpu::float_to_half(v)
                                                      : cpu::float_to_bf16(v);
        for (size_t b = 0; b < item; ++b) out += char((bits >> (8 * b)) & 0xff);
    }
    return out;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) throw std::runtime_error("test: cannot write " + path.string());
}

// The 8-byte little-endian length, the header text as given (valid or not), then data: for malformed files.
inline std::string st_raw(std::string_view header, std::string_view data, uint64_t header_len_field) {
    std::string out;
    for (int b = 0; b < 8; ++b) out += char((header_len_field >> (8 * b)) & 0xff);
    out += header;
    out += data;
    return out;
}
inline std::string st_raw(std::string_view header, std::string_view data = {}) {
    return st_raw(header, data, header.size());
}

// A well-formed file: tensors packed in the given order, header padded with spaces to 8 bytes as the
// reference writer does so the data section starts aligned.
inline void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors,
                              const nlohmann::json& metadata = nullptr) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.is_null()) header["__metadata__"] = metadata;
    std::string data;
    for (const StTensor& t : tensors) {
        int64_t numel = 1;
        for (int64_t d : t.shape) numel *= d;
        if (numel != int64_t(t.values.size())) throw std::runtime_error("test: tensor " + t.name + " has the wrong value count");
        const size_t begin = data.size();
        data += st_encode(t.dtype, t.values);
        header[t.name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
    }
    std::string text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');
    write_bytes(path, st_raw(text, data));
}

struct CheckpointOptions {
    StDtype dtype = StDtype::f32;
    bool prefix = false;        // "transformer.h.0..." as GPT2LMHeadModel saves, else "h.0..." as GPT2Model does
    bool attn_buffers = false;  // h.N.attn.bias [1, 1, P, P] and h.N.attn.masked_bias [] as older saves carry
    int shards = 1;             // > 1: model-0000i-of-0000N.safetensors plus model.safetensors.index.json
    bool lm_head = false;       // write lm_head.weight (weights.lm_head_weights(), so a tied head repeats wte)
};

inline nlohmann::json gpt2_config_json(const model::Gpt2Config& c) {
    return {{"model_type", "gpt2"},        {"architectures", {"GPT2LMHeadModel"}},
            {"n_embd", c.n_embd},          {"n_head", c.n_head},
            {"n_layer", c.n_layer},        {"n_positions", c.n_positions},
            {"n_ctx", c.n_positions},      {"vocab_size", c.vocab_size},
            {"layer_norm_epsilon", c.layer_norm_epsilon},
            {"activation_function", c.activation_function},
            {"n_inner", nullptr}};
}

// The tensors of w with Hugging Face names and shapes, in the order GPT2LMHeadModel lists them: GPT-2's
// schema table (src/model/gpt2_schema.hpp), plus the extras older saves carry.
inline std::vector<StTensor> gpt2_tensors(const model::Gpt2Weights& w, const CheckpointOptions& options) {
    const int64_t P = w.config.n_positions;
    const std::string pre = options.prefix ? "transformer." : "";
    std::vector<StTensor> out;
    model::gpt2_schema(w.config, static_cast<const model::Gpt2Params<std::vector<float>>&>(w),
                       [&](const std::vector<float>& values, const model::TensorSpec& spec) {
        out.push_back({pre + spec.name, options.dtype, spec.shape, values});
        if (options.attn_buffers && spec.name.ends_with(".ln_1.bias")) {
            const std::string h = pre + spec.name.substr(0, spec.name.size() - 9);  // "h.N."
            std::vector<float> mask(size_t(P * P), 0.0f);
            for (int64_t i = 0; i < P; ++i) {
                for (int64_t j = 0; j <= i; ++j) mask[size_t(i * P + j)] = 1.0f;
            }
            out.push_back({h + "attn.bias", options.dtype, {1, 1, P, P}, mask});
            out.push_back({h + "attn.masked_bias", options.dtype, {}, {-1e4f}});
        }
    });
    if (options.lm_head) {
        const model::TensorSpec head = model::gpt2_lm_head_spec(w.config);
        out.push_back({head.name, options.dtype, head.shape, w.lm_head_weights()});
    }
    return out;
}

inline std::string shard_name(int i, int n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
    return buf;
}

// dir/config.json and the weights, as save_pretrained(..., safe_serialization=True) lays them out.
inline void write_gpt2_checkpoint(const std::filesystem::path& dir, const model::Gpt2Weights& w,
                                  const CheckpointOptions& options = {}) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << gpt2_config_json(w.config).dump(2);
    const std::vector<StTensor> tensors = gpt2_tensors(w, options);
    if (options.shards <= 1) {
        write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
        return;
    }
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    size_t total = 0;
    const size_t n = size_t(options.shards);
    for (size_t s = 0; s < n; ++s) {
        // Contiguous runs of tensors, the way HF fills shards up to a size limit.
        const size_t begin = tensors.size() * s / n, end = tensors.size() * (s + 1) / n;
        const std::vector<StTensor> part(tensors.begin() + std::ptrdiff_t(begin), tensors.begin() + std::ptrdiff_t(end));
        const std::string file = shard_name(int(s), int(n));
        write_safetensors(dir / file, part, {{"format", "pt"}});
        for (const StTensor& t : part) {
            index["weight_map"][t.name] = file;
            total += t.values.size() * (options.dtype == StDtype::f32 ? 4 : 2);
        }
    }
    index["metadata"]["total_size"] = total;
    std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}


}  // namespace vkattn::test
