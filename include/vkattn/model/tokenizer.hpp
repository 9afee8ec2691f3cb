// BPE tokenizers as Hugging Face defines them: a model directory's tokenizer.json (+ tokenizer_config.json),
// byte-level (GPT-2, Llama 3, Qwen2, SmolLM2) or SentencePiece-style with "▁" and byte fallback (Llama 2,
// TinyLlama, Mistral), or GPT-2's original vocab.json + merges.txt.
#pragma once

#include <vkattn/export.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vkattn::model {

// Immutable after loading and safe to share between threads; move-only because it owns compiled regexes.
class VKATTN_API Tokenizer {
public:
    // Reads a GPT-2 vocab.json and merges.txt; throws vkattn::Error naming the file and what was wrong.
    static Tokenizer from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
    // Reads a Hugging Face tokenizer.json, and tokenizer_config.json when that path is not empty (its bos_token,
    // eos_token, add_bos_token and add_eos_token). A component vkattn does not implement (a WordPiece or
    // Unigram model, an unknown normalizer...) is refused by name; malformed files are one-line errors.
    static Tokenizer from_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                         const std::filesystem::path& tokenizer_config = {});
    // dir/tokenizer.json (+ dir/tokenizer_config.json if present) when there is one, else dir/vocab.json and
    // dir/merges.txt; the eos_token_id of dir/generation_config.json, if present, joins eos_ids().
    static Tokenizer from_dir(const std::filesystem::path& dir);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;
    ~Tokenizer();

    // UTF-8 text to token ids as Hugging Face's encode(text) does: added and special tokens written in the
    // text ("<|endoftext|>", "</s>") become their ids, and the BOS/EOS of the post-processor (or of
    // tokenizer_config.json's add_bos_token/add_eos_token) are added. Throws on invalid UTF-8.
    std::vector<int> encode(std::string_view text) const;
    // The same with add_special_tokens = false: no BOS/EOS added (special tokens in the text still match).
    std::vector<int> encode(std::string_view text, bool add_special_tokens) const;
    // Token ids to text through the tokenizer's decoder, as Hugging Face's decode(ids) does, except that bytes
    // which are not valid UTF-8 are kept as they are instead of becoming U+FFFD. Throws on an id with no token.
    std::string decode(std::span<const int> ids) const;
    // The same, leaving out special tokens when skip_special_tokens is set.
    std::string decode(std::span<const int> ids, bool skip_special_tokens) const;
    // The raw bytes of the ids concatenated, with no decoder step that depends on the position in the text (the
    // leading space SentencePiece strips): the bytes of ids[0, n) are a prefix of those of ids[0, n + k), so a
    // generator can stream them, holding back an incomplete UTF-8 character.
    std::string decode_bytes(std::span<const int> ids) const;
    // The bytes of one token, which may be part of a UTF-8 character (decode_bytes of one id).
    std::string token_text(int id) const;
    // Whether an id is one of tokenizer.json's special added tokens ("<s>", "<|begin_of_text|>").
    bool is_special(int id) const;
    // The beginning-of-sequence id (tokenizer_config.json's bos_token), if the tokenizer has one.
    std::optional<int> bos_id() const;
    // The end-of-sequence ids: tokenizer_config.json's eos_token (or, without it, a special "<|endoftext|>",
    // "<|end_of_text|>" or "</s>"; GPT-2's vocab.json gives "<|endoftext|>"), then from_dir's
    // generation_config.json eos_token_id (an id or a list: Llama 3 Instruct stops at three). May be empty.
    std::vector<int> eos_ids() const;
    // The first of eos_ids(); throws vkattn::Error when the tokenizer has none.
    int eos_id() const;
    // One more than the largest id of the vocabulary and the added tokens.
    int vocab_size() const;

    struct VKATTN_LOCAL Impl;

private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);

    std::unique_ptr<Impl> impl_;
};

}  // namespace vkattn::model
