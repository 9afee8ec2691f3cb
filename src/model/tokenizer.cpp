// The tokenizer pipeline, following the Hugging Face tokenizers crate (tokenizer/added_vocabulary.rs,
// models/bpe, pre_tokenizers, decoders), and GPT-2's vocab.json + merges.txt reader, following OpenAI's
// gpt-2/src/encoder.py. Internally a byte-level vocabulary is kept as raw bytes: GPT-2's byte-to-unicode
// table only exists so that the files can be text.
#include "model/json_file.hpp"
#include "model/tokenizer_impl.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <fstream>
#include <queue>
#include <sstream>
#include <utility>
#include <nlohmann/json.hpp>
#include <vkattn/error.hpp>

namespace vkattn::model {
namespace detail {

const char* decode_utf8(std::string_view s, std::size_t i, char32_t& cp, std::size_t& len) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
        cp = lead;
        len = 1;
        return nullptr;
    }
    if (lead < 0xC0) return "a continuation byte with no lead byte";
    if (lead < 0xC2) return "an overlong 2-byte sequence";
    if (lead < 0xE0) {
        len = 2;
        cp = lead & 0x1F;
    } else if (lead < 0xF0) {
        len = 3;
        cp = lead & 0x0F;
    } else if (lead < 0xF5) {
        len = 4;
        cp = lead & 0x07;
    } else {
        return "a byte that never occurs in UTF-8";
    }
    for (std::size_t k = 1; k < len; ++k) {
        if (i + k >= s.size()) return "a multi-byte sequence cut short by the end of the text";
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return "a multi-byte sequence cut short by a byte that is not a continuation";
        cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return "an overlong sequence";
    if (cp >= 0xD800 && cp <= 0xDFFF) return "an encoded UTF-16 surrogate";
    if (cp > 0x10FFFF) return "a code point above U+10FFFF";
    return nullptr;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

namespace {

std::string hex_byte(unsigned char b) {
    constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 0xF];
}

// White_Space, which Oniguruma's \s (Hugging Face's files) and Python's `regex` (OpenAI's GPT-2 pattern) match.
// PCRE2's \s under UCP also matches U+180E MONGOLIAN VOWEL SEPARATOR, so \s is spelled out.
constexpr std::string_view k_white_space =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// What the tokenizers crate's added-token rules test: lstrip and rstrip take White_Space (Rust regex \s),
// single_word looks for word characters (Rust regex \w: Alphabetic, marks, decimal digits, connector
// punctuation and Join_Control).
bool is_white_space(char32_t cp) { return u_isUWhiteSpace(static_cast<UChar32>(cp)) != 0; }
bool is_word_char(char32_t cp) {
    const auto c = static_cast<UChar32>(cp);
    if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) return true;
    const auto type = u_charType(c);
    return type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK || type == U_COMBINING_SPACING_MARK ||
           type == U_DECIMAL_DIGIT_NUMBER || type == U_CONNECTOR_PUNCTUATION;
}

// The code point that ends at s[end - 1] (s is valid UTF-8).
char32_t char_before(std::string_view s, std::size_t end) {
    std::size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    char32_t cp = 0;
    std::size_t len = 0;
    decode_utf8(s, i, cp, len);
    return cp;
}
char32_t char_at(std::string_view s, std::size_t i, std::size_t& len) {
    char32_t cp = 0;
    decode_utf8(s, i, cp, len);
    return cp;
}

void validate_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        char32_t cp = 0;
        std::size_t len = 0;
        if (const char* problem = decode_utf8(text, i, cp, len)) {
            throw Error("expected UTF-8 text, found " + std::string(problem) + " at byte offset " + std::to_string(i) +
                        " (" + hex_byte(static_cast<unsigned char>(text[i])) + ")");
        }
        i += len;
    }
}

struct Pcre2MatchDataFree {
    void operator()(pcre2_match_data* data) const noexcept { pcre2_match_data_free(data); }
};

// Oniguruma's \s and \S as PCRE2 classes; everything else in Hugging Face's patterns means the same in both.
std::string translate_oniguruma(std::string_view pattern) {
    std::string out;
    int class_depth = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const char c = pattern[i];
        if (c == '\\' && i + 1 < pattern.size()) {
            const char next = pattern[++i];
            if (next == 's') {
                out += class_depth > 0 ? std::string(k_white_space) : "[" + std::string(k_white_space) + "]";
            } else if (next == 'S' && class_depth == 0) {
                out += "[^" + std::string(k_white_space) + "]";
            } else {
                out += c;
                out += next;
            }
            continue;
        }
        if (c == '[') ++class_depth;
        if (c == ']' && class_depth > 0) --class_depth;
        out += c;
    }
    return out;
}

