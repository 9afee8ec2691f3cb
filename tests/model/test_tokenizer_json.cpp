// Hugging Face tokenizer.json: small hand-written files pin each rule (byte-level BPE with a Split regex, Digits,
// NFC, ignore_merges and merge pairs; SentencePiece BPE with Prepend/Replace, byte fallback and fused unknowns;
// Metaspace; added tokens with lstrip/rstrip/single_word; BOS/EOS), malformed files pin the one-line errors, and
// the real Llama 3, Llama 2, Qwen, Mistral and GPT-2 files pin the ids against Hugging Face's own tokenizer.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "support.hpp"
#include <vkattn/error.hpp>
#include <vkattn/model/tokenizer.hpp>

namespace fs = std::filesystem;
using vkattn::model::Tokenizer;
using vkattn::test::TempDir;

namespace {

const fs::path k_fixtures = VKATTN_FIXTURES_DIR;

std::vector<int> ids(std::initializer_list<int> list) { return list; }

std::string error_from(const std::function<void()>& f) { return vkattn::test::error_message(f); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("tokenizer.json byte-level: Split regex, Digits, NFC, ignore_merges, merge pairs", "[cpu][tokenizer]") {
    const Tokenizer tok = Tokenizer::from_dir(k_fixtures / "tokenizer_bytelevel");
    CHECK(tok.vocab_size() == 26);
    REQUIRE(tok.bos_id() == 20);
    CHECK(tok.eos_ids() == ids({21}));
    CHECK(tok.eos_id() == 21);

    CHECK(tok.encode("abc") == ids({20, 8}));  // the template adds <|bos|>
    CHECK(tok.encode("abc", false) == ids({8}));
    CHECK(tok.encode("", true) == ids({20}));
    CHECK(tok.encode("", false).empty());
    CHECK(tok.encode(" ab", false) == ids({10}));
    CHECK(tok.encode("cab", false) == ids({15}));   // ignore_merges: the whole piece is a token, though no merge makes it
    CHECK(tok.encode("cabc", false) == ids({2, 8}));  // not a token: merged, a+b then ab+c
    CHECK(tok.encode("12", false) == ids({5, 6}));    // Digits splits every digit
    CHECK(tok.encode("a\n", false) == ids({0, 4}));
    CHECK(tok.encode("a's", false) == ids({0, 25}));  // the regex's contraction alternative
    CHECK(tok.encode("e\xCC\x81", false) == ids({13}));  // NFC turns e + U+0301 into é (C3 A9)
    CHECK(tok.decode(ids({20, 8})) == "<|bos|>abc");
    CHECK(tok.decode(ids({20, 8}), true) == "abc");
    CHECK(tok.token_text(9) == " a");
    CHECK(tok.token_text(11) == "\xC3");  // half of é
    CHECK(tok.decode_bytes(ids({10, 4})) == " ab\n");
    CHECK(tok.is_special(20));
    CHECK_FALSE(tok.is_special(22));
    CHECK_FALSE(tok.is_special(8));

    SECTION("special tokens split the text before the pre-tokenizer") {
        CHECK(tok.encode("ab<|eos|>c", false) == ids({7, 21, 2}));
        CHECK(tok.encode("<|bos|><|bos|>", false) == ids({20, 20}));
        CHECK(tok.encode("<|bos|>abc") == ids({20, 20, 8}));
    }
    SECTION("lstrip and rstrip take the spaces beside the token") {
        CHECK(tok.encode("a  <sep>  b", false) == ids({0, 23, 1}));
        CHECK(tok.decode(tok.encode("a  <sep>  b", false)) == "a<sep>b");
    }
    SECTION("a single_word token matches only between non-word characters") {
        CHECK(tok.encode("a [x] b", false) == ids({0, 3, 22, 3, 1}));
        CHECK(tok.encode("[x]", false) == ids({22}));
        CHECK(tok.encode("a[x]", false) == ids({0, 17, 16, 18}));
    }
    SECTION("SmolLM2's pre-tokenizer: Digits, then ByteLevel with its own regex") {
        const TempDir smol;
        nlohmann::json j = nlohmann::json::parse(read(k_fixtures / "tokenizer_bytelevel" / "tokenizer.json"));
        j["pre_tokenizer"] = nlohmann::json::parse(
            R"({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})");
        smol.write("tokenizer.json", j.dump());
        const Tokenizer s = Tokenizer::from_dir(smol.path());
        CHECK(s.encode("a12 ab", false) == ids({0, 5, 6, 10}));
        CHECK(s.encode("a's", false) == ids({0, 25}));
        CHECK(s.decode(s.encode("a12 ab\n", false)) == "a12 ab\n");
    }
    SECTION("round trips") {
        for (const std::string text : {"", "abc", " abc  ab\n\n a's", "\xC3\xA9" "ab\xC3\xA9 ", "12 21", "cab cab",
                                       "<|eos|>cab<|bos|>"}) {
            INFO("text: " << text);
            CHECK(tok.decode(tok.encode(text, false)) == text);
            CHECK(tok.decode_bytes(tok.encode(text, false)) == text);
        }
    }
    SECTION("a byte the vocabulary lacks is an error naming it") {
        const std::string message = error_from([&] { (void)tok.encode("abz"); });
        INFO(message);
        CHECK(contains(message, "\"z\""));
        CHECK(contains(message, "tokenizer.json"));
    }
}

TEST_CASE("tokenizer.json SentencePiece: Prepend/Replace, byte fallback, unknowns, Strip", "[cpu][tokenizer]") {
    const Tokenizer tok = Tokenizer::from_dir(k_fixtures / "tokenizer_sentencepiece");
    CHECK(tok.vocab_size() == 12);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);

    CHECK(tok.encode("hi") == ids({1, 10}));
    CHECK(tok.encode("hi", false) == ids({10}));
    CHECK(tok.encode("") == ids({1}));                 // Prepend leaves an empty text empty
    CHECK(tok.encode("hi hi", false) == ids({10, 10}));
    CHECK(tok.encode(" hi", false) == ids({6, 10}));   // "▁▁hi"
    CHECK(tok.encode("ih", false) == ids({6, 8, 7}));  // "▁ih": no merge of "▁ i"; "i h" is none either
    CHECK(tok.encode("\n", false) == ids({6, 3}));      // "<0x0A>"
    CHECK(tok.encode("\xC3\xA9", false) == ids({6, 4, 5}));  // é, byte by byte
    CHECK(tok.encode("x", false) == ids({6, 0}));      // no token and no byte token: <unk>
    CHECK(tok.encode("xyz", false) == ids({6, 0}));    // fuse_unk: one <unk> for the run
    CHECK(tok.encode("xhx", false) == ids({6, 0, 7, 0}));
    // Each part between special tokens is normalized on its own, as the tokenizers crate does ("legacy" Llama).
    CHECK(tok.encode("hi</s>hi", false) == ids({10, 2, 10}));
    CHECK(tok.encode("<s>hi", true) == ids({1, 1, 10}));

    CHECK(tok.decode(ids({1, 10, 6, 3})) == "<s> hi \n");
    CHECK(tok.decode(ids({1, 10, 6, 3}), true) == "hi \n");
    CHECK(tok.decode(ids({10, 4, 5})) == "hi\xC3\xA9");
    CHECK(tok.decode(ids({4})) == "\xC3");  // kept as the byte where Hugging Face would write U+FFFD
    CHECK(tok.decode_bytes(ids({10, 10})) == " hi hi");
    CHECK(tok.token_text(3) == "\n");
    CHECK(tok.token_text(10) == " hi");
    CHECK(tok.token_text(1) == "<s>");
    for (const std::string text : {"hi", "hi\n", " hi", "hi  hi ", "\xC3\xA9h\n\n", ""}) {
        INFO("text: " << text);
        CHECK(tok.decode(tok.encode(text), true) == text);
    }
}

TEST_CASE("tokenizer.json Metaspace: prepend_scheme first, split, BOS/EOS from tokenizer_config.json",
          "[cpu][tokenizer]") {
    const Tokenizer tok = Tokenizer::from_dir(k_fixtures / "tokenizer_metaspace");
    CHECK(tok.encode("hi hi") == ids({1, 10, 10, 2}));  // add_bos_token and add_eos_token, with no post-processor
    CHECK(tok.encode("hi hi", false) == ids({10, 10}));
    CHECK(tok.encode("<s>hi", false) == ids({1, 11}));  // "first": only the text's start gets "▁"
    CHECK(tok.encode("  hi", false) == ids({6, 10}));   // already starts with "▁": nothing prepended
    CHECK(tok.decode(ids({10, 10})) == "hi hi");         // the decoder drops the first token's "▁"
    CHECK(tok.decode_bytes(ids({10, 10})) == " hi hi");
    CHECK(tok.decode(ids({1, 10, 10, 2}), true) == "hi hi");
    CHECK(tok.decode(tok.encode("hi  hi", false)) == "hi  hi");
}

TEST_CASE("from_dir prefers tokenizer.json, and reads vocab.json + merges.txt without it", "[cpu][tokenizer]") {
    const TempDir dir;
    dir.write("vocab.json", R"({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3})");
    dir.write("merges.txt", "#version: 0.2\na b\n");
    CHECK(Tokenizer::from_dir(dir.path()).encode("ab") == ids({2}));
    dir.write("tokenizer.json", read(k_fixtures / "tokenizer_bytelevel" / "tokenizer.json"));
    const Tokenizer tok = Tokenizer::from_dir(dir.path());
    CHECK(tok.encode("ab", false) == ids({7}));
    CHECK_FALSE(tok.bos_id().has_value());  // no tokenizer_config.json, so no bos_token
    CHECK(tok.encode("ab") == ids({20, 7}));  // the template still adds <|bos|>
    CHECK(tok.eos_ids().empty());
    CHECK(contains(error_from([&] { (void)tok.eos_id(); }), "end-of-sequence"));

    SECTION("generation_config.json adds its eos ids, one or a list") {
        dir.write("generation_config.json", R"({"bos_token_id": 20, "eos_token_id": [21, 23]})");
        CHECK(Tokenizer::from_dir(dir.path()).eos_ids() == ids({21, 23}));
        dir.write("generation_config.json", R"({"eos_token_id": 21})");
        CHECK(Tokenizer::from_dir(dir.path()).eos_ids() == ids({21}));
        dir.write("generation_config.json", R"({"eos_token_id": [21, 999]})");
        const std::string message = error_from([&] { (void)Tokenizer::from_dir(dir.path()); });
        INFO(message);
        CHECK(contains(message, "generation_config.json"));
        CHECK(contains(message, "999"));
    }

    const TempDir empty;
    const std::string message = error_from([&] { (void)Tokenizer::from_dir(empty.path()); });
    INFO(message);
    CHECK(contains(message, "tokenizer.json"));
    CHECK(contains(message, "vocab.json"));
}

namespace {

// tokenizer.json for the malformed cases: the hand-written byte-level file with one value replaced.
std::string with_value(const std::string& json_pointer, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(read(k_fixtures / "tokenizer_bytelevel" / "tokenizer.json"));
    j[nlohmann::json::json_pointer(json_pointer)] = value;
    return j.dump();
}

std::string deep_array(int depth) { return std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']'); }

}  // namespace

