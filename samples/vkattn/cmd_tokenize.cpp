// vkattn tokenize: GPT-2 BPE text -> ids, or ids -> text, with a model directory's vocab.json and merges.txt.
#include "cli.hpp"

#include <vkattn/error.hpp>

#include <cstdio>

namespace vkattn::cli {
namespace {

struct Options {
    std::string model, text, decode;
    bool text_given = false;
};

int run(const Options& o) {
    if (o.text_given == !o.decode.empty()) throw Error("give exactly one of --text or --decode");
    ModelSource source;  // only the tokenizer files are needed, not config.json or the weights
    source.synthetic = o.model == "synthetic" || o.model.starts_with("synthetic:");
    source.dir = o.model;
    std::error_code ec;
    if (!source.synthetic && !std::filesystem::is_directory(source.dir, ec)) {
        throw Error("--model " + o.model + " is not a directory; expected one with vocab.json and merges.txt");
    }
    const model::Tokenizer tokenizer = load_tokenizer(source, "tokenize");
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
    auto* cmd = app.add_subcommand("tokenize", "GPT-2 BPE: text to comma-separated ids, or ids back to text");
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "directory with vocab.json and merges.txt (the weights are not read)")
        ->required();
    cmd->add_option("--text", o->text, "text to encode")->each([o](const std::string&) { o->text_given = true; });
    cmd->add_option("--decode", o->decode, "comma-separated ids to decode, e.g. 15496,995");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