std::vector<std::pair<std::size_t, std::size_t>> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior,
                                                                bool invert) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    bool previous_match = false;
    switch (behavior) {
    case SplitBehavior::Removed:
        for (const Span& s : spans) {
            if (s.is_match == invert) out.emplace_back(s.begin, s.end);
        }
        break;
    case SplitBehavior::Isolated:
        for (const Span& s : spans) out.emplace_back(s.begin, s.end);
        break;
    case SplitBehavior::MergedWithPrevious:
        for (const Span& s : spans) {
            const bool is_match = s.is_match != invert;
            if (is_match && !previous_match && !out.empty()) {
                out.back().second = s.end;
            } else {
                out.emplace_back(s.begin, s.end);
            }
            previous_match = is_match;
        }
        break;
    case SplitBehavior::MergedWithNext:
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            const bool is_match = it->is_match != invert;
            if (is_match && !previous_match && !out.empty()) {
                out.back().first = it->begin;
            } else {
                out.emplace_back(it->begin, it->end);
            }
            previous_match = is_match;
        }
        std::reverse(out.begin(), out.end());
        break;
    case SplitBehavior::Contiguous:
        for (const Span& s : spans) {
            const bool is_match = s.is_match != invert;
            if (is_match == previous_match && !out.empty()) {
                out.back().second = s.end;
            } else {
                out.emplace_back(s.begin, s.end);
            }
            previous_match = is_match;
        }
        break;
    }
    return out;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    if (from.empty()) return std::string(text);
    std::string out;
    for (std::size_t start = 0;;) {
        const std::size_t at = text.find(from, start);
        if (at == std::string_view::npos) {
            out += text.substr(start);
            return out;
        }
        out += text.substr(start, at - start);
        out += to;
        start = at + from.size();
    }
}

std::string unicode_normalize(const std::string& text, NormalizerKind kind) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* normalizer = nullptr;
    switch (kind) {
    case NormalizerKind::Nfc: normalizer = icu::Normalizer2::getNFCInstance(status); break;
    case NormalizerKind::Nfd: normalizer = icu::Normalizer2::getNFDInstance(status); break;
    case NormalizerKind::Nfkc: normalizer = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalizerKind::Nfkd: normalizer = icu::Normalizer2::getNFKDInstance(status); break;
    default: return text;
    }
    if (U_FAILURE(status)) throw Error(std::string("ICU has no Unicode normalizer: ") + u_errorName(status));
    std::string out;
    icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
    normalizer->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr,
                              status);
    if (U_FAILURE(status)) throw Error(std::string("Unicode normalization failed: ") + u_errorName(status));
    return out;
}

// Hugging Face's ByteFallback decoder: "<0x0A>" stands for the byte 0x0A.
std::optional<unsigned char> fallback_byte(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    unsigned value = 0;
    for (const char c : token.substr(3, 2)) {
        value <<= 4;
        if (c >= '0' && c <= '9') {
            value |= static_cast<unsigned>(c - '0');
        } else if (c >= 'A' && c <= 'F') {
            value |= static_cast<unsigned>(c - 'A' + 10);
        } else if (c >= 'a' && c <= 'f') {
            value |= static_cast<unsigned>(c - 'a' + 10);
        } else {
            return std::nullopt;
        }
    }
    return static_cast<unsigned char>(value);
}

// Strips up to `count` copies of `content` from the start (or end) of token.
std::string strip_chars(std::string token, std::string_view content, std::size_t start, std::size_t stop) {
    if (content.empty()) return token;
    std::size_t from = 0;
    for (std::size_t k = 0; k < start && token.compare(from, content.size(), content) == 0; ++k) from += content.size();
    std::size_t to = token.size();
    for (std::size_t k = 0; k < stop && to >= from + content.size() &&
                            token.compare(to - content.size(), content.size(), content) == 0;
         ++k) {
        to -= content.size();
    }
    return token.substr(from, to - from);
}

}  // namespace

std::string escaped(std::string_view bytes) {
    constexpr std::size_t k_max = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < bytes.size() && i < k_max; ++i) {
        const char c = bytes[i];
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F && c != '"' && c != '\\') {
            out += c;
        } else {
            out += "\\x" + hex_byte(b).substr(2);
        }
    }
    out += "\"";
    if (bytes.size() > k_max) out += " (" + std::to_string(bytes.size()) + " bytes, cut)";
    return out;
}

ByteTable::ByteTable() {
    byte_of.fill(-1);
    int moved = 0;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(0x100 + moved++);
        byte_of[cp] = b;
        char_of[static_cast<std::size_t>(b)] = cp;
    }
}

std::optional<std::string> ByteTable::to_bytes(std::string_view text) const {
    std::string bytes;
    for (std::size_t i = 0; i < text.size();) {
        char32_t cp = 0;
        std::size_t len = 0;
        if (decode_utf8(text, i, cp, len) != nullptr || cp >= k_end || byte_of[cp] < 0) return std::nullopt;
        bytes += static_cast<char>(byte_of[cp]);
        i += len;
    }
    return bytes;
}

