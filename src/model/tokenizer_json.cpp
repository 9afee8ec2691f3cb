// Reads Hugging Face's tokenizer.json (the tokenizers crate's serialization) and tokenizer_config.json into the
// pipeline of tokenizer_impl.hpp. Only BPE models are implemented; every other component type is refused by name.
// Untrusted values never reach an error message whole: they are named by their JSON type, or quoted cut short.
#include "model/json_file.hpp"
#include "model/tokenizer_impl.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vkattn/error.hpp>

namespace vkattn::model {
namespace {

using json = nlohmann::json;
using namespace detail;

// Ids index embedding rows; a larger id in a file is a mistake (or an attempt to make us allocate gigabytes).
constexpr std::int64_t k_max_id = 1 << 24;
// Sequences of sequences deeper than this are refused rather than recursed into.
constexpr int k_max_depth = 16;

std::string describe(const json& v) {
    if (v.is_string()) return escaped(v.get_ref<const std::string&>());
    if (v.is_number() || v.is_boolean()) return v.dump();
    return "a JSON " + std::string(v.type_name());
}

json parse_file(const std::filesystem::path& path, const std::string& what) {
    const std::string text = read_regular_file(path, what, "");
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw Error(path.string() + ": expected " + what + ", but it is " + json_error(e));
    }
}

// Field access with one-line errors prefixed by the file name and the path of the value ("model.vocab").
class Reader {
public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string& where, const std::string& message) const {
        throw Error(file_ + ": " + where + " " + message);
    }

    const json& object(const json& v, const std::string& where) const {
        if (!v.is_object()) fail(where, "is " + describe(v) + ", expected a JSON object");
        return v;
    }
    // The field, or nullptr when it is missing or null.
    const json* find(const json& obj, const char* key) const {
        const auto it = obj.find(key);
        return it == obj.end() || it->is_null() ? nullptr : &*it;
    }
    const json& need(const json& obj, const char* key, const std::string& where) const {
        const json* v = find(obj, key);
        if (v == nullptr) fail(where, std::string("has no \"") + key + "\"");
        return *v;
    }
    std::string string(const json& obj, const char* key, const std::string& where) const {
        const json& v = need(obj, key, where);
        if (!v.is_string()) fail(where + "." + key, "is " + describe(v) + ", expected a string");
        return v.get<std::string>();
    }
    std::optional<std::string> optional_string(const json& obj, const char* key, const std::string& where) const {
        if (find(obj, key) == nullptr) return std::nullopt;
        return string(obj, key, where);
    }
    bool boolean(const json& obj, const char* key, bool fallback, const std::string& where) const {
        const json* v = find(obj, key);
        if (v == nullptr) return fallback;
        if (!v->is_boolean()) fail(where + "." + key, "is " + describe(*v) + ", expected true or false");
        return v->get<bool>();
    }
    std::int64_t integer(const json& v, const std::string& where, std::int64_t lo, std::int64_t hi) const {
        const bool ok = v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() < std::uint64_t(hi)
                                                                         : v.get<std::int64_t>() >= lo &&
                                                                               v.get<std::int64_t>() < hi);
        if (!ok || v.get<std::int64_t>() < lo) {
            fail(where, "is " + describe(v) + ", expected an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + ")");
        }
        return v.get<std::int64_t>();
    }
    std::string type(const json& obj, const std::string& where) const { return string(obj, "type", where); }

    // {"String": s} or {"Regex": r}, compiled.
    std::shared_ptr<const Regex> pattern(const json& obj, const std::string& where) const {
        const json& p = object(need(obj, "pattern", where), where + ".pattern");
        const json* s = find(p, "String");
        const json* r = find(p, "Regex");
        if ((s == nullptr) == (r == nullptr) || !(s ? *s : *r).is_string()) {
            fail(where + ".pattern", "is not {\"String\": text} or {\"Regex\": pattern}");
        }
        return compile_regex((s ? *s : *r).get<std::string>(), s != nullptr, file_ + ": " + where + ".pattern");
    }

    const std::string& file() const { return file_; }

private:
    std::string file_;
};

