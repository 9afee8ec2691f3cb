// Loading GPT-2 weights: a Hugging Face model directory, or seeded random weights of any GPT-2 shape.
#pragma once

#include <vkattn/export.hpp>
#include <vkattn/model/gpt2_weights.hpp>

#include <cstdint>
#include <filesystem>

namespace vkattn::model {

// Reads config.json from dir; throws vkattn::Error naming the file and the field on anything inconsistent.
VKATTN_API Gpt2Config load_gpt2_config(const std::filesystem::path& config_json);

// Reads config.json and model.safetensors (or the shards listed in model.safetensors.index.json) from dir.
// F32, F16 and BF16 tensors are converted to float; names with or without the "transformer." prefix;
// attn.bias / attn.masked_bias buffers ignored; lm_head left empty when absent or tied to wte.
VKATTN_API Gpt2Weights load_gpt2_weights(const std::filesystem::path& dir);

// A GPT-2-shaped model with weights ~ N(0, stddev) (LayerNorm gains 1 + N(0, stddev), biases N(0, stddev)),
// reproducible bit for bit from the seed on every platform (the normal is an Irwin-Hall sum, bounded at ±6σ).
VKATTN_API Gpt2Weights synthetic_gpt2(const Gpt2Config& config, uint64_t seed, float stddev = 0.02f);

}  // namespace vkattn::model