std::string ByteTable::to_text(std::string_view bytes) const {
    std::string text;
    for (const char c : bytes) append_utf8(text, char_of[static_cast<unsigned char>(c)]);
    return text;
}

const ByteTable& byte_table() {
    static const ByteTable table;
    return table;
}

std::string read_regular_file(const std::filesystem::path& path, const std::string& what, const std::string& hint) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        throw Error("expected the " + what + " at " + path.string() + ", but there is no such file" + hint);
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw Error("expected the " + what + " at " + path.string() + " to be a regular file, but it is not");
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in) throw Error("could not read the " + what + " at " + path.string());
    return std::move(contents).str();
}

std::string gpt2_pattern() {
    const std::string ws(k_white_space);
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" + ws + R"(\p{L}\p{N}]+|[)" + ws + "]+(?![^" + ws +
           "])|[" + ws + "]+";
}

std::shared_ptr<const Regex> compile_regex(std::string_view pattern, bool literal, const std::string& what) {
    const std::string source = literal ? std::string(pattern) : translate_oniguruma(pattern);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    auto regex = std::make_shared<Regex>();
    regex->code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                    literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP, &error_code,
                                    &error_offset, nullptr));
    if (!regex->code) {
        std::array<PCRE2_UCHAR, 256> message{};
        pcre2_get_error_message(error_code, message.data(), message.size());
        throw Error(what + ": PCRE2 rejected the pattern " + escaped(pattern) + " at offset " +
                    std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message.data()));
    }
    // Without JIT (a PCRE2 built without it, or W^X memory) matching falls back to the interpreter.
    pcre2_jit_compile(regex->code.get(), PCRE2_JIT_COMPLETE);
    return regex;
}

