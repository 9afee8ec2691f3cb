// The pipeline behind model::Tokenizer, shared by the two readers (tokenizer.cpp reads GPT-2's vocab.json +
// merges.txt, tokenizer_json.cpp reads Hugging Face's tokenizer.json). It follows the Hugging Face tokenizers
// crate step by step: added tokens split the text, each remaining section is normalized, pre-tokenized into
// pieces, and each piece is merged by BPE; the post-processor adds BOS/EOS; decoding runs the decoder chain.
#pragma once

#include <vkattn/model/tokenizer.hpp>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vkattn::model::detail {

struct Pcre2CodeFree {
    void operator()(pcre2_code* code) const noexcept { pcre2_code_free(code); }
};

// A compiled PCRE2 pattern (UTF + UCP, JIT when available).
struct Regex {
    std::unique_ptr<pcre2_code, Pcre2CodeFree> code;
};

// Compiles pattern, written for Oniguruma as Hugging Face's files are, or a literal string when literal is set;
// `what` names the pattern in the error.
std::shared_ptr<const Regex> compile_regex(std::string_view pattern, bool literal, const std::string& what);

// OpenAI's GPT-2 pattern, which ByteLevel's use_regex and GPT-2's vocab.json + merges.txt split with.
std::string gpt2_pattern();

// One part of a text: a run that matched the pattern or the text between two matches.
struct Span {
    std::size_t begin, end;
    bool is_match;
};
// Cuts text (valid UTF-8) into the matches of regex and the gaps between them, in order, none empty.
std::vector<Span> find_spans(const Regex& regex, std::string_view text);

// Hugging Face's SplitDelimiterBehavior.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

enum class NormalizerKind { Prepend, Replace, Nfc, Nfd, Nfkc, Nfkd };
struct Normalizer {
    NormalizerKind kind{};
    std::string text{};                     // Prepend: what is prepended; Replace: the replacement
    std::shared_ptr<const Regex> pattern{};  // Replace
};

enum class PreTokenizerKind { Split, ByteLevel, Metaspace };
enum class PrependScheme { Always, First, Never };
struct PreTokenizer {
    PreTokenizerKind kind{};
    std::shared_ptr<const Regex> pattern{};  // Split; ByteLevel with use_regex; Metaspace with split (the replacement)
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool add_prefix_space = false;          // ByteLevel
    std::string replacement{};              // Metaspace, usually "▁"
    PrependScheme prepend_scheme = PrependScheme::Always;
};

enum class DecoderKind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
struct Decoder {
    DecoderKind kind{};
    std::string from{}, to{};                  // Replace: every `from` becomes `to`; Strip and Metaspace: the char in `from`
    std::size_t start = 0, stop = 0;        // Strip
    PrependScheme prepend_scheme = PrependScheme::Always;  // Metaspace
};

struct AddedToken {
    int id = 0;
    std::string content;
    bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Matches added tokens in a text, leftmost first and then longest, as the tokenizers crate's Aho-Corasick does.
struct AddedTokenMatcher {
    struct Entry {
        std::string text;  // what is matched: the content, or the normalized content
        const AddedToken* token;
    };
    std::array<std::vector<Entry>, 256> by_first{};  // by the first byte of text, longest first
    bool any = false;
    void add(std::string text, const AddedToken* token);
    void sort();
};

// Decodes the UTF-8 character at s[i] into cp and len; returns what is wrong with it, or nullptr if valid.
const char* decode_utf8(std::string_view s, std::size_t i, char32_t& cp, std::size_t& len);
void append_utf8(std::string& out, char32_t cp);
// Bytes as a quoted string with control and non-ASCII bytes escaped and long text cut, for error messages.
std::string escaped(std::string_view bytes);

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes are moved to
// U+0100..U+0143 so that every byte has a visible, non-space character in the vocabulary files.
struct ByteTable {
    static constexpr char32_t k_end = 0x100 + 68;
    std::array<int, k_end> byte_of{};     // code point -> byte, or -1
    std::array<char32_t, 256> char_of{};  // byte -> code point
    ByteTable();
    // The raw bytes a vocabulary string stands for, or nullopt if it has a character outside the table.
    std::optional<std::string> to_bytes(std::string_view text) const;
    // The vocabulary string of raw bytes.
    std::string to_text(std::string_view bytes) const;
};
const ByteTable& byte_table();

// The contents of a regular file (never a FIFO or a device, which could block); `what` names it in errors,
// `hint` is added to the missing-file error.
std::string read_regular_file(const std::filesystem::path& path, const std::string& what, const std::string& hint);

std::uint64_t pair_key(int left, int right);

struct Merge {
    int rank;
    int result;  // symbol of the merged pair
};

// Lets the cache be searched with a string_view without building a std::string per piece.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace vkattn::model::detail

namespace vkattn::model {

struct Tokenizer::Impl {
    // Named in errors about the vocabulary, e.g. "vocab.json" or "tokenizer.json".
    std::string vocab_file;

