// GPT-2 byte-level BPE, following OpenAI's gpt-2/src/encoder.py: text is split on "<|endoftext|>", each
// part is cut into pieces by the pre-tokenisation regex, and each piece's UTF-8 bytes are merged pair by
// pair, lowest merge rank first. The byte-to-unicode table only exists so that vocab.json and merges.txt
// can be text; internally every token is its raw bytes.
#include <vkattn/model/tokenizer.hpp>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vkattn/error.hpp>

namespace vkattn::model {
namespace {

constexpr std::string_view k_eos_text = "<|endoftext|>";

// Pieces longer than this are not cached: they are rare (long runs of letters or spaces) and would let one
// large input fill the cache.
constexpr std::size_t k_max_cached_piece = 64;
// The cache is dropped when it reaches this many pieces, so memory stays bounded on endless input.
constexpr std::size_t k_max_cache_entries = 1 << 16;

// OpenAI's pattern, with \s spelled out as the Unicode White_Space property. Python's `regex` module (and
// tiktoken) use White_Space for \s, but PCRE2's \s under UCP also matches U+180E MONGOLIAN VOWEL SEPARATOR,
// which would split differently around that character.
std::string gpt2_pattern() {
    const std::string ws =
        R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" + ws + R"(\p{L}\p{N}]+|[)" + ws + "]+(?![^" + ws +
           "])|[" + ws + "]+";
}

// Decodes the UTF-8 character at s[i] into cp and len; returns what is wrong with it, or nullptr if valid.
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

std::string hex_byte(unsigned char b) {
    constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 0xF];
}

// Bytes as a quoted string with control and non-ASCII bytes escaped, for error messages.
std::string escaped(std::string_view bytes) {
    std::string out = "\"";
    const bool cut = bytes.size() > 48;  // messages never echo untrusted input beyond a short prefix
    if (cut) bytes = bytes.substr(0, 48);
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F && c != '"' && c != '\\') {
            out += c;
        } else {
            out += "\\x" + hex_byte(b).substr(2);
        }
    }
    return out + (cut ? "\"..." : "\"");
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

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes are moved to
// U+0100..U+0143 so that every byte has a visible, non-space character in the vocabulary files.
struct ByteTable {
    static constexpr char32_t k_end = 0x100 + 68;
    std::array<int, k_end> byte_of{};  // code point -> byte, or -1

    ByteTable() {
        byte_of.fill(-1);
        int moved = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            byte_of[printable ? b : 0x100 + moved++] = b;
        }
    }

    // The raw bytes a vocabulary string stands for, or nullopt if it has a character outside the table.
    std::optional<std::string> to_bytes(std::string_view text) const {
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
};

std::string read_file(const std::filesystem::path& path, const char* what) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw Error("expected the GPT-2 " + std::string(what) + " at " + path.string() +
                    ", but there is no such file (scripts/fetch-gpt2-vocab.sh fetches it)");
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in) throw Error("could not read the GPT-2 " + std::string(what) + " at " + path.string());
    return std::move(contents).str();
}

std::uint64_t pair_key(int left, int right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

struct Pcre2CodeFree {
    void operator()(pcre2_code* code) const noexcept { pcre2_code_free(code); }
};
struct Pcre2MatchDataFree {
    void operator()(pcre2_match_data* data) const noexcept { pcre2_match_data_free(data); }
};

// Lets the cache be searched with a string_view without building a std::string per piece.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct Tokenizer::Impl {
    struct Merge {
        int rank;
        int result;  // symbol of the merged pair
    };

    // Symbols are vocabulary ids, plus ids from vocab_size() up for byte strings that merges.txt builds but
    // vocab.json lacks; encoding fails only if such a symbol survives to the output.
    std::vector<std::string> token_bytes_;  // [V] the bytes of each token id
    std::vector<std::string> extra_bytes_;  // bytes of symbol vocab_size() + i
    std::array<int, 256> byte_symbol_{};
    std::unordered_map<std::uint64_t, Merge> merges_;  // pair_key(left, right) -> rank and result
    int eos_id_ = -1;
    std::unique_ptr<pcre2_code, Pcre2CodeFree> pattern_;

    // Pieces repeat heavily in natural text (" the", ","), so their BPE is remembered; the mutex keeps
    // encode() safe to call from several threads on one Tokenizer.
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>> cache_;

    int vocab_size() const { return static_cast<int>(token_bytes_.size()); }

    const std::string& symbol_bytes(int symbol) const {
        return symbol < vocab_size() ? token_bytes_[symbol] : extra_bytes_[symbol - vocab_size()];
    }

    void append_piece(std::string_view piece, std::vector<int>& ids) const;
    std::vector<int> bpe(std::string_view piece) const;
    void encode_segment(std::string_view segment, pcre2_match_data* match, std::vector<int>& ids) const;
};