TEST_CASE("tokenizer.json: malformed files and unsupported components are one-line errors", "[cpu][tokenizer]") {
    const TempDir dir;
    const auto error_for = [&](const std::string& contents) {
        const fs::path path = dir.write("tokenizer.json", contents);
        return error_from([&] { (void)Tokenizer::from_tokenizer_json(path); });
    };
    const auto check = [](const std::string& message, std::initializer_list<const char*> parts) {
        INFO(message);
        CHECK(message.find('\n') == std::string::npos);
        CHECK(message.size() < 400);
        for (const char* part : parts) CHECK(contains(message, part));
    };
    using nlohmann::json;

    check(error_for("{\"model\": "), {"tokenizer.json", "not valid JSON"});
    {
        // Found by fuzz_tokenizer_json: nlohmann's parse error quoted the bytes it read (here an escape
        // character and a byte that is not UTF-8) into the message; only the byte position is given now.
        const std::string message = error_for("{\"added_tokens\": [{\"single_wrd\x1b\xff\": 1}]}");
        check(message, {"tokenizer.json", "not valid JSON", "near byte"});
        CHECK_FALSE(contains(message, "json.exception"));
        CHECK(std::none_of(message.begin(), message.end(), [](char c) { return c == '\x1b' || c == '\xff'; }));
    }
    check(error_for("[1, 2]"), {"tokenizer.json", "JSON array", "JSON object"});
    check(error_for(with_value("/model/type", "WordPiece")), {"tokenizer.json", "\"WordPiece\"", "BPE"});
    check(error_for(with_value("/model/type", "Unigram")), {"tokenizer.json", "\"Unigram\""});
    check(error_for(with_value("/normalizer", json{{"type", "Lowercase"}})), {"normalizer", "\"Lowercase\""});
    check(error_for(with_value("/normalizer", json{{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}})),
          {"normalizer", "\"Precompiled\""});
    check(error_for(with_value("/pre_tokenizer/pretokenizers/1", json{{"type", "Whitespace"}})),
          {"pre_tokenizer.pretokenizers[1]", "\"Whitespace\""});
    check(error_for(with_value("/decoder", json{{"type", "WordPiece"}, {"prefix", "##"}})), {"decoder", "\"WordPiece\""});
    check(error_for(with_value("/post_processor", json{{"type", "BertProcessing"}})),
          {"post_processor", "\"BertProcessing\""});
    check(error_for(with_value("/decoder", nullptr)), {"decoder", "missing"});
    check(error_for(with_value("/model/dropout", 0.1)), {"model.dropout", "training"});
    check(error_for(with_value("/model/continuing_subword_prefix", "##")), {"continuing_subword_prefix", "\"##\""});
    check(error_for(with_value("/model/merges/0", json::array({"a", "q"}))), {"model.merges[0]", "\"q\""});
    check(error_for(with_value("/model/merges/0", "a b c")), {"model.merges[0]", "two tokens"});
    check(error_for(with_value("/model/merges/0", 7)), {"model.merges[0]", "7"});
    check(error_for(with_value("/model/vocab/a", -1)), {"model.vocab", "-1"});
    check(error_for(with_value("/model/vocab/a", "zero")), {"model.vocab", "\"zero\""});
    check(error_for(with_value("/model/vocab/a", 1)), {"model.vocab", "id 1", "more than one"});
    check(error_for(with_value("/model/vocab/a", 4000000000LL)), {"model.vocab", "4000000000"});
    check(error_for(with_value("/model/unk_token", "<nope>")), {"model.unk_token", "\"<nope>\""});
    check(error_for(with_value("/added_tokens/0/id", "x")), {"added_tokens[0].id", "\"x\""});
    check(error_for(with_value("/added_tokens/0/content", "")), {"added_tokens[0].content", "empty"});
    check(error_for(with_value("/pre_tokenizer/pretokenizers/1/pattern", json{{"Regex", "(unclosed"}})),
          {"pre_tokenizer.pretokenizers[1].pattern", "PCRE2"});
    check(error_for(with_value("/pre_tokenizer/pretokenizers/1/behavior", "Sideways")), {"behavior", "\"Sideways\""});
    check(error_for(with_value("/post_processor/processors/1/single", json::array())), {"sequences", "exactly one"});

    SECTION("deeply nested values are named by type, never printed or recursed into") {
        // nlohmann's dump() of a value this deep overflows the stack; the reader must never call it.
        const std::string deep = deep_array(100000);
        const std::string base = with_value("/normalizer", "PLACEHOLDER");
        const auto replaced = [&](const std::string& key_value) {
            std::string text = base;
            text.replace(text.find("\"PLACEHOLDER\""), 13, key_value);
            return text;
        };
        check(error_for(replaced(deep)), {"normalizer", "JSON array"});
        check(error_for(deep), {"tokenizer.json", "JSON array"});
        std::string nested = R"({"type": "NFC"})";
        for (int i = 0; i < 40; ++i) nested = R"({"type": "Sequence", "normalizers": [)" + nested + "]}";
        check(error_for(replaced(nested)), {"normalizer", "deep"});
        const std::string vocab_deep = with_value("/model/vocab/a", "PLACEHOLDER");
        std::string text = vocab_deep;
        text.replace(text.find("\"PLACEHOLDER\""), 13, deep);
        check(error_for(text), {"model.vocab", "JSON array"});
    }

    SECTION("tokenizer_config.json") {
        const fs::path tokenizer = dir.write("tokenizer.json", read(k_fixtures / "tokenizer_bytelevel" / "tokenizer.json"));
        const auto config_error = [&](const std::string& contents) {
            const fs::path config = dir.write("tokenizer_config.json", contents);
            return error_from([&] { (void)Tokenizer::from_tokenizer_json(tokenizer, config); });
        };
        check(config_error("{"), {"tokenizer_config.json", "not valid JSON"});
        check(config_error(R"({"bos_token": "<nope>"})"), {"tokenizer_config.json", "bos_token", "\"<nope>\""});
        check(config_error(R"({"eos_token": 5})"), {"tokenizer_config.json", "eos_token"});
        check(config_error(R"({"add_bos_token": "yes"})"), {"tokenizer_config.json", "add_bos_token"});
        // add_bos_token false takes out the template's BOS.
        dir.write("tokenizer_config.json", R"({"bos_token": "<|bos|>", "add_bos_token": false})");
        CHECK(Tokenizer::from_tokenizer_json(tokenizer, dir.path() / "tokenizer_config.json").encode("ab") == ids({7}));
    }

    SECTION("missing files and files that are not regular") {
        check(error_from([&] { (void)Tokenizer::from_tokenizer_json(dir.path() / "absent.json"); }),
              {"absent.json", "no such file"});
        check(error_from([&] { (void)Tokenizer::from_tokenizer_json(dir.path()); }), {"regular file"});
        const fs::path fifo = dir.path() / "fifo";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        fs::create_directories(dir.path() / "fifo_dir");
        REQUIRE(::mkfifo((dir.path() / "fifo_dir" / "tokenizer.json").c_str(), 0600) == 0);
        // Opening a FIFO for reading would block until a writer comes; the reader must refuse it instead.
        check(error_from([&] { (void)Tokenizer::from_tokenizer_json(fifo); }), {"fifo", "regular file"});
        check(error_from([&] { (void)Tokenizer::from_dir(dir.path() / "fifo_dir"); }), {"regular file"});
    }
}