PrependScheme prepend_scheme(const Reader& r, const json& obj, const std::string& where) {
    if (const auto scheme = r.optional_string(obj, "prepend_scheme", where)) {
        if (*scheme == "always") return PrependScheme::Always;
        if (*scheme == "first") return PrependScheme::First;
        if (*scheme == "never") return PrependScheme::Never;
        r.fail(where + ".prepend_scheme", "is " + escaped(*scheme) + ", expected \"always\", \"first\" or \"never\"");
    }
    // Files written before prepend_scheme existed say add_prefix_space.
    return r.boolean(obj, "add_prefix_space", true, where) ? PrependScheme::Always : PrependScheme::Never;
}

std::string metaspace_replacement(const Reader& r, const json& obj, const std::string& where) {
    const std::string replacement = r.optional_string(obj, "replacement", where).value_or("\xE2\x96\x81");
    char32_t cp = 0;
    std::size_t len = 0;
    if (replacement.empty() || decode_utf8(replacement, 0, cp, len) != nullptr || len != replacement.size()) {
        r.fail(where + ".replacement", "is " + escaped(replacement) + ", expected one character");
    }
    return replacement;
}

void read_normalizer(const Reader& r, const json& v, const std::string& where, int depth, Tokenizer::Impl& impl) {
    if (depth > k_max_depth) r.fail(where, "nests sequences more than " + std::to_string(k_max_depth) + " deep");
    r.object(v, where);
    const std::string type = r.type(v, where);
    if (type == "Sequence") {
        const json& list = r.need(v, "normalizers", where);
        if (!list.is_array()) r.fail(where + ".normalizers", "is " + describe(list) + ", expected an array");
        for (std::size_t i = 0; i < list.size(); ++i) {
            read_normalizer(r, list[i], where + ".normalizers[" + std::to_string(i) + "]", depth + 1, impl);
        }
    } else if (type == "Prepend") {
        impl.normalizers.push_back({.kind = NormalizerKind::Prepend, .text = r.string(v, "prepend", where)});
    } else if (type == "Replace") {
        impl.normalizers.push_back(
            {.kind = NormalizerKind::Replace, .text = r.string(v, "content", where), .pattern = r.pattern(v, where)});
    } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
        const NormalizerKind kind = type == "NFC"   ? NormalizerKind::Nfc
                                    : type == "NFD" ? NormalizerKind::Nfd
                                    : type == "NFKC" ? NormalizerKind::Nfkc
                                                     : NormalizerKind::Nfkd;
        impl.normalizers.push_back({.kind = kind});
    } else {
        r.fail(where, "has type " + escaped(type) +
                          ", which vkattn does not implement (normalizers: Sequence, Prepend, Replace, NFC, NFD, "
                          "NFKC, NFKD)");
    }
}

