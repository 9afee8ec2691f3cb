// GPT-2 pieces shared by the family's files (not public).
#pragma once

#include <vkattn/model/gpt2_weights.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>

namespace vkattn::model {

// A parsed config.json object to a checked config; errors name `path` and the field.
Gpt2Config gpt2_config_from_json(const nlohmann::json& config, const std::filesystem::path& path);

}  // namespace vkattn::model
