// Test runner: Catch2's session, then a check that the Vulkan validation layer stayed silent.
#ifndef VKATTN_CATCH3
#define CATCH_CONFIG_RUNNER
#endif
#include "catch.hpp"
#include "support.hpp"
#include "vulkan/instance.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    int result = Catch::Session().run(argc, argv);
    vkattn::test::release_gpu();  // messages at device teardown count too
    const uint64_t messages = vkattn::vk::validation_message_count();
    if (messages > 0) {
        std::fprintf(stderr, "FAILED: the Vulkan validation layer reported %llu message(s); see above\n",
                     static_cast<unsigned long long>(messages));
        result = result == 0 ? 1 : result;
    }
    return result;
}