    // ---- the BPE model ----
    // True when the vocabulary is written in GPT-2's byte-to-unicode alphabet: then BPE starts from one symbol
    // per byte and every lookup is by raw bytes. Otherwise BPE starts from one symbol per UTF-8 character.
    bool byte_level = false;
    // GPT-2's encoder.py merges every occurrence of the best pair before looking at the pairs this creates; the
    // tokenizers crate merges one pair at a time, lowest (rank, position) first. They differ only on merge lists
    // where a merge creates a pair ranked below itself, which no trained BPE has.
    bool merge_all_occurrences = false;
    bool ignore_merges = false;
    bool byte_fallback = false;
    bool fuse_unk = false;
    int unk_id = -1;

    // Symbols are token ids, plus ids from vocab_size() up for byte strings that merges.txt builds but vocab.json
    // lacks (GPT-2's files only); encoding fails only if such a symbol survives to the output.
    std::vector<std::string> token_string;   // [V] the token as the file writes it ("Ġworld", "▁Hello", "<0x0A>")
    std::vector<std::string> token_bytes;    // [V] the raw bytes of the token, as decode_bytes gives them
    std::vector<char> has_token;             // [V] false for ids that neither the vocabulary nor an added token uses
    std::vector<char> special;               // [V]
    std::vector<std::string> extra_bytes;    // bytes of symbol vocab_size() + i
    std::unordered_map<std::string, int, detail::StringHash, std::equal_to<>> symbol_of;  // lookup text -> symbol
    std::array<int, 256> byte_symbol{};      // byte_level: the symbol of each byte, -1 if none
    std::array<int, 256> fallback_symbol{};  // byte_fallback: the id of "<0xXX>", -1 if none
    std::unordered_map<std::uint64_t, detail::Merge> merges;  // pair_key(left, right) -> rank and result

    // ---- the pipeline around it ----
    std::vector<detail::AddedToken> added;
    detail::AddedTokenMatcher raw_matcher;         // added tokens with normalized = false, matched before normalizing
    detail::AddedTokenMatcher normalized_matcher;  // the others, matched in the normalized text
    std::vector<std::string> normalized_content;   // [added.size()] content after the normalizers
    std::vector<detail::Normalizer> normalizers;
    std::vector<detail::PreTokenizer> pre_tokenizers;
    std::vector<detail::Decoder> decoders;
    std::vector<int> prefix_ids, suffix_ids;  // what the post-processor adds around the text
    std::optional<int> bos;
    std::vector<int> eos;

    // Pieces repeat heavily in natural text (" the", ","), so their BPE is remembered; the mutex keeps
    // encode() safe to call from several threads on one Tokenizer.
    mutable std::mutex cache_mutex;
    mutable std::unordered_map<std::string, std::vector<int>, detail::StringHash, std::equal_to<>> cache;

    int vocab_size() const { return static_cast<int>(token_string.size()); }
    const std::string& symbol_bytes(int symbol) const {
        return symbol < vocab_size() ? token_bytes[static_cast<std::size_t>(symbol)]
                                     : extra_bytes[static_cast<std::size_t>(symbol - vocab_size())];
    }

    // Called by the readers once everything above is filled: token_bytes, matchers, normalized contents.
    void finish();

    std::vector<int> encode(std::string_view text, bool add_special_tokens) const;
    std::string decode(std::span<const int> ids, bool skip_special_tokens) const;

    std::string normalize(std::string text) const;
    void encode_section(std::string_view section, bool at_start, std::vector<int>& ids) const;
    void encode_normalized(std::string_view text, bool at_start, std::vector<int>& ids) const;
    void append_piece(std::string_view piece, std::vector<int>& ids) const;
    std::vector<int> bpe(std::string_view piece) const;
    std::vector<std::string> run_decoders(std::vector<std::string> tokens, bool position_free) const;
    void check_id(int id, std::size_t position, bool with_position) const;
};

}  // namespace vkattn::model