std::vector<Span> find_spans(const Regex& regex, std::string_view text) {
    const std::unique_ptr<pcre2_match_data, Pcre2MatchDataFree> match(
        pcre2_match_data_create_from_pattern(regex.code.get(), nullptr));
    if (!match) throw Error("could not allocate PCRE2 match data");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::vector<Span> spans;
    std::size_t gap_start = 0;
    std::size_t offset = 0;
    while (offset < text.size()) {
        // The text was validated as a whole, and every cut is at a match boundary, so never inside a character.
        const int rc = pcre2_match(regex.code.get(), subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match.get(),
                                   nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            std::array<PCRE2_UCHAR, 256> message{};
            pcre2_get_error_message(rc, message.data(), message.size());
            throw Error("pre-tokenising the text at byte offset " + std::to_string(offset) +
                        " failed: " + reinterpret_cast<const char*>(message.data()));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const std::size_t start = ovector[0];
        const std::size_t end = ovector[1];
        if (end == start) {
            // An empty match splits nothing (the tokenizers crate drops empty pieces); step over one character.
            std::size_t len = 1;
            if (start < text.size()) char_at(text, start, len);
            offset = start + len;
            continue;
        }
        if (start > gap_start) spans.push_back({gap_start, start, false});
        spans.push_back({start, end, true});
        gap_start = offset = end;
    }
    if (gap_start < text.size()) spans.push_back({gap_start, text.size(), false});
    return spans;
}

void AddedTokenMatcher::add(std::string text, const AddedToken* token) {
    if (text.empty()) return;
    by_first[static_cast<unsigned char>(text[0])].push_back({std::move(text), token});
    any = true;
}

void AddedTokenMatcher::sort() {
    for (auto& list : by_first) {
        std::stable_sort(list.begin(), list.end(),
                         [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
    }
}

std::uint64_t pair_key(int left, int right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

namespace {

// Cuts text at the added tokens that matcher finds, as the tokenizers crate's AddedVocabulary::split_with_indices
// does: leftmost-longest matches; single_word tokens only between non-word characters; lstrip and rstrip take
// the whitespace beside the token into it. on_part(part, token or nullptr, offset of the part in text).
template <typename F>
void split_added(const AddedTokenMatcher& matcher, std::string_view text, F&& on_part) {
    std::size_t start_offset = 0;
    std::size_t pos = 0;
    if (matcher.any) {
        while (pos < text.size()) {
            const AddedTokenMatcher::Entry* found = nullptr;
            std::size_t at = pos;
            for (; at < text.size() && found == nullptr; ++at) {
                for (const auto& entry : matcher.by_first[static_cast<unsigned char>(text[at])]) {
                    if (text.compare(at, entry.text.size(), entry.text) == 0) {
                        found = &entry;
                        break;
                    }
                }
            }
            if (found == nullptr) break;
            --at;
            std::size_t start = at;
            std::size_t stop = at + found->text.size();
            pos = stop;
            const AddedToken& token = *found->token;
            if (token.single_word) {
                std::size_t len = 0;
                const bool start_ok = start == 0 || !is_word_char(char_before(text, start));
                const bool stop_ok = stop == text.size() || !is_word_char(char_at(text, stop, len));
                if (!start_ok || !stop_ok) continue;
            }
            if (token.lstrip) {
                while (start > start_offset && is_white_space(char_before(text, start))) {
                    std::size_t back = start - 1;
                    while (back > 0 && (static_cast<unsigned char>(text[back]) & 0xC0) == 0x80) --back;
                    start = back;
                }
            }
            if (token.rstrip) {
                std::size_t len = 0;
                while (stop < text.size() && is_white_space(char_at(text, stop, len))) stop += len;
                pos = stop;
            }
            if (start > start_offset) on_part(text.substr(start_offset, start - start_offset), nullptr, start_offset);
            on_part(text.substr(start, stop - start), &token, start);
            start_offset = stop;
        }
    }
    if (start_offset < text.size()) on_part(text.substr(start_offset), nullptr, start_offset);
}

}  // namespace
}  // namespace detail

using namespace detail;

void Tokenizer::Impl::finish() {
    const std::size_t v = token_string.size();
    has_token.resize(v, 0);
    special.assign(v, 0);
    for (const AddedToken& token : added) {
        token_string[static_cast<std::size_t>(token.id)] = token.content;
        has_token[static_cast<std::size_t>(token.id)] = 1;
        special[static_cast<std::size_t>(token.id)] = token.special ? 1 : 0;
    }
    token_bytes.assign(v, {});
    for (std::size_t id = 0; id < v; ++id) {
        if (!has_token[id]) continue;
        for (const std::string& part : run_decoders({token_string[id]}, true)) token_bytes[id] += part;
    }
    normalized_content.clear();
    for (const AddedToken& token : added) {
        normalized_content.push_back(token.normalized ? normalize(token.content) : token.content);
    }
    for (std::size_t i = 0; i < added.size(); ++i) {
        (added[i].normalized ? normalized_matcher : raw_matcher).add(normalized_content[i], &added[i]);
    }
    raw_matcher.sort();
    normalized_matcher.sort();
}

std::string Tokenizer::Impl::normalize(std::string text) const {
    for (const Normalizer& n : normalizers) {
        switch (n.kind) {
        case NormalizerKind::Prepend:
            if (!text.empty()) text = n.text + text;
            break;
        case NormalizerKind::Replace: {
            std::string out;
            for (const Span& s : find_spans(*n.pattern, text)) {
                out += s.is_match ? n.text : text.substr(s.begin, s.end - s.begin);
            }
            text = std::move(out);
            break;
        }
        default:
            text = unicode_normalize(text, n.kind);
            break;
        }
    }
    return text;
}

std::vector<int> Tokenizer::Impl::encode(std::string_view text, bool add_special_tokens) const {
    validate_utf8(text);
    std::vector<int> ids;
    ids.reserve(text.size() / 3 + prefix_ids.size() + suffix_ids.size());
    if (add_special_tokens) ids = prefix_ids;
    split_added(raw_matcher, text, [&](std::string_view part, const AddedToken* token, std::size_t offset) {
        if (token != nullptr) {
            ids.push_back(token->id);
        } else {
            encode_section(part, offset == 0, ids);
        }
    });
    if (add_special_tokens) ids.insert(ids.end(), suffix_ids.begin(), suffix_ids.end());
    return ids;
}

void Tokenizer::Impl::encode_section(std::string_view section, bool at_start, std::vector<int>& ids) const {
    if (normalizers.empty() && !normalized_matcher.any) {
        encode_normalized(section, at_start, ids);
        return;
    }
    const std::string normalized = normalize(std::string(section));
    split_added(normalized_matcher, normalized,
                [&](std::string_view part, const AddedToken* token, std::size_t offset) {
                    if (token != nullptr) {
                        ids.push_back(token->id);
                    } else {
                        encode_normalized(part, at_start && offset == 0, ids);
                    }
                });
}

void Tokenizer::Impl::encode_normalized(std::string_view text, bool at_start, std::vector<int>& ids) const {
    struct Piece {
        std::string text;
        bool at_start;  // begins at offset 0 of the original text (Metaspace's prepend_scheme "first")
    };
    std::vector<Piece> pieces{{std::string(text), at_start}};
    std::vector<Piece> next;
    const auto split_into = [&](const Piece& piece, const Regex& pattern, SplitBehavior behavior, bool invert) {
        bool first = true;
        for (const auto& [b, e] : apply_behavior(find_spans(pattern, piece.text), behavior, invert)) {
            if (e > b) next.push_back({piece.text.substr(b, e - b), piece.at_start && first});
            first = false;
        }
    };
    for (const PreTokenizer& step : pre_tokenizers) {
        next.clear();
        for (Piece& piece : pieces) {
            switch (step.kind) {
            case PreTokenizerKind::Split:
                split_into(piece, *step.pattern, step.behavior, step.invert);
                break;
            case PreTokenizerKind::ByteLevel:
                if (step.add_prefix_space && !piece.text.starts_with(' ')) piece.text.insert(0, " ");
                if (step.pattern) {
                    split_into(piece, *step.pattern, SplitBehavior::Isolated, false);
                } else {
                    next.push_back(std::move(piece));
                }
                break;
            case PreTokenizerKind::Metaspace:
                piece.text = replace_all(piece.text, " ", step.replacement);
                if (!piece.text.starts_with(step.replacement) &&
                    (step.prepend_scheme == PrependScheme::Always ||
                     (step.prepend_scheme == PrependScheme::First && piece.at_start))) {
                    piece.text.insert(0, step.replacement);
                }
                if (step.pattern) {
                    split_into(piece, *step.pattern, SplitBehavior::MergedWithNext, false);
                } else {
                    next.push_back(std::move(piece));
                }
                break;
            }
        }
        std::swap(pieces, next);
    }
    for (const Piece& piece : pieces) {
        if (!piece.text.empty()) append_piece(piece.text, ids);
    }
}

// BPE as the tokenizers crate's Word::merge_all does: a heap of candidate pairs ordered by (rank, position), so a
// long piece costs O(n log n). With merge_all_occurrences, each rank is applied to the whole piece before the
// pairs it creates are considered, as encoder.py's rescanning bpe() does.
std::vector<int> Tokenizer::Impl::bpe(std::string_view piece) const {
    struct Node {
        int symbol;  // -1 once merged into the node on its left
        int next;    // index of the next live node, -1 at the end
        int prev;
    };
    struct Candidate {
        int rank;
        int pos;  // node holding the left symbol
        int left;
        int right;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };

    std::vector<Node> nodes;
    nodes.reserve(piece.size());
    const auto push_symbol = [&](int symbol) {
        const int n = static_cast<int>(nodes.size());
        if (n > 0) nodes.back().next = n;
        nodes.push_back({symbol, -1, n - 1});
    };
    if (byte_level) {
        for (const char c : piece) {
            const int symbol = byte_symbol[static_cast<unsigned char>(c)];
            if (symbol < 0) {
                throw Error("encoding the text piece " + escaped(piece) + " needs a token for the byte " +
                            escaped(std::string(1, c)) + ", but " + vocab_file + " has none");
            }
            push_symbol(symbol);
        }
    } else {
        bool unk_pending = false;
        for (std::size_t i = 0; i < piece.size();) {
            std::size_t len = 1;
            char_at(piece, i, len);
            const std::string_view ch = piece.substr(i, len);
            i += len;
            if (const auto it = symbol_of.find(ch); it != symbol_of.end()) {
                push_symbol(it->second);
                unk_pending = false;
                continue;
            }
            if (byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char b) {
                    return fallback_symbol[static_cast<unsigned char>(b)] >= 0;
                })) {
                for (const char b : ch) push_symbol(fallback_symbol[static_cast<unsigned char>(b)]);
                unk_pending = false;
                continue;
            }
            if (unk_id < 0) {
                throw Error("encoding the text piece " + escaped(piece) + " needs a token for the character " +
                            escaped(ch) + ", but " + vocab_file +
                            " has none, and neither byte fallback nor an unknown token");
            }
            if (!(fuse_unk && unk_pending)) push_symbol(unk_id);
            unk_pending = true;
        }
    }
    if (nodes.empty()) return {};

    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    const auto push_pair = [&](int pos) {
        if (pos < 0 || nodes[pos].next < 0) return;
        const int left = nodes[pos].symbol;
        const int right = nodes[nodes[pos].next].symbol;
        if (const auto it = merges.find(pair_key(left, right)); it != merges.end()) {
            heap.push({it->second.rank, pos, left, right});
        }
    };
    for (int i = 0; i + 1 < static_cast<int>(nodes.size()); ++i) push_pair(i);

    // Merges the candidate if its pair still stands; returns whether it did.
    const auto merge = [&](const Candidate& c) {
        // Symbols only ever grow, so a node whose symbol and neighbour still match was not merged since.
        Node& left = nodes[c.pos];
        if (left.symbol != c.left || left.next < 0 || nodes[left.next].symbol != c.right) return false;
        Node& right = nodes[left.next];
        left.symbol = merges.at(pair_key(c.left, c.right)).result;
        left.next = right.next;
        if (right.next >= 0) nodes[right.next].prev = c.pos;
        right.symbol = -1;
        return true;
    };
    std::vector<int> merged_at;
    while (!heap.empty()) {
        if (!merge_all_occurrences) {
            const Candidate c = heap.top();
            heap.pop();
            if (merge(c)) {
                push_pair(nodes[c.pos].prev);
                push_pair(c.pos);
            }
            continue;
        }
        const int rank = heap.top().rank;
        merged_at.clear();
        while (!heap.empty() && heap.top().rank == rank) {
            const Candidate c = heap.top();
            heap.pop();
            if (merge(c)) merged_at.push_back(c.pos);
        }
        for (const int pos : merged_at) {
            push_pair(nodes[pos].prev);
            push_pair(pos);
        }
    }

    std::vector<int> symbols;
    for (int i = 0; i >= 0; i = nodes[i].next) {
        const int symbol = nodes[i].symbol;
        if (symbol >= vocab_size()) {
            throw Error("encoding the text piece " + escaped(piece) + " needs a token for the bytes " +
                        escaped(symbol_bytes(symbol)) + ", but " + vocab_file + " has none");
        }
        symbols.push_back(symbol);
    }
    return symbols;
}

void Tokenizer::Impl::append_piece(std::string_view piece, std::vector<int>& ids) const {
    // Pieces longer than this are not cached: they are rare (long runs of letters or spaces) and would let one
    // large input fill the cache.
    constexpr std::size_t k_max_cached_piece = 64;
    // The cache is dropped when it reaches this many pieces, so memory stays bounded on endless input.
    constexpr std::size_t k_max_cache_entries = 1 << 16;

    if (byte_level && piece.size() == 1) {
        const int symbol = byte_symbol[static_cast<unsigned char>(piece[0])];
        if (symbol >= 0 && symbol < vocab_size()) {
            ids.push_back(symbol);
            return;
        }
    }
    if (ignore_merges) {
        if (const auto it = symbol_of.find(piece); it != symbol_of.end() && it->second < vocab_size()) {
            ids.push_back(it->second);
            return;
        }
    }
    if (piece.size() > k_max_cached_piece) {
        const std::vector<int> symbols = bpe(piece);
        ids.insert(ids.end(), symbols.begin(), symbols.end());
        return;
    }
    {
        const std::lock_guard lock(cache_mutex);
        if (const auto it = cache.find(piece); it != cache.end()) {
            ids.insert(ids.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int> symbols = bpe(piece);
    ids.insert(ids.end(), symbols.begin(), symbols.end());
    const std::lock_guard lock(cache_mutex);
    if (cache.size() >= k_max_cache_entries) cache.clear();
    cache.emplace(std::string(piece), std::move(symbols));
}

// The decoder chain, each step over the list of token strings as in the tokenizers crate's decode_chain. With
// position_free, the steps that treat the first token or the start of the text specially (Strip, Metaspace's
// prepend scheme) act as they would in the middle of a text.
std::vector<std::string> Tokenizer::Impl::run_decoders(std::vector<std::string> tokens, bool position_free) const {
    for (const Decoder& d : decoders) {
        switch (d.kind) {
        case DecoderKind::ByteLevel: {
            // The tokenizers crate falls back to a token's own bytes when a character is outside the table (added
            // tokens such as "<|im_start|>" are written as plain text).
            std::string bytes;
            for (const std::string& t : tokens) {
                const std::optional<std::string> raw = byte_table().to_bytes(t);
                bytes += raw ? *raw : t;
            }
            tokens = {std::move(bytes)};
            break;
        }
        case DecoderKind::Replace:
            for (std::string& t : tokens) t = replace_all(t, d.from, d.to);
            break;
        case DecoderKind::ByteFallback: {
            // Runs of "<0xXX>" become their bytes, kept as they are where Hugging Face would put U+FFFD.
            std::vector<std::string> out;
            std::string pending;
            bool in_run = false;
            for (std::string& t : tokens) {
                if (const auto b = fallback_byte(t)) {
                    pending += static_cast<char>(*b);
                    in_run = true;
                    continue;
                }
                if (in_run) out.push_back(std::move(pending));
                pending.clear();
                in_run = false;
                out.push_back(std::move(t));
            }
            if (in_run) out.push_back(std::move(pending));
            tokens = std::move(out);
            break;
        }
        case DecoderKind::Fuse: {
            std::string joined;
            for (const std::string& t : tokens) joined += t;
            tokens = {std::move(joined)};
            break;
        }
        case DecoderKind::Strip:
            if (!position_free) {
                for (std::string& t : tokens) t = strip_chars(std::move(t), d.from, d.start, d.stop);
            }
            break;
        case DecoderKind::Metaspace:
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                const bool drop = i == 0 && !position_free && d.prepend_scheme != PrependScheme::Never;
                tokens[i] = replace_all(tokens[i], d.from, drop ? "" : " ");
            }
            break;
        }
    }
    return tokens;
}

void Tokenizer::Impl::check_id(int id, std::size_t position, bool with_position) const {
    const std::string where = with_position ? " at position " + std::to_string(position) : "";
    if (id < 0 || id >= vocab_size()) {
        throw Error("token id " + std::to_string(id) + where + " is outside the vocabulary, expected an id in [0, " +
                    std::to_string(vocab_size()) + ")");
    }
    if (!has_token[static_cast<std::size_t>(id)]) {
        throw Error("token id " + std::to_string(id) + where + " has no token in " + vocab_file +
                    " (the vocabulary skips it)");
    }
}

std::string Tokenizer::Impl::decode(std::span<const int> ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        check_id(ids[i], i, true);
        const auto id = static_cast<std::size_t>(ids[i]);
        if (skip_special_tokens && special[id]) continue;
        tokens.push_back(token_string[id]);
    }
    std::string text;
    for (const std::string& part : run_decoders(std::move(tokens), false)) text += part;
    return text;
}

// ---- Tokenizer ----

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

// generation_config.json's eos_token_id, an id or a list of ids (Llama 3 Instruct stops at three), or none.
std::vector<int> generation_eos(const std::filesystem::path& path, int vocab_size) {
    const std::string name = path.string();
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(read_regular_file(path, "generation_config.json", ""));
    } catch (const nlohmann::json::exception& e) {
        throw Error(name + ": expected a JSON object, but it is " + json_error(e));
    }
    if (!config.is_object()) throw Error(name + ": expected a JSON object, found a JSON " + std::string(config.type_name()));
    const auto it = config.find("eos_token_id");
    if (it == config.end() || it->is_null()) return {};
    const nlohmann::json list = it->is_array() ? *it : nlohmann::json::array({*it});
    std::vector<int> ids;
    for (const nlohmann::json& v : list) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab_size) {
            throw Error(name + ": eos_token_id has " +
                        (v.is_number() ? v.dump() : "a JSON " + std::string(v.type_name())) +
                        ", expected ids in [0, " + std::to_string(vocab_size) + ")");
        }
        ids.push_back(v.get<int>());
    }
    return ids;
}

}  // namespace

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    const auto tokenizer = [&] {
        if (std::filesystem::exists(dir / "tokenizer.json", ec)) {
            const std::filesystem::path config = dir / "tokenizer_config.json";
            return from_tokenizer_json(dir / "tokenizer.json",
                                       std::filesystem::exists(config, ec) ? config : std::filesystem::path());
        }
        if (!std::filesystem::exists(dir / "vocab.json", ec) && std::filesystem::is_directory(dir, ec)) {
            throw Error("expected a tokenizer in " + dir.string() +
                        ": tokenizer.json, or GPT-2's vocab.json and merges.txt, but there is neither");
        }
        return from_files(dir / "vocab.json", dir / "merges.txt");
    };
    Tokenizer tok = tokenizer();
    // The model's own stop tokens: tokenizer_config.json names one, generation_config.json may list several.
    if (const std::filesystem::path gen = dir / "generation_config.json"; std::filesystem::exists(gen, ec)) {
        for (const int id : generation_eos(gen, tok.vocab_size())) {
            std::vector<int>& eos = tok.impl_->eos;
            if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
        }
    }
    return tok;
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
    auto impl = std::make_unique<Impl>();
    const ByteTable& table = byte_table();
    const std::string vocab_name = vocab_json.string();
    const std::string merges_name = merges_txt.string();
    const std::string hint = " (scripts/fetch-gpt2-vocab.sh fetches it)";
    impl->vocab_file = "vocab.json";
    impl->byte_level = true;
    impl->merge_all_occurrences = true;

    nlohmann::json vocab;
    try {
        vocab = nlohmann::json::parse(read_regular_file(vocab_json, "GPT-2 vocab.json", hint));
    } catch (const nlohmann::json::exception& e) {
        const auto* pe = dynamic_cast<const nlohmann::json::parse_error*>(&e);
        throw Error(vocab_name + ": expected a JSON object of token -> id, but it is not valid JSON" +
                    (pe ? " (syntax error near byte " + std::to_string(pe->byte) + ")" : std::string(" (a number out of range)")));
    }
    if (!vocab.is_object() || vocab.empty()) {
        throw Error(vocab_name + ": expected a non-empty JSON object of token -> id, found a JSON " +
                    std::string(vocab.type_name()));
    }

    // Ids must be exactly 0..V-1, since they index the embedding rows.
    const std::size_t size = vocab.size();
    impl->token_string.resize(size);
    impl->has_token.assign(size, 0);
    for (const auto& [token, value] : vocab.items()) {
        const bool in_range = value.is_number_unsigned() ? value.get<std::uint64_t>() < size
                              : value.is_number_integer()
                                  ? value.get<std::int64_t>() >= 0 && value.get<std::int64_t>() < std::int64_t(size)
                                  : false;
        if (!in_range) {
            const std::string shown = value.is_string()    ? escaped(value.get<std::string>())
                                      : value.is_number() ? value.dump()
                                                          : "a JSON " + std::string(value.type_name());
            throw Error(vocab_name + ": token " + escaped(token) + " has id " + shown +
                        ", expected an integer in [0, " + std::to_string(size) + ") since the file has " +
                        std::to_string(size) + " tokens");
        }
        const auto id = value.get<std::size_t>();
        if (impl->has_token[id]) {
            throw Error(vocab_name + ": id " + std::to_string(id) +
                        " is given to more than one token, the second being " + escaped(token));
        }
        impl->has_token[id] = 1;
        std::optional<std::string> bytes = table.to_bytes(token);
        if (!bytes) {
            throw Error(vocab_name + ": token " + escaped(token) + " (id " + std::to_string(id) +
                        ") has a character outside GPT-2's byte-to-unicode table");
        }
        impl->symbol_of.emplace(std::move(*bytes), static_cast<int>(id));
        impl->token_string[id] = token;
    }
    const auto eos = vocab.find("<|endoftext|>");
    if (eos == vocab.end()) throw Error(vocab_name + ": expected a token \"<|endoftext|>\", found none");
    impl->eos = {eos->get<int>()};
    impl->added.push_back({.id = impl->eos[0], .content = "<|endoftext|>", .special = true});
    impl->pre_tokenizers.push_back(
        {.kind = PreTokenizerKind::ByteLevel, .pattern = compile_regex(gpt2_pattern(), false, "GPT-2")});
    impl->decoders.push_back({.kind = DecoderKind::ByteLevel});

    const auto symbol = [&](const std::string& bytes) {
        const auto [it, inserted] =
            impl->symbol_of.try_emplace(bytes, static_cast<int>(size + impl->extra_bytes.size()));
        if (inserted) impl->extra_bytes.push_back(bytes);
        return it->second;
    };
    for (int b = 0; b < 256; ++b) impl->byte_symbol[b] = symbol(std::string(1, static_cast<char>(b)));
    impl->fallback_symbol.fill(-1);

    std::istringstream merges(read_regular_file(merges_txt, "GPT-2 merges.txt", hint));
    std::string line;
    int line_number = 0;
    int rank = 0;
    while (std::getline(merges, line)) {
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line_number == 1 && line.starts_with("#version")) continue;
        if (line.empty()) continue;
        const std::size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string::npos) {
            throw Error(merges_name + " line " + std::to_string(line_number) +
                        ": expected two tokens separated by one space, found " + escaped(line));
        }
        const auto left = table.to_bytes(std::string_view(line).substr(0, space));
        const auto right = table.to_bytes(std::string_view(line).substr(space + 1));
        if (!left || !right) {
            throw Error(merges_name + " line " + std::to_string(line_number) + ": " + escaped(line) +
                        " has a character outside GPT-2's byte-to-unicode table");
        }
        const Merge merge{rank, symbol(*left + *right)};
        if (!impl->merges.emplace(pair_key(symbol(*left), symbol(*right)), merge).second) {
            throw Error(merges_name + " line " + std::to_string(line_number) + ": the merge " + escaped(line) +
                        " already appeared on an earlier line");
        }
        ++rank;
    }
    impl->finish();
    return Tokenizer(std::move(impl));
}

