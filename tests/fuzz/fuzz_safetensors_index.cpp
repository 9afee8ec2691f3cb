// model.safetensors.index.json: read_safetensors_index on arbitrary bytes; shard names must be plain file names.
#include "fuzz_common.hpp"

#include "model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = vkattn::fuzz::write_file("model.safetensors.index.json", data, size);
    vkattn::fuzz::expect_clean([&] {
        for (const auto& [name, file] : vkattn::model::read_safetensors_index(path)) {
            vkattn::fuzz::check(!file.empty() && file.find('/') == std::string::npos && file != "..",
                                "a shard is a plain file name");
        }
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    return vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"\"weight_map\"", "\"metadata\"", "\"total_size\"", "\"../x\"", "\"/etc/passwd\"",
                                            "\"model-00001-of-00002.safetensors\"", "{}", "[]", ":", ",", "null"});
}
