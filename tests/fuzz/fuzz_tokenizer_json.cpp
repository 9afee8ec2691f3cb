// tokenizer.json (+ tokenizer_config.json) through Tokenizer::from_tokenizer_json, then text through it: the
// input is tokenizer.json, a NUL byte, tokenizer_config.json, a NUL byte, the text to encode. Without the first
// NUL there is no tokenizer_config.json; without the second the text is a fixed mix of words, digits, spaces,
// newlines, accents, an emoji and the special tokens' spellings.
#include "fuzz_common.hpp"

#include <vkattn/model/tokenizer.hpp>

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t* end = data + size;
    const uint8_t* nul1 = std::find(data, end, uint8_t(0));
    const uint8_t* nul2 = nul1 == end ? end : std::find(nul1 + 1, end, uint8_t(0));
    const auto json = vkattn::fuzz::write_file("tokenizer.json", data, size_t(nul1 - data));
    std::filesystem::path config;
    if (nul1 != end) config = vkattn::fuzz::write_file("tokenizer_config.json", nul1 + 1, size_t(nul2 - nul1 - 1));
    const std::string text = nul2 == end ? std::string("Hello world, 12345 héllo\n\n  <s></s><|bos|> \xf0\x9f\x98\x80 it's")
                                         : std::string(reinterpret_cast<const char*>(nul2 + 1), size_t(end - nul2 - 1));
    vkattn::fuzz::expect_clean([&] {
        const auto tok = vkattn::model::Tokenizer::from_tokenizer_json(json, config);
        const int vocab = tok.vocab_size();
        vkattn::fuzz::check(vocab > 0, "a loaded tokenizer has a vocabulary");
        for (const bool special : {true, false}) {
            const std::vector<int> ids = tok.encode(text, special);
            for (const int id : ids) vkattn::fuzz::check(id >= 0 && id < vocab, "encode gives ids inside the vocabulary");
            (void)tok.decode(ids);
            (void)tok.decode(ids, true);
            // The streaming contract of decode_bytes: the bytes of ids[0, n) are a prefix of those of all ids,
            // and one id's are its token_text.
            const std::string all = tok.decode_bytes(ids);
            for (size_t n = 0; n < ids.size() && n < 64; ++n) {
                const std::string head = tok.decode_bytes(std::span<const int>(ids.data(), n));
                vkattn::fuzz::check(all.compare(0, head.size(), head) == 0, "decode_bytes of a prefix is a prefix");
                vkattn::fuzz::check(tok.decode_bytes(std::span<const int>(&ids[n], 1)) == tok.token_text(ids[n]),
                                    "decode_bytes of one id is its token_text");
            }
        }
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    return vkattn::fuzz::structured_mutate(
        data, size, max_size, seed,
        {"\"type\": \"BPE\"", "\"type\": \"ByteLevel\"", "\"type\": \"Metaspace\"", "\"type\": \"Sequence\"",
         "\"type\": \"Split\"", "\"type\": \"NFKC\"", "\"type\": \"Replace\"", "\"type\": \"ByteFallback\"",
         "\"Regex\": \"(\"", "\"Regex\": \"(a*)*b\"", "\"byte_fallback\": true", "\"ignore_merges\": true",
         "\"vocab\": {}", "\"merges\": []", "\"<0xFF>\": 3", "\"\\u2581\"", "\"id\": -1", "\"id\": 2147483647",
         "\"content\": \"\"", "\"lstrip\": true", "\"single_word\": true", "\"add_bos_token\": true", ",", "null",
         "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}", "[\"a\", \"b\"]"});
}
