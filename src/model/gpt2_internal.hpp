// GPT-2 pieces shared by the family's files (not public).
#pragma once

#include <vkattn/model/gpt2_weights.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>

namespace vkattn::model {

// A parsed config.json object to a checked config; errors name `path` and the field.
Gpt2Config gpt2_config_from_json(const nlohmann::json& config, const std::filesystem::path& path);

// KV-cache bytes of one position on the GPU, all layers (the fused Q|K|V row each layer keeps, f32).
uint64_t gpt2_cache_bytes_per_token(const Gpt2Config& c);

}  // namespace vkattn::model