// ---- The real tokenizers, against Hugging Face's JavaScript tokenizer ----

namespace {

const fs::path& hf_dir() {
    static const fs::path dir = [] {
        const char* env = std::getenv("VKATTN_HF_TOKENIZERS_DIR");
        const std::string how =
            "run scripts/fetch-hf-tokenizers.sh build/fixtures/hf-tokenizers and set "
            "VKATTN_HF_TOKENIZERS_DIR=build/fixtures/hf-tokenizers (scripts/test.sh does both)";
        if (env == nullptr || *env == '\0') FAIL("VKATTN_HF_TOKENIZERS_DIR is not set; " + how);
        const fs::path d(env);
        if (!fs::is_regular_file(d / "llama3" / "tokenizer.json")) {
            FAIL("VKATTN_HF_TOKENIZERS_DIR=" + d.string() + " has no llama3/tokenizer.json; " + how);
        }
        return d;
    }();
    return dir;
}

const nlohmann::json& expected() {
    static const nlohmann::json j =
        nlohmann::json::parse(read(k_fixtures / "tokenizer_reference" / "expected.json"));
    return j;
}

const Tokenizer& hf(const std::string& name) {
    static std::map<std::string, Tokenizer> cache;
    static std::mutex mutex;
    const std::lock_guard lock(mutex);
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, Tokenizer::from_dir(hf_dir() / name)).first;
    return it->second;
}