// Repeatedly merges every occurrence of the lowest-ranked adjacent pair, exactly as encoder.py's bpe() does,
// but with a heap of candidate pairs instead of rescanning the word, so a long piece costs O(n log n).
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

    const int n = static_cast<int>(piece.size());
    std::vector<Node> nodes(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        nodes[i] = {byte_symbol_[static_cast<unsigned char>(piece[i])], i + 1 < n ? i + 1 : -1, i - 1};
    }

    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    const auto push_pair = [&](int pos) {
        if (pos < 0 || nodes[pos].next < 0) return;
        const int left = nodes[pos].symbol;
        const int right = nodes[nodes[pos].next].symbol;
        if (const auto it = merges_.find(pair_key(left, right)); it != merges_.end()) {
            heap.push({it->second.rank, pos, left, right});
        }
    };
    for (int i = 0; i + 1 < n; ++i) push_pair(i);

    std::vector<int> merged_at;
    while (!heap.empty()) {
        // One batch merges, left to right, every occurrence of the best pair that exists when the batch starts.
        // Pairs it creates are queued only afterwards: encoder.py rescans the whole word before choosing the
        // next pair, and a crafted merges.txt could rank a new pair below the current one.
        const int rank = heap.top().rank;
        merged_at.clear();
        while (!heap.empty() && heap.top().rank == rank) {
            const Candidate c = heap.top();
            heap.pop();
            // Symbols only ever grow, so a node whose symbol and neighbour still match was not merged since.
            Node& left = nodes[c.pos];
            if (left.symbol != c.left || left.next < 0 || nodes[left.next].symbol != c.right) continue;
            Node& right = nodes[left.next];
            left.symbol = merges_.at(pair_key(c.left, c.right)).result;
            left.next = right.next;
            if (right.next >= 0) nodes[right.next].prev = c.pos;
            right.symbol = -1;
            merged_at.push_back(c.pos);
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
                        escaped(symbol_bytes(symbol)) + ", but vocab.json has none");
        }
        symbols.push_back(symbol);
    }
    return symbols;
}

