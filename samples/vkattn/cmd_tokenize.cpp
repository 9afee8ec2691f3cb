// vkattn tokenize: text -> ids, or ids -> text, with a model directory's tokenizer files.
#include "cli.hpp"

#include <vkattn/error.hpp>

#include <cstdio>
#include <filesystem>

namespace vkattn::cli {
namespace {

struct Options {
    std::string model, text, decode;
    bool text_given = false;
};

int run(const Options& o) {
    if (o.text_given == !o.decode.empty()) throw Error("give exactly one of --text or --decode");
    if (o.model == "synthetic" || o.model.starts_with("synthetic:")) {
        throw Error("tokenize needs a tokenizer (tokenizer files in a model directory), and synthetic models have none");
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(o.model, ec)) {
        throw Error("--model " + o.model + " is not a directory; expected a model directory with tokenizer files");
    }
    const model::Tokenizer tokenizer = model::Tokenizer::from_dir(o.model);
    if (o.text_given) {
        std::printf("%s\n", join_ids(tokenizer.encode(o.text)).c_str());
    } else {
        const std::string text = tokenizer.decode(parse_ids(o.decode, "--decode"));
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::printf("\n");
    }
    return kOk;
}

}  // namespace

Runner add_tokenize(CLI::App& app) {
    auto* cmd = app.add_subcommand("tokenize", "The model's tokenizer: text to comma-separated ids, or ids back to text");
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "model directory with tokenizer files (the weights are not read)")
        ->required();
    cmd->add_option("--text", o->text, "text to encode")->each([o](const std::string&) { o->text_given = true; });
    cmd->add_option("--decode", o->decode, "comma-separated ids to decode, e.g. 15496,995");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