void read_pre_tokenizer(const Reader& r, const json& v, const std::string& where, int depth, Tokenizer::Impl& impl) {
    if (depth > k_max_depth) r.fail(where, "nests sequences more than " + std::to_string(k_max_depth) + " deep");
    r.object(v, where);
    const std::string type = r.type(v, where);
    if (type == "Sequence") {
        const json& list = r.need(v, "pretokenizers", where);
        if (!list.is_array()) r.fail(where + ".pretokenizers", "is " + describe(list) + ", expected an array");
        for (std::size_t i = 0; i < list.size(); ++i) {
            read_pre_tokenizer(r, list[i], where + ".pretokenizers[" + std::to_string(i) + "]", depth + 1, impl);
        }
    } else if (type == "Split") {
        PreTokenizer p{.kind = PreTokenizerKind::Split, .pattern = r.pattern(v, where)};
        const std::string behavior = r.string(v, "behavior", where);
        if (behavior == "Removed") {
            p.behavior = SplitBehavior::Removed;
        } else if (behavior == "Isolated") {
            p.behavior = SplitBehavior::Isolated;
        } else if (behavior == "MergedWithPrevious") {
            p.behavior = SplitBehavior::MergedWithPrevious;
        } else if (behavior == "MergedWithNext") {
            p.behavior = SplitBehavior::MergedWithNext;
        } else if (behavior == "Contiguous") {
            p.behavior = SplitBehavior::Contiguous;
        } else {
            r.fail(where + ".behavior", "is " + escaped(behavior) +
                                            ", expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                                            "Contiguous");
        }
        p.invert = r.boolean(v, "invert", false, where);
        impl.pre_tokenizers.push_back(std::move(p));
    } else if (type == "ByteLevel") {
        PreTokenizer p{.kind = PreTokenizerKind::ByteLevel};
        p.add_prefix_space = r.boolean(v, "add_prefix_space", true, where);
        if (r.boolean(v, "use_regex", true, where)) p.pattern = compile_regex(gpt2_pattern(), false, "GPT-2");
        impl.pre_tokenizers.push_back(std::move(p));
        impl.byte_level = true;
    } else if (type == "Metaspace") {
        PreTokenizer p{.kind = PreTokenizerKind::Metaspace};
        p.replacement = metaspace_replacement(r, v, where);
        p.prepend_scheme = prepend_scheme(r, v, where);
        if (r.boolean(v, "split", true, where)) p.pattern = compile_regex(p.replacement, true, r.file());
        impl.pre_tokenizers.push_back(std::move(p));
    } else if (type == "Digits") {
        // char::is_numeric is the Unicode categories Nd, Nl and No, which \p{N} is.
        const bool individual = r.boolean(v, "individual_digits", false, where);
        impl.pre_tokenizers.push_back({.kind = PreTokenizerKind::Split,
                                       .pattern = compile_regex("\\p{N}", false, r.file()),
                                       .behavior = individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous});
    } else {
        r.fail(where, "has type " + escaped(type) +
                          ", which vkattn does not implement (pre-tokenizers: Sequence, Split, ByteLevel, Metaspace, "
                          "Digits)");
    }
}

void read_decoder(const Reader& r, const json& v, const std::string& where, int depth, Tokenizer::Impl& impl) {
    if (depth > k_max_depth) r.fail(where, "nests sequences more than " + std::to_string(k_max_depth) + " deep");
    r.object(v, where);
    const std::string type = r.type(v, where);
    if (type == "Sequence") {
        const json& list = r.need(v, "decoders", where);
        if (!list.is_array()) r.fail(where + ".decoders", "is " + describe(list) + ", expected an array");
        for (std::size_t i = 0; i < list.size(); ++i) {
            read_decoder(r, list[i], where + ".decoders[" + std::to_string(i) + "]", depth + 1, impl);
        }
    } else if (type == "ByteLevel") {
        impl.decoders.push_back({.kind = DecoderKind::ByteLevel});
    } else if (type == "Replace") {
        const json& p = r.object(r.need(v, "pattern", where), where + ".pattern");
        const json* s = r.find(p, "String");
        if (s == nullptr || !s->is_string()) {
            r.fail(where + ".pattern", "is not {\"String\": text} (a Regex pattern in a decoder is not implemented)");
        }
        impl.decoders.push_back(
            {.kind = DecoderKind::Replace, .from = s->get<std::string>(), .to = r.string(v, "content", where)});
    } else if (type == "ByteFallback") {
        impl.decoders.push_back({.kind = DecoderKind::ByteFallback});
    } else if (type == "Fuse") {
        impl.decoders.push_back({.kind = DecoderKind::Fuse});
    } else if (type == "Strip") {
        Decoder d{.kind = DecoderKind::Strip, .from = r.string(v, "content", where)};
        d.start = static_cast<std::size_t>(r.integer(r.need(v, "start", where), where + ".start", 0, 1 << 20));
        d.stop = static_cast<std::size_t>(r.integer(r.need(v, "stop", where), where + ".stop", 0, 1 << 20));
        impl.decoders.push_back(std::move(d));
    } else if (type == "Metaspace") {
        impl.decoders.push_back({.kind = DecoderKind::Metaspace,
                                 .from = metaspace_replacement(r, v, where),
                                 .prepend_scheme = prepend_scheme(r, v, where)});
    } else {
        r.fail(where, "has type " + escaped(type) +
                          ", which vkattn does not implement (decoders: Sequence, ByteLevel, Replace, ByteFallback, "
                          "Fuse, Strip, Metaspace)");
    }
}

struct Template {
    bool seen = false;
    std::vector<int> prefix, suffix;
};

void read_post_processor(const Reader& r, const json& v, const std::string& where, int depth, int vocab_size,
                         Template& out) {
    if (depth > k_max_depth) r.fail(where, "nests sequences more than " + std::to_string(k_max_depth) + " deep");
    r.object(v, where);
    const std::string type = r.type(v, where);
    if (type == "Sequence") {
        const json& list = r.need(v, "processors", where);
        if (!list.is_array()) r.fail(where + ".processors", "is " + describe(list) + ", expected an array");
        for (std::size_t i = 0; i < list.size(); ++i) {
            read_post_processor(r, list[i], where + ".processors[" + std::to_string(i) + "]", depth + 1, vocab_size,
                                out);
        }
    } else if (type == "ByteLevel") {
        // Only moves offsets; the ids are untouched.
    } else if (type == "TemplateProcessing") {
        if (out.seen) r.fail(where, "is a second TemplateProcessing, expected at most one");
        out.seen = true;
        const json& single = r.need(v, "single", where);
        if (!single.is_array()) r.fail(where + ".single", "is " + describe(single) + ", expected an array");
        const json& specials = r.object(r.need(v, "special_tokens", where), where + ".special_tokens");
        int sequences = 0;
        for (std::size_t i = 0; i < single.size(); ++i) {
            const std::string item_where = where + ".single[" + std::to_string(i) + "]";
            const json& item = r.object(single[i], item_where);
            if (r.find(item, "Sequence") != nullptr) {
                ++sequences;
                continue;
            }
            const json* special = r.find(item, "SpecialToken");
            if (special == nullptr) r.fail(item_where, "is neither {\"Sequence\": ...} nor {\"SpecialToken\": ...}");
            const std::string name = r.string(r.object(*special, item_where), "id", item_where + ".SpecialToken");
            const auto entry = specials.find(name);
            if (entry == specials.end()) {
                r.fail(item_where, "names the special token " + escaped(name) + ", which special_tokens lacks");
            }
            const std::string entry_where = where + ".special_tokens." + name.substr(0, 40);
            const json& ids = r.need(r.object(*entry, entry_where), "ids", entry_where);
            if (!ids.is_array()) r.fail(entry_where + ".ids", "is " + describe(ids) + ", expected an array");
            for (std::size_t k = 0; k < ids.size(); ++k) {
                const int id = static_cast<int>(
                    r.integer(ids[k], entry_where + ".ids[" + std::to_string(k) + "]", 0, vocab_size));
                (sequences == 0 ? out.prefix : out.suffix).push_back(id);
            }
        }
        if (sequences != 1) {
            r.fail(where + ".single", "has " + std::to_string(sequences) + " sequences, expected exactly one");
        }
    } else {
        r.fail(where, "has type " + escaped(type) +
                          ", which vkattn does not implement (post-processors: Sequence, ByteLevel, "
                          "TemplateProcessing)");
    }
}

// A token named by tokenizer_config.json: a string, or {"content": string} as AddedToken serializes.
std::optional<std::string> config_token(const Reader& r, const json& config, const char* key) {
    const json* v = r.find(config, key);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) return v->get<std::string>();
    if (v->is_object()) return r.string(*v, "content", key);
    r.fail(key, "is " + describe(*v) + ", expected a string or {\"content\": string}");
}

}  // namespace

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                         const std::filesystem::path& tokenizer_config) {
    auto impl = std::make_unique<Impl>();
    const Reader r(tokenizer_json.string());
    impl->vocab_file = tokenizer_json.filename().string();
    const json root = parse_file(tokenizer_json, "a Hugging Face tokenizer.json");
    r.object(root, "the top level");

    // ---- the model ----
    const json& model = r.object(r.need(root, "model", "the top level"), "model");
    const std::string type = r.find(model, "type") ? r.type(model, "model") : r.find(model, "merges") ? "BPE" : "";
    if (type != "BPE") {
        r.fail("model", type.empty() ? "has no type" : "has type " + escaped(type) +
                                                           ", which vkattn does not implement (models: BPE)");
    }
    if (const json* dropout = r.find(model, "dropout"); dropout && !(dropout->is_number() && *dropout == 0)) {
        r.fail("model.dropout", "is " + describe(*dropout) + ", expected null: BPE dropout is for training");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (const auto affix = r.optional_string(model, key, "model"); affix && !affix->empty()) {
            r.fail(std::string("model.") + key, "is " + escaped(*affix) + ", which vkattn does not implement");
        }
    }
    impl->byte_fallback = r.boolean(model, "byte_fallback", false, "model");
    impl->fuse_unk = r.boolean(model, "fuse_unk", false, "model");
    impl->ignore_merges = r.boolean(model, "ignore_merges", false, "model");

    const json& vocab = r.object(r.need(model, "vocab", "model"), "model.vocab");
    const json* added_json = r.find(root, "added_tokens");
    if (added_json != nullptr && !added_json->is_array()) {
        r.fail("added_tokens", "is " + describe(*added_json) + ", expected an array");
    }
    for (std::size_t i = 0; added_json != nullptr && i < added_json->size(); ++i) {
        const std::string where = "added_tokens[" + std::to_string(i) + "]";
        const json& t = r.object((*added_json)[i], where);
        AddedToken token;
        token.id = static_cast<int>(r.integer(r.need(t, "id", where), where + ".id", 0, k_max_id));
        token.content = r.string(t, "content", where);
        if (token.content.empty()) r.fail(where + ".content", "is empty, expected the token's text");
        token.special = r.boolean(t, "special", false, where);
        token.lstrip = r.boolean(t, "lstrip", false, where);
        token.rstrip = r.boolean(t, "rstrip", false, where);
        token.single_word = r.boolean(t, "single_word", false, where);
        token.normalized = r.boolean(t, "normalized", !token.special, where);
        impl->added.push_back(std::move(token));
    }

    std::int64_t max_id = -1;
    for (const auto& [token, value] : vocab.items()) {
        max_id = std::max(max_id, r.integer(value, "model.vocab[" + escaped(token) + "]", 0, k_max_id));
    }
    for (const AddedToken& t : impl->added) max_id = std::max<std::int64_t>(max_id, t.id);
    if (max_id < 0) r.fail("model.vocab", "is empty, expected token -> id");
    const auto size = static_cast<std::size_t>(max_id + 1);
    impl->token_string.assign(size, {});
    impl->has_token.assign(size, 0);

    // Read the pre-tokenizer first: a ByteLevel step means the vocabulary is written in the byte-to-unicode table.
    if (const json* p = r.find(root, "pre_tokenizer")) read_pre_tokenizer(r, *p, "pre_tokenizer", 0, *impl);
    for (std::size_t i = 0; i + 1 < impl->pre_tokenizers.size(); ++i) {
        if (impl->pre_tokenizers[i].kind == PreTokenizerKind::ByteLevel) {
            r.fail("pre_tokenizer", "has a ByteLevel step before another step; vkattn implements ByteLevel only last");
        }
    }

    std::unordered_map<std::string, int> file_vocab;  // the token as written -> id
    file_vocab.reserve(vocab.size());
    const ByteTable& table = byte_table();
    for (const auto& [token, value] : vocab.items()) {
        const auto id = value.get<std::size_t>();
        if (impl->has_token[id]) {
            r.fail("model.vocab", "gives the id " + std::to_string(id) + " to more than one token, the second being " +
                                      escaped(token));
        }
        impl->has_token[id] = 1;
        impl->token_string[id] = token;
        file_vocab.emplace(token, static_cast<int>(id));
        if (!impl->byte_level) {
            impl->symbol_of.emplace(token, static_cast<int>(id));
        } else if (std::optional<std::string> bytes = table.to_bytes(token)) {
            impl->symbol_of.emplace(std::move(*bytes), static_cast<int>(id));
        }
    }
    for (int b = 0; b < 256; ++b) {
        const auto it = file_vocab.find(table.to_text(std::string(1, static_cast<char>(b))));
        impl->byte_symbol[static_cast<std::size_t>(b)] = impl->byte_level && it != file_vocab.end() ? it->second : -1;
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        const auto fallback = file_vocab.find(name);
        impl->fallback_symbol[static_cast<std::size_t>(b)] = fallback != file_vocab.end() ? fallback->second : -1;
    }
    if (const auto unk = r.optional_string(model, "unk_token", "model")) {
        const auto it = file_vocab.find(*unk);
        if (it == file_vocab.end()) r.fail("model.unk_token", "is " + escaped(*unk) + ", which the vocabulary lacks");
        impl->unk_id = it->second;
    }

    // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokens may then hold spaces). A later duplicate
    // takes the later rank, as the tokenizers crate's HashMap does.
    const json& merges = r.need(model, "merges", "model");
    if (!merges.is_array()) r.fail("model.merges", "is " + describe(merges) + ", expected an array");
    impl->merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
        const json& m = merges[i];
        const std::string where = "model.merges[" + std::to_string(i) + "]";
        std::string left, right;
        if (m.is_string()) {
            const std::string& s = m.get_ref<const std::string&>();
            const std::size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
                r.fail(where, "is " + escaped(s) + ", expected two tokens separated by one space");
            }
            left = s.substr(0, space);
            right = s.substr(space + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            left = m[0].get<std::string>();
            right = m[1].get<std::string>();
        } else {
            r.fail(where, "is " + describe(m) + ", expected \"a b\" or [\"a\", \"b\"]");
        }
        const auto l = file_vocab.find(left);
        const auto rr = file_vocab.find(right);
        const auto merged = file_vocab.find(left + right);
        if (l == file_vocab.end() || rr == file_vocab.end() || merged == file_vocab.end()) {
            const std::string& missing = l == file_vocab.end() ? left : rr == file_vocab.end() ? right : left + right;
            r.fail(where, "merges " + escaped(left) + " and " + escaped(right) + ", but the vocabulary has no " +
                              escaped(missing));
        }
        impl->merges[pair_key(l->second, rr->second)] = {static_cast<int>(i), merged->second};
    }

    // ---- the pipeline around it ----
    if (const json* n = r.find(root, "normalizer")) read_normalizer(r, *n, "normalizer", 0, *impl);
    const json* decoder = r.find(root, "decoder");
    if (decoder == nullptr) r.fail("decoder", "is missing, expected one to turn ids back into text");
    read_decoder(r, *decoder, "decoder", 0, *impl);
    Template tmpl;
    if (const json* p = r.find(root, "post_processor")) {
        read_post_processor(r, *p, "post_processor", 0, static_cast<int>(size), tmpl);
    }
    impl->prefix_ids = tmpl.prefix;
    impl->suffix_ids = tmpl.suffix;

    const auto id_of = [&](const std::string& text) -> std::optional<int> {
        for (const AddedToken& t : impl->added) {
            if (t.content == text) return t.id;
        }
        if (const auto it = file_vocab.find(text); it != file_vocab.end()) return it->second;
        return std::nullopt;
    };

    // ---- tokenizer_config.json ----
    std::optional<bool> add_bos, add_eos;
    if (!tokenizer_config.empty()) {
        const Reader c(tokenizer_config.string());
        const json config = parse_file(tokenizer_config, "a Hugging Face tokenizer_config.json");
        c.object(config, "the top level");
        const auto resolve = [&](const char* key) -> std::optional<int> {
            const auto name = config_token(c, config, key);
            if (!name) return std::nullopt;
            const auto id = id_of(*name);
            if (!id) c.fail(key, "is " + escaped(*name) + ", which " + impl->vocab_file + " lacks");
            return id;
        };
        impl->bos = resolve("bos_token");
        if (const auto eos = resolve("eos_token")) impl->eos = {*eos};
        if (c.find(config, "add_bos_token")) add_bos = c.boolean(config, "add_bos_token", false, "the top level");
        if (c.find(config, "add_eos_token")) add_eos = c.boolean(config, "add_eos_token", false, "the top level");
    }
    if (impl->eos.empty()) {
        for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>"}) {
            const auto it = std::find_if(impl->added.begin(), impl->added.end(),
                                         [&](const AddedToken& t) { return t.special && t.content == name; });
            if (it != impl->added.end()) {
                impl->eos = {it->id};
                break;
            }
        }
    }
    // As transformers' LlamaTokenizerFast.update_post_processor: the config's flags decide over the template.
    const auto set_flag = [&](std::vector<int>& ids, std::optional<int> token, std::optional<bool> flag, bool front) {
        if (!flag || !token) return;
        const bool present = std::find(ids.begin(), ids.end(), *token) != ids.end();
        if (*flag && !present) ids.insert(front ? ids.begin() : ids.end(), *token);
        if (!*flag) ids.erase(std::remove(ids.begin(), ids.end(), *token), ids.end());
    };
    set_flag(impl->prefix_ids, impl->bos, add_bos, true);
    set_flag(impl->suffix_ids, impl->eos.empty() ? std::nullopt : std::optional<int>(impl->eos[0]), add_eos, false);

    impl->finish();
    return Tokenizer(std::move(impl));
}

}  // namespace vkattn::model
