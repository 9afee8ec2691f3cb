// Safetensors: SafetensorsFile::open on arbitrary bytes, then every float tensor widened.
#include "fuzz_common.hpp"

#include "model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = vkattn::fuzz::write_file("in.safetensors", data, size);
    vkattn::fuzz::expect_clean([&] {
        const auto file = vkattn::model::SafetensorsFile::open(path);
        for (const std::string& name : file.names()) {
            const vkattn::model::TensorInfo* info = file.find(name);
            vkattn::fuzz::check(info != nullptr, "a listed tensor is found");
            if (info->dtype == "F32" || info->dtype == "F16" || info->dtype == "BF16") {
                vkattn::fuzz::check(int64_t(file.read_f32(name).size()) == info->numel(), "read_f32 gives numel values");
            }
        }
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    size = vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"\"dtype\"", "\"F32\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"shape\"",
                                            "\"data_offsets\"", "\"__metadata__\"", "[0, 0]", "[]", "{}", ":", ",", "null"});
    // Mostly keep the 8-byte header length pointing just past the last '}' so the JSON parser is reached.
    if (size > 8 && (seed & 3) != 0) {
        for (size_t i = size; i-- > 8;) {
            if (data[i] == '}') {
                const uint64_t len = i + 1 - 8;
                for (int b = 0; b < 8; ++b) data[b] = uint8_t((len >> (8 * b)) & 0xff);
                break;
            }
        }
    }
    return size;
}