void Tokenizer::Impl::append_piece(std::string_view piece, std::vector<int>& ids) const {
    if (piece.size() == 1) {
        const int symbol = byte_symbol_[static_cast<unsigned char>(piece[0])];
        if (symbol < vocab_size()) {
            ids.push_back(symbol);
            return;
        }
    }
    if (piece.size() > k_max_cached_piece) {
        const std::vector<int> symbols = bpe(piece);
        ids.insert(ids.end(), symbols.begin(), symbols.end());
        return;
    }
    {
        const std::lock_guard lock(cache_mutex_);
        if (const auto it = cache_.find(piece); it != cache_.end()) {
            ids.insert(ids.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int> symbols = bpe(piece);
    ids.insert(ids.end(), symbols.begin(), symbols.end());
    const std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= k_max_cache_entries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(symbols));
}

void Tokenizer::Impl::encode_segment(std::string_view segment, pcre2_match_data* match,
                                     std::vector<int>& ids) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(segment.data());
    std::size_t offset = 0;
    while (offset < segment.size()) {
        // The text was validated as a whole, and a segment boundary never splits a character.
        const int rc = pcre2_match(pattern_.get(), subject, segment.size(), offset, PCRE2_NO_UTF_CHECK, match, nullptr);
        std::size_t start = segment.size();
        std::size_t end = segment.size();
        if (rc >= 0) {
            const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
            start = ovector[0];
            end = ovector[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            std::array<PCRE2_UCHAR, 256> message{};
            pcre2_get_error_message(rc, message.data(), message.size());
            throw Error("pre-tokenising the text at byte offset " + std::to_string(offset) +
                        " failed: " + reinterpret_cast<const char*>(message.data()));
        }
        // Every character matches some alternative of the pattern, so there are no gaps; if there were, the
        // skipped bytes are still encoded so that decode(encode(s)) == s holds regardless.
        if (start > offset) append_piece(segment.substr(offset, start - offset), ids);
        if (end == start && start < segment.size()) {
            throw Error("the pre-tokenisation pattern matched nothing at byte offset " + std::to_string(start) +
                        ", expected every alternative to consume a character");
        }
        if (end > start) append_piece(segment.substr(start, end - start), ids);
        offset = end;
    }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
    return from_files(dir / "vocab.json", dir / "merges.txt");
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
    auto impl = std::make_unique<Impl>();
    const ByteTable table;
    const std::string vocab_name = vocab_json.string();
    const std::string merges_name = merges_txt.string();

    nlohmann::json vocab;
    try {
        vocab = nlohmann::json::parse(read_file(vocab_json, "vocab.json"));
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
    std::unordered_map<std::string, int> symbol_of;
    impl->token_bytes_.resize(size);
    std::vector<bool> seen(size, false);
    for (const auto& [token, value] : vocab.items()) {
        const bool in_range = value.is_number_unsigned() ? value.get<std::uint64_t>() < size
                              : value.is_number_integer()
                                  ? value.get<std::int64_t>() >= 0 && value.get<std::int64_t>() < std::int64_t(size)
                                  : false;
        if (!in_range) {
            throw Error(vocab_name + ": token " + escaped(token) + " has id " +
                        (value.is_primitive() ? value.dump(-1, ' ', true).substr(0, 48) : "a JSON " + std::string(value.type_name())) +
                        ", expected an integer in [0, " + std::to_string(size) + ") since the file has " +
                        std::to_string(size) + " tokens");
        }
        const auto id = value.get<std::size_t>();
        if (seen[id]) {
            throw Error(vocab_name + ": id " + std::to_string(id) +
                        " is given to more than one token, the second being " + escaped(token));
        }
        seen[id] = true;
        std::optional<std::string> bytes = table.to_bytes(token);
        if (!bytes) {
            throw Error(vocab_name + ": token " + escaped(token) + " (id " + std::to_string(id) +
                        ") has a character outside GPT-2's byte-to-unicode table");
        }
        symbol_of.emplace(*bytes, static_cast<int>(id));
        impl->token_bytes_[id] = std::move(*bytes);
    }
    if (const auto eos = vocab.find(k_eos_text); eos != vocab.end()) {
        impl->eos_id_ = eos->get<int>();
    } else {
        throw Error(vocab_name + ": expected a token \"<|endoftext|>\", found none");
    }

    const auto symbol = [&](const std::string& bytes) {
        const auto [it, inserted] =
            symbol_of.try_emplace(bytes, static_cast<int>(size + impl->extra_bytes_.size()));
        if (inserted) impl->extra_bytes_.push_back(bytes);
        return it->second;
    };
    for (int b = 0; b < 256; ++b) impl->byte_symbol_[b] = symbol(std::string(1, static_cast<char>(b)));

    std::istringstream merges(read_file(merges_txt, "merges.txt"));
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
        const Impl::Merge merge{rank, symbol(*left + *right)};
        if (!impl->merges_.emplace(pair_key(symbol(*left), symbol(*right)), merge).second) {
            throw Error(merges_name + " line " + std::to_string(line_number) + ": the merge " + escaped(line) +
                        " already appeared on an earlier line");
        }
        ++rank;
    }

    const std::string pattern = gpt2_pattern();
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    impl->pattern_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                       PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr));
    if (!impl->pattern_) {
        std::array<PCRE2_UCHAR, 256> message{};
        pcre2_get_error_message(error_code, message.data(), message.size());
        throw Error("PCRE2 rejected the GPT-2 pre-tokenisation pattern at offset " + std::to_string(error_offset) +
                    ": " + reinterpret_cast<const char*>(message.data()));
    }
    // Without JIT (a PCRE2 built without it, or W^X memory) matching falls back to the interpreter.
    pcre2_jit_compile(impl->pattern_.get(), PCRE2_JIT_COMPLETE);

    return Tokenizer(std::move(impl));
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
    validate_utf8(text);
    const std::unique_ptr<pcre2_match_data, Pcre2MatchDataFree> match(
        pcre2_match_data_create_from_pattern(impl_->pattern_.get(), nullptr));
    if (!match) throw Error("could not allocate PCRE2 match data");

    std::vector<int> ids;
    ids.reserve(text.size() / 3);
    for (std::size_t start = 0;;) {
        const std::size_t eos = text.find(k_eos_text, start);
        impl_->encode_segment(text.substr(start, eos == std::string_view::npos ? eos : eos - start), match.get(), ids);
        if (eos == std::string_view::npos) break;
        ids.push_back(impl_->eos_id_);
        start = eos + k_eos_text.size();
    }
    return ids;
}

std::string Tokenizer::decode(std::span<const int> ids) const {
    std::string text;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocab_size()) {
            throw Error("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                        " is outside the vocabulary, expected an id in [0, " + std::to_string(vocab_size()) + ")");
        }
        text += impl_->token_bytes_[static_cast<std::size_t>(ids[i])];
    }
    return text;
}

std::string Tokenizer::token_text(int id) const {
    if (id < 0 || id >= vocab_size()) {
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary, expected an id in [0, " +
                    std::to_string(vocab_size()) + ")");
    }
    return impl_->token_bytes_[static_cast<std::size_t>(id)];
}

int Tokenizer::eos_id() const { return impl_->eos_id_; }

int Tokenizer::vocab_size() const { return impl_->vocab_size(); }

}  // namespace vkattn::model
