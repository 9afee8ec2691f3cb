// size_str and bytes_str (include/vkattn/units.hpp): the one way the library's messages and the CLI print sizes.
#include "catch.hpp"

#include <vkattn/units.hpp>

using vkattn::bytes_str;
using vkattn::size_str;

TEST_CASE("sizes are printed in binary units next to the exact count", "[cpu][units]") {
    CHECK(size_str(0) == "0 bytes");
    CHECK(size_str(1) == "1 byte");
    CHECK(size_str(1023) == "1023 bytes");
    CHECK(size_str(1024) == "1 KiB");
    CHECK(size_str(1536) == "1.5 KiB");
    CHECK(size_str(1000 * 1024) == "1000 KiB");  // four digits stay whole: no "1e+03"
    CHECK(size_str(12939264) == "12.3 MiB");
    CHECK(size_str(uint64_t(2) << 30) == "2 GiB");
    CHECK(size_str(UINT64_MAX) == "16 EiB");
    CHECK(bytes_str(512) == "512 bytes");
    CHECK(bytes_str(1024) == "1 KiB (1024 bytes)");
    CHECK(bytes_str(uint64_t(2) << 30) == "2 GiB (2147483648 bytes)");
    CHECK(bytes_str(uint64_t(32) << 30) == "32 GiB (34359738368 bytes)");
}