// Valid UTF-8 without "<" (so no special-token text): whitespace runs, combining marks, 4-byte characters.
std::string random_text(std::mt19937& rng) {
    static const char32_t awkward[] = {' ', ' ', '\n', '\t', '\r', '\'', 0x85, 0xA0, 0x180E, 0x2028, 0x3000,
                                       0xFEFF, 0x200D, 0x0301, 0xFE0F, 0xE9, 0x1F600, 0x10FFFF, 0xFFFD};
    std::uniform_int_distribution<int> length(0, 40);
    std::uniform_int_distribution<int> kind(0, 99);
    std::string text;
    const auto put = [&](char32_t cp) {
        if (cp < 0x80) {
            text += static_cast<char>(cp);
        } else if (cp < 0x800) {
            text += static_cast<char>(0xC0 | (cp >> 6));
            text += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            text += static_cast<char>(0xE0 | (cp >> 12));
            text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            text += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            text += static_cast<char>(0xF0 | (cp >> 18));
            text += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            text += static_cast<char>(0x80 | (cp & 0x3F));
        }
    };
    for (int n = length(rng); n > 0; --n) {
        const int k = kind(rng);
        char32_t cp = 0;
        if (k < 40) {
            do {
                cp = std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng);
            } while (cp == '<');
        } else if (k < 60) {
            cp = awkward[std::uniform_int_distribution<std::size_t>(0, std::size(awkward) - 1)(rng)];
        } else if (k < 70) {
            cp = std::uniform_int_distribution<char32_t>(0x00, 0x24F)(rng);
            if (cp == '<') cp = '>';
        } else if (k < 92) {
            do {
                cp = std::uniform_int_distribution<char32_t>(0x250, 0xFFFF)(rng);
            } while (cp >= 0xD800 && cp <= 0xDFFF);
        } else {
            cp = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng);
        }
        put(cp);
    }
    return text;
}

}  // namespace