std::vector<int> Tokenizer::encode(std::string_view text) const { return impl_->encode(text, true); }

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    return impl_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(std::span<const int> ids) const { return impl_->decode(ids, false); }

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special_tokens) const {
    return impl_->decode(ids, skip_special_tokens);
}

std::string Tokenizer::decode_bytes(std::span<const int> ids) const {
    std::string bytes;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        impl_->check_id(ids[i], i, true);
        bytes += impl_->token_bytes[static_cast<std::size_t>(ids[i])];
    }
    return bytes;
}

std::string Tokenizer::token_text(int id) const {
    impl_->check_id(id, 0, false);
    return impl_->token_bytes[static_cast<std::size_t>(id)];
}

bool Tokenizer::is_special(int id) const {
    impl_->check_id(id, 0, false);
    return impl_->special[static_cast<std::size_t>(id)] != 0;
}

std::optional<int> Tokenizer::bos_id() const { return impl_->bos; }

std::vector<int> Tokenizer::eos_ids() const { return impl_->eos; }

int Tokenizer::eos_id() const {
    if (impl_->eos.empty()) {
        throw Error("the tokenizer has no end-of-sequence token (tokenizer_config.json names no eos_token)");
    }
    return impl_->eos.front();
}

int Tokenizer::vocab_size() const { return impl_->vocab_size(); }

}  // namespace vkattn::model
