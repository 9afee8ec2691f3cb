// config.json through the GPT-2 config loader (load_gpt2_config); re-point here when the loader changes.
#include "fuzz_common.hpp"

#include <vkattn/model/gpt2_loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = vkattn::fuzz::write_file("config.json", data, size);
    vkattn::fuzz::expect_clean([&] {
        const vkattn::model::Gpt2Config c = vkattn::model::load_gpt2_config(path);
        vkattn::fuzz::check(c.n_embd > 0 && c.n_head > 0 && c.n_layer > 0 && c.vocab_size > 0 && c.n_positions > 0,
                            "a loaded config has positive sizes");
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    return vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"\"n_embd\"", "\"n_head\"", "\"n_layer\"", "\"n_positions\"", "\"vocab_size\"",
                                            "\"layer_norm_epsilon\"", "\"model_type\"", "\"gpt2\"", "\"activation_function\"",
                                            "\"gelu_new\"", "true", "null", "1e-05", "{}", "[]", ":", ","});
}
