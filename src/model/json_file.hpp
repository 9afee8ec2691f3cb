// Reading untrusted JSON files (config.json, model.safetensors.index.json) for the model families.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

// The parsed file. Opens only a regular file (a FIFO or a device would block or never end); throws
// vkattn::Error "PATH: ..." when the file is missing, not regular, unreadable or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Why untrusted text did not parse, for an error message: "not valid JSON (syntax error near byte N)" or
// "(a number out of range)". Never nlohmann's own what(), which quotes the input (control characters, invalid
// UTF-8, a second line).
std::string json_error(const nlohmann::json::exception& e);

// A short description of an untrusted value for an error message: numbers, booleans and null as written,
// a string quoted and cut after 40 characters, and only the kind of an object or array: a value nested
// 100,000 levels deep must not be printed (nlohmann's dump recurses and would overflow the stack).
std::string describe_json(const nlohmann::json& value);

// s itself when at most n bytes long, else its first n bytes (never half a UTF-8 character) and "...":
// for names and file names taken from untrusted files.
std::string clip(std::string_view s, size_t n = 60);

// config[key] as token ids: absent or null -> {}, an integer -> {id}, an array of integers -> the ids.
// Throws vkattn::Error "PATH: 'key' is ..., expected ..." on anything else or an id outside [0, vocab_size).
std::vector<int> read_token_ids(const nlohmann::json& config, const char* key, int vocab_size,
                                const std::filesystem::path& path);

}  // namespace vkattn::model
