// Prompt text through the tokenizer (encode, then decode must give the text back). Uses the tiny byte-level
// vocabulary in tests/fuzz/tokenizer/ so that every byte sequence has an encoding.
#include "fuzz_common.hpp"

#include <vkattn/model/tokenizer.hpp>

#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const vkattn::model::Tokenizer tok = vkattn::model::Tokenizer::from_dir(VKATTN_FUZZ_TOKENIZER_DIR);
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    vkattn::fuzz::expect_clean([&] {
        const std::vector<int> ids = tok.encode(text);
        for (int id : ids) vkattn::fuzz::check(id >= 0 && id < tok.vocab_size(), "ids inside the vocabulary");
        vkattn::fuzz::check(tok.decode(ids) == text, "decode(encode(s)) == s");
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    return vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"<|endoftext|>", "<|endoftext", "'s", "'ll", " the", "\xe2\x80\x99", "\xf0\x9f\x98\x80",
                                            "   ", "\t\n", "123", "\xcc\x81"});
}