TEST_CASE("Hugging Face tokenizers: ids match @huggingface/tokenizers on tricky text", "[cpu][tokenizer]") {
    const nlohmann::json& all = expected().at("tokenizers");
    REQUIRE(all.size() == 5);
    for (const auto& [name, t] : all.items()) {
        const Tokenizer& tok = hf(name);
        for (const nlohmann::json& c : t.at("cases")) {
            const std::string text = c.at("text");
            INFO(name << ", text: \"" << text << "\"");
            const std::vector<int> want = c.at("ids");
            const std::vector<int> got = tok.encode(text);
            CHECK(got == want);
            CHECK(tok.encode(text, false) == c.at("ids_without_special").get<std::vector<int>>());
            CHECK(tok.decode(want) == c.at("decoded").get<std::string>());
            CHECK(tok.decode(want, true) == c.at("decoded_skipping_special").get<std::string>());
        }
    }
}

TEST_CASE("Hugging Face tokenizers: special tokens and sizes", "[cpu][tokenizer]") {
    const Tokenizer& llama3 = hf("llama3");
    CHECK(llama3.vocab_size() == 128256);
    CHECK(llama3.bos_id() == 128000);
    CHECK(llama3.eos_ids() == ids({128001}));
    CHECK(llama3.encode("<|begin_of_text|>Hi", false) == ids({128000, 13347}));
    const Tokenizer& llama2 = hf("llama2");
    CHECK(llama2.vocab_size() == 32000);
    CHECK(llama2.bos_id() == 1);
    CHECK(llama2.eos_id() == 2);
    CHECK(llama2.token_text(13) == "\n");  // <0x0A>
    CHECK(llama2.token_text(15043) == " Hello");
    const Tokenizer& qwen = hf("qwen3");
    CHECK(qwen.vocab_size() == 151669);
    CHECK_FALSE(qwen.bos_id().has_value());
    CHECK(qwen.eos_ids() == ids({151645}));  // <|im_end|>
    CHECK(hf("mistral").vocab_size() == 32000);
    CHECK(hf("gpt2").eos_id() == 50256);
}

