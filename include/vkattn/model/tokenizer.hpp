// GPT-2's byte-level BPE tokenizer: OpenAI's pre-tokenisation regex, byte-to-unicode table and merge ranks,
// read from vocab.json (token -> id) and merges.txt (one merge per line, in rank order).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

// Immutable after loading and safe to share between threads; move-only because it owns a compiled regex.
class Tokenizer {
public:
    // Reads a GPT-2 vocab.json and merges.txt; throws vkattn::Error naming the file and what was wrong.
    static Tokenizer from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
    // Reads dir/vocab.json and dir/merges.txt.
    static Tokenizer from_dir(const std::filesystem::path& dir);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;
    ~Tokenizer();

    // UTF-8 text to token ids; "<|endoftext|>" in the text becomes eos_id(). Throws on invalid UTF-8.
    std::vector<int> encode(std::string_view text) const;
    // Token ids to the bytes they stand for; decode(encode(s)) == s. Throws on an id outside [0, vocab_size).
    std::string decode(std::span<const int> ids) const;
    // The bytes of one token, which may be part of a UTF-8 character (for streaming output).
    std::string token_text(int id) const;
    // The id of "<|endoftext|>" (50256 in GPT-2).
    int eos_id() const;
    int vocab_size() const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);

    std::unique_ptr<Impl> impl_;
};

}  // namespace vkattn::model
