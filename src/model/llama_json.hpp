// Helpers shared by the Llama-family config and checkpoint readers for untrusted JSON files.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace vkattn::model::llama_detail {

// At most 40 bytes of s, bytes outside printable ASCII (and quotes, backslashes) as \xNN: one short line.
std::string short_text(const std::string& s);

// What a JSON value is in a few words: its value for scalars, its type and size for containers. Never
// dump(): it recurses once per nesting level, so a 100,000-deep value would overflow the stack.
std::string describe(const nlohmann::json& v);

// The text of a regular file of at most max_bytes; throws vkattn::Error "<path>: ..." for a missing file,
// a directory, a device, FIFO or socket, or a larger file.
std::string read_small_file(const std::filesystem::path& path, const char* expected, uintmax_t max_bytes = 16u << 20);

}  // namespace vkattn::model::llama_detail