TEST_CASE("Hugging Face tokenizers: decode(encode(s)) == s on random UTF-8", "[cpu][tokenizer]") {
    std::mt19937 rng(20251129);
    for (const char* name : {"llama3", "qwen3", "llama2", "mistral", "gpt2"}) {
        const Tokenizer& tok = hf(name);
        for (int i = 0; i < 400; ++i) {
            std::string text = random_text(rng);
            const std::vector<int> encoded = tok.encode(text, false);
            INFO(name << ", case " << i << ", text: \"" << text << "\"");
            // Qwen's NFC normalizer changes text that is not in NFC form, so only the bytes of a decomposed
            // character may come back composed; the other tokenizers give the text back exactly.
            if (std::string(name) == "qwen3") {
                REQUIRE(tok.encode(tok.decode(encoded), false) == encoded);
            } else {
                REQUIRE(tok.decode(encoded) == text);
            }
            REQUIRE(tok.decode_bytes(encoded).size() >= tok.decode(encoded).size());
        }
    }
}

TEST_CASE("Hugging Face tokenizers: long pieces and long texts", "[cpu][tokenizer]") {
    // One piece of 100k letters or spaces: merging must not be quadratic, and the regexes (Llama 3's
    // \s*[\r\n]+ backtracks over a run of spaces) must not run out of PCRE2's JIT stack.
    for (const char* name : {"llama3", "qwen3", "llama2"}) {
        const Tokenizer& tok = hf(name);
        for (const std::string& text : {std::string(100000, 'a'), std::string(100000, ' ') + "a",
                                        std::string(100000, '\n'), std::string(50000, ' ') + std::string(50000, '\n'),
                                        std::string(50000, '7') + std::string(50000, '!')}) {
            INFO(name << ", " << text.size() << " bytes starting with " << int(text[0]));
            const std::vector<int> encoded = tok.encode(text, false);
            CHECK(encoded.size() <= text.size() + 1);
            CHECK(tok.decode(encoded) == text);
        }
    }
}

