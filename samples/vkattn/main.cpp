// vkattn: attention and GPT-2 on any Vulkan GPU, checked against a CPU reference.
#include "cli.hpp"

#include <vkattn/error.hpp>
#include <vkattn/version.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <string_view>

namespace {

// Some messages list things one per line (the candidate devices); the CLI promises one line per error.
std::string one_line(std::string_view message) {
    std::string out;
    for (size_t i = 0; i < message.size(); ++i) {
        if (message[i] != '\n') {
            out += message[i];
            continue;
        }
        while (i + 1 < message.size() && (message[i + 1] == ' ' || message[i + 1] == '\n')) ++i;
        if (i + 1 < message.size()) out += out.ends_with(':') ? " " : "; ";
    }
    return out;
}

// CLI11 lists every argument after the first it did not expect ("The following arguments were not expected:
// 0 --warmup 1 --reps"), although the later ones may be fine. Name the first one, what it followed, and why.
std::string explain_extras(CLI::App& app, std::string_view message, int argc, char** argv) {
    const size_t colon = message.find(": ");
    if (colon == std::string_view::npos) return std::string(message);
    std::string_view rest = message.substr(colon + 2);
    const std::string first(rest.substr(0, rest.find(' ')));
    CLI::App* cmd = &app;
    for (CLI::App* sub = &app; sub != nullptr;) {
        const auto subs = sub->get_subcommands();
        sub = subs.empty() ? nullptr : subs.front();
        if (sub != nullptr) cmd = sub;
    }
    std::string out = "unexpected argument '" + first.substr(0, 40) + (first.size() > 40 ? "...'" : "'");
    for (int i = 2; i < argc; ++i) {
        if (argv[i] != first) continue;
        const std::string prev = argv[i - 1];
        const CLI::Option* opt = prev.starts_with("-") ? cmd->get_option_no_throw(prev) : nullptr;
        if (opt != nullptr && opt->get_expected_min() == 0) {
            out += " after " + prev + ", which takes no value";
        } else if (i > 1) {
            out += " after '" + prev.substr(0, 40) + "'";
        }
        break;
    }
    std::string path;
    for (const CLI::App* c = cmd; c != nullptr && c->get_parent() != nullptr; c = c->get_parent()) {
        path = " " + c->get_name() + path;
    }
    return out + "; see `vkattn" + path + " --help`";
}

void print_error(std::string_view message) { std::fprintf(stderr, "vkattn: %s\n", one_line(message).c_str()); }

}  // namespace

#ifdef VKATTN_HAS_MPI
namespace vkattn::cli {
Runner add_ring_attention(CLI::App& app);  // cmd_ring.cpp
}
#endif

int main(int argc, char** argv) {
    // `vkattn attention --ring ...` is `vkattn ring-attention ...` (ring attention over MPI ranks, cmd_ring.cpp).
    std::vector<char*> args(argv, argv + argc);
    const auto ring = std::find(args.begin(), args.end(), std::string_view("--ring"));
    if (argc > 1 && std::string_view(argv[1]) == "attention" && ring != args.end()) {
#ifdef VKATTN_HAS_MPI
        static char ring_command[] = "ring-attention";
        args.erase(ring);
        args[1] = ring_command;
        argc = int(args.size());
        argv = args.data();
#else
        print_error("--ring needs a build with MPI (VKATTN_WITH_MPI=ON and libopenmpi-dev)");
        return vkattn::cli::kBadInput;
#endif
    }
    CLI::App app{"vkattn: transformer attention and GPT-2 on any Vulkan GPU, checked against a CPU reference.\n"
                 "Environment: VKATTN_DEVICE picks a GPU (index or name substring); VKATTN_VALIDATION=1 turns on "
                 "the Khronos validation layer; VKATTN_COOPMAT=1 lets f16 matmuls use the experimental cooperative-matrix kernel."};
    app.set_version_flag("--version", "vkattn " + vkattn::version() + " (commit " + vkattn::git_commit() + ")");
    app.require_subcommand(1);
    std::map<std::string, vkattn::cli::Runner> runners = {
        {"devices", vkattn::cli::add_devices(app)},
        {"attention", vkattn::cli::add_attention(app)},
        {"demo", vkattn::cli::add_demo(app)},
        {"forward", vkattn::cli::add_forward(app)},
        {"generate", vkattn::cli::add_generate(app)},
        {"perplexity", vkattn::cli::add_perplexity(app)},
        {"tokenize", vkattn::cli::add_tokenize(app)},
        {"info", vkattn::cli::add_info(app)},
        {"inspect", vkattn::cli::add_inspect(app)},
        {"bench", vkattn::cli::add_bench(app)},
#ifdef VKATTN_HAS_MPI
        {"ring-attention", vkattn::cli::add_ring_attention(app)},
#endif
    };

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ExtrasError& e) {
        print_error(explain_extras(app, e.what(), argc, argv));
        return vkattn::cli::kBadInput;
    } catch (const CLI::ParseError& e) {
        print_error(e.what());
        return vkattn::cli::kBadInput;
    }
    try {
        for (const CLI::App* sub : app.get_subcommands()) {
            const int rc = runners.at(sub->get_name())();
            // After the run, so that a refused command line still prints exactly one line.
            for (const std::string& note : vkattn::cli::deprecation_notes()) {
                std::fprintf(stderr, "vkattn: note: %s\n", note.c_str());
            }
            return rc;
        }
    } catch (const vkattn::Error& e) {
        print_error(e.what());
        return vkattn::cli::kBadInput;
    } catch (const std::bad_alloc&) {
        print_error("out of host memory");
        return vkattn::cli::kBadInput;
    } catch (const std::exception& e) {
        print_error(e.what());
        return vkattn::cli::kBadInput;
    }
    return vkattn::cli::kOk;
}
