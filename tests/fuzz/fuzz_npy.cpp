// .npy: read_npy on arbitrary bytes. A file that reads must hold shape-product values.
#include "fuzz_common.hpp"

#include <vkattn/npy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = vkattn::fuzz::write_file("in.npy", data, size);
    vkattn::fuzz::expect_clean([&] {
        const vkattn::NpyArray a = vkattn::read_npy(path);
        vkattn::fuzz::check(int64_t(a.data.size()) == a.numel(), "data size is the shape's product");
    });
    return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    size = vkattn::fuzz::structured_mutate(data, size, max_size, seed,
                                           {"'descr'", "'<f4'", "'<f2'", "'>f4'", "'|u1'", "'fortran_order'", "True",
                                            "False", "'shape'", "(", ")", ",", "()", "(0,)", "(3, 4)", "[2]", "L"});
    // Mostly keep the 1.0 header length consistent with the '\n' that ends the header, so the parser is reached.
    if (size > 10 && data[6] == 1 && (seed & 3) != 0) {
        for (size_t i = 10; i < size; ++i) {
            if (data[i] == '\n') {
                const size_t len = i + 1 - 10;
                if (len <= 0xffff) {
                    data[8] = uint8_t(len & 0xff);
                    data[9] = uint8_t(len >> 8);
                }
                break;
            }
        }
    }
    return size;
}
