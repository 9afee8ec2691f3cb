// vkattn: attention and GPT-2 on any Vulkan GPU, checked against a CPU reference.
#include "cli.hpp"

#include <vkattn/error.hpp>

#include <cstdio>
#include <exception>
#include <map>
#include <string>

int main(int argc, char** argv) {
    CLI::App app{"vkattn: transformer attention and GPT-2 on any Vulkan GPU, checked against a CPU reference.\n"
                 "Environment: VKATTN_DEVICE picks a GPU (index or name substring); VKATTN_VALIDATION=1 turns on "
                 "the Khronos validation layer."};
    app.require_subcommand(1);
    std::map<std::string, vkattn::cli::Runner> runners = {
        {"devices", vkattn::cli::add_devices(app)},
        {"attention", vkattn::cli::add_attention(app)},
        {"demo", vkattn::cli::add_demo(app)},
    };

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "vkattn: %s\n", e.what());
        return vkattn::cli::kBadInput;
    }
    try {
        for (const CLI::App* sub : app.get_subcommands()) return runners.at(sub->get_name())();
    } catch (const vkattn::Error& e) {
        std::fprintf(stderr, "vkattn: %s\n", e.what());
        return vkattn::cli::kBadInput;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "vkattn: out of host memory\n");
        return vkattn::cli::kBadInput;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vkattn: %s\n", e.what());
        return vkattn::cli::kBadInput;
    }
    return vkattn::cli::kOk;
}