TEST_CASE("Hugging Face tokenizers: one Tokenizer encodes from several threads at once", "[cpu][tokenizer]") {
    const Tokenizer& tok = hf("llama3");
    std::vector<std::string> texts;
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) texts.push_back(random_text(rng));
    std::vector<std::vector<int>> want;
    for (const std::string& t : texts) want.push_back(tok.encode(t));
    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (std::size_t i = 0; i < texts.size(); ++i) {
                const std::size_t k = (i * 7 + static_cast<std::size_t>(t) * 13) % texts.size();
                if (tok.encode(texts[k]) != want[k]) ++mismatches[static_cast<std::size_t>(t)];
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("GPT-2 tokenizer.json agrees with GPT-2's vocab.json + merges.txt", "[cpu][tokenizer]") {
    const char* env = std::getenv("VKATTN_GPT2_VOCAB_DIR");
    if (env == nullptr || *env == '\0') FAIL("VKATTN_GPT2_VOCAB_DIR is not set (scripts/test.sh sets it)");
    const Tokenizer files = Tokenizer::from_files(fs::path(env) / "vocab.json", fs::path(env) / "merges.txt");
    const Tokenizer& json = hf("gpt2");
    std::mt19937 rng(50256);
    for (int i = 0; i < 1000; ++i) {
        const std::string text = random_text(rng) + "<|endoftext|>" + random_text(rng);
        INFO("case " << i << ", text: \"" << text << "\"");
        REQUIRE(json.encode(text) == files.encode(text));
    }
}
