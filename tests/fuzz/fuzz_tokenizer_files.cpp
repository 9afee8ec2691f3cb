// vocab.json and merges.txt through Tokenizer::from_files: the input is vocab.json, a NUL byte, merges.txt.
// tokenizer.json has its own harness (fuzz_tokenizer_json.cpp).
#include "fuzz_common.hpp"

#include <vkattn/model/tokenizer.hpp>

#include <algorithm>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t* nul = std::find(data, data + size, uint8_t(0));
    const size_t vocab_size = size_t(nul - data);
    const auto vocab = vkattn::fuzz::write_file("vocab.json", data, vocab_size);
    const size_t rest = nul == data + size ? 0 : size - vocab_size - 1;
    const auto merges = vkattn::fuzz::write_file("merges.txt", nul == data + size ? data : nul + 1, rest);
    vkattn::fuzz::expect_clean([&] {
        const auto tok = vkattn::model::Tokenizer::from_files(vocab, merges);
        vkattn::fuzz::check(tok.vocab_size() > 0, "a loaded tokenizer has a vocabulary");
        const std::vector<int> ids = tok.encode("hello world");
        vkattn::fuzz::check(tok.decode(ids) == "hello world", "decode(encode(s)) == s");
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    return vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"\"<|endoftext|>\"", "\"\\u0120\"", "\"\\u0100\"", "#version: 0.2\n",
                                            "\xc4\xa0 t\n", "h e\n", " \n", ": 0", ": -1", ": 50256", ",", "{}"});
}
