// vkattn inspect: what a model's attention heads do on a prompt. The attention probabilities of one head (a full
// map), one layer (a grid of its heads) or every layer (a layers × heads grid of thumbnails), drawn as a PNG with
// the prompt's tokens along both axes, the per-head summaries as a table (or --json), computed on the GPU with
// LanguageModel::forward_with_attention and checked against the CPU reference with --check.
#include "attention_maps.hpp"
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/attention_map.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>

namespace vkattn::cli {
namespace {

struct Options {
    ModelOptions model;
    std::string tokens, text, file, tokenizer;
    std::optional<int> layer, head;
    std::string png, probs_out;
    float log_decades = 0;
    bool check = false;
    bool json = false;
    CLI::App* cmd = nullptr;
};

// Probabilities that differ by less than this draw the same map: one colour level is vmax / 255 (4e-3 at
// vmax = 1), 40 times more. The GPU runs fp32 through every layer and the reference's attention runs in double,
// so rounding differences grow with depth (forward --check allows 2e-3 on the logits for the same reason).
constexpr double kProbAtol = 1e-4, kProbRtol = 1e-3;
// As forward --check: max |Δ logits| GPU vs CPU.
constexpr double kLogitTol = 2e-3;

// Flags that cannot apply to this command line, refused before anything is read.
void check_flags(const Options& o) {
    const CLI::App& c = *o.cmd;
    const int sources = int(given(c, "--text")) + int(given(c, "--tokens")) + int(given(c, "--file"));
    if (sources != 1) throw Error("give the prompt as exactly one of --text, --tokens or --file");
    if (o.head && !o.layer) throw Error("--head draws one head of a layer; give --layer too");
    if (o.head && o.png.empty()) throw Error("--head chooses the head that --png draws; give --png too");
    if (!o.layer && given(c, "--impl")) {
        throw Error("--impl chooses the kernels of the layers not inspected, and without --layer every layer is: they "
                    "all run the three inspectable kernels");
    }
    if (o.log_decades != 0 && o.png.empty()) throw Error("--log-scale sets the colours of --png; give --png too");
    o.model.check_flags(o.check);
    if (!o.png.empty()) check_writable_folder(o.png, "--png");
    if (!o.probs_out.empty()) check_writable_folder(o.probs_out, "--probs-out");
}

// A token as a label: its bytes, with a space shown as '_' and control characters escaped, so that " the" and
// "the" differ on the map (non-ASCII characters are drawn as '?').
std::string label(const model::Tokenizer* tokenizer, int id) {
    if (tokenizer == nullptr || id >= tokenizer->vocab_size()) return std::to_string(id);
    std::string out;
    for (const char c : tokenizer->token_text(id)) {
        if (c == ' ') {
            out += '_';
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += '?';
        } else {
            out += c;
        }
    }
    return out.empty() ? std::to_string(id) : out;
}

struct Run {
    model::ForwardAttention result;
    std::string description;
    Context* context = nullptr;  // of the GPU model, for the JSON's device and driver
};

// One forward of the prompt through a loaded model, capturing `layers`, with its time on stderr.
Run capture(model::LanguageModel& lm, const std::vector<int>& ids, const std::vector<int>& layers) {
    const auto t0 = std::chrono::steady_clock::now();
    Run r{lm.forward_with_attention(ids, layers), lm.description(), lm.context()};
    std::fprintf(stderr, "the forward of %zu tokens with the attention of %zu layer%s took %s\n", ids.size(),
                 layers.size(), layers.size() == 1 ? "" : "s", duration_str(ms_since(t0) / 1e3).c_str());
    return r;
}

void print_loaded(const LoadedModel& loaded) {
    std::fprintf(stderr, "loaded in %s: %s\n", duration_str(loaded.load_ms / 1e3).c_str(),
                 loaded.lm->description().c_str());
}

nlohmann::ordered_json map_layout_json(const viz::MapLayout& l) {
    nlohmann::ordered_json panels = nlohmann::ordered_json::array();
    for (const auto& p : l.panels) {
        panels.push_back({{"head", p.head}, {"x", p.x}, {"y", p.y}, {"width", p.width}, {"height", p.height}});
    }
    return {{"kind", "map"}, {"width", l.width}, {"height", l.height}, {"cell", l.cell}, {"vmax", l.vmax},
            {"log_decades", l.log_decades}, {"panels", panels}};
}

nlohmann::ordered_json thumbnail_layout_json(const viz::ThumbnailLayout& l) {
    return {{"kind", "thumbnails"}, {"width", l.width}, {"height", l.height}, {"x0", l.x0}, {"y0", l.y0},
            {"pitch_x", l.pitch_x}, {"pitch_y", l.pitch_y}, {"thumb_width", l.thumb_width},
            {"thumb_height", l.thumb_height}, {"pool", l.pool}, {"cell", l.cell}, {"vmax", l.vmax},
            {"log_decades", l.log_decades}};
}

int run(const Options& o) {
    check_flags(o);
    const model::ModelInfo info = model::inspect_model(o.model.model);
    if (o.layer && *o.layer >= info.n_layer) {
        throw Error("--layer " + std::to_string(*o.layer) + " does not exist: the model has " +
                    std::to_string(info.n_layer) + " layers (0 to " + std::to_string(info.n_layer - 1) + ")");
    }
    if (o.head && *o.head >= info.n_head) {
        throw Error("--head " + std::to_string(*o.head) + " does not exist: the model has " +
                    std::to_string(info.n_head) + " heads (0 to " + std::to_string(info.n_head - 1) + ")");
    }
    if (!o.tokenizer.empty() && !info.tokenizer.empty()) {
        throw Error("--tokenizer gives a tokenizer to a model without one, and " + o.model.model + " has its own (" +
                    info.tokenizer + ")");
    }
    // A tokenizer from --tokenizer is read before the model, so that a bad directory fails fast.
    std::optional<model::Tokenizer> own_tokenizer;
    if (!o.tokenizer.empty()) own_tokenizer = model::Tokenizer::from_dir(o.tokenizer);

    std::vector<int> ids;
    std::string text;  // of --text or --file, encoded once the model (and its tokenizer) is loaded
    const std::string text_option = given(*o.cmd, "--text") ? "--text" : "--file";
    if (given(*o.cmd, "--tokens")) {
        ids = parse_ids(o.tokens, "--tokens");
        check_prompt(ids, info, "--tokens");
    } else {
        if (info.tokenizer.empty() && !own_tokenizer) {
            throw Error(text_option + " needs a tokenizer (tokenizer files in a model directory), and " + info.source +
                        " has none: give token ids with --tokens, or --tokenizer DIR");
        }
        text = text_option == "--text" ? o.text : read_text_file("--file", o.file, true);
    }
    std::vector<int> layers;
    if (o.layer) {
        layers = {*o.layer};
    } else {
        for (int l = 0; l < info.n_layer; ++l) layers.push_back(l);
    }
    const std::string other = o.model.backend == "cpu" ? "vulkan" : "cpu";

    FILE* out = o.json ? stderr : stdout;
    LoadedModel loaded = open_timed(o.model, "");
    std::unique_ptr<model::LanguageModel>& lm = loaded.lm;
    if (ids.empty()) {
        const model::Tokenizer& tok = own_tokenizer ? *own_tokenizer : need_tokenizer(*lm, text_option);
        ids = tok.encode(text);
        if (ids.empty()) throw Error("the prompt is empty: " + text_option + " encodes to no tokens");
        check_prompt(ids, info, text_option);
    }
    // Host memory: the probabilities, twice with --check (both backends' copies), refused before any compute.
    const uint64_t bytes = model::capture_bytes(int(layers.size()), info.n_head, int(ids.size()), int(ids.size()));
    check_host_memory(o.check ? 2 * bytes : bytes, "the attention probabilities of " + std::to_string(layers.size()) +
                                                       (layers.size() == 1 ? " layer" : " layers") + " over " +
                                                       std::to_string(ids.size()) + " tokens");
    print_loaded(loaded);  // once the prompt is accepted, so that a refusal stays one line on stderr
    const Run main = capture(*lm, ids, layers);
    const model::Tokenizer* tokenizer = own_tokenizer ? &*own_tokenizer : lm->tokenizer();
    const int T = int(ids.size()), H = info.n_head;

    nlohmann::ordered_json j = provenance(main.context);
    j["model"] = o.model.model;
    j["backend"] = o.model.backend;
    j["dtype"] = o.model.dtype;
    std::fprintf(out, "%s (%s); %d tokens\n", info.summary().c_str(), o.model.model.c_str(), T);
    std::vector<std::string> labels;
    nlohmann::ordered_json token_json = nlohmann::ordered_json::array();
    for (const int id : ids) {
        labels.push_back(label(tokenizer, id));
        token_json.push_back({{"id", id},
                              {"text", tokenizer && id < tokenizer->vocab_size() ? nlohmann::ordered_json(tokenizer->token_text(id))
                                                                                : nlohmann::ordered_json(nullptr)}});
    }
    j["tokens"] = token_json;
    j["layers"] = layers;

    int rc = kOk;
    if (o.check) {
        lm = nullptr;  // frees the weights (and the device memory) before the other backend loads its copy
        const LoadedModel other_model = open_timed(o.model, other);
        print_loaded(other_model);
        const Run ref = capture(*other_model.lm, ids, layers);
        const auto& gpu = o.model.backend == "cpu" ? ref.result : main.result;
        const auto& cpu = o.model.backend == "cpu" ? main.result : ref.result;
        if (other == "vulkan") {
            j["device"] = ref.context->device().name;
            j["driver"] = ref.context->device().driver;
        }
        ErrorStats worst;
        int worst_layer = layers.front();
        size_t bad = 0;
        for (size_t i = 0; i < layers.size(); ++i) {
            const ErrorStats e = compare(gpu.attention[i].probs, cpu.attention[i].probs, kProbAtol, kProbRtol);
            bad += e.bad;
            if (i == 0 || e.max_abs > worst.max_abs) {
                worst = e;
                worst_layer = layers[i];
            }
        }
        const ErrorStats logits = compare(gpu.logits, cpu.logits, kLogitTol, 0);
        const bool pass = bad == 0 && logits.bad == 0;
        std::fprintf(out,
                     "check: max |Δ probability| GPU vs CPU = %.3g in layer %d (tolerance %.0e + %.0e·|CPU|), max "
                     "|Δ logits| = %.3g (tolerance %.0e), %s weights: %s\n",
                     worst.max_abs, worst_layer, kProbAtol, kProbRtol, logits.max_abs, kLogitTol, o.model.dtype.c_str(),
                     pass ? "PASS" : "FAIL");
        if (bad != 0) {
            const size_t per_head = size_t(T) * size_t(T), w = worst.worst;
            std::fprintf(out, "  %zu probabilities out of tolerance; worst in layer %d, head %zu, query %zu, key %zu\n",
                         bad, worst_layer, w / per_head, w % per_head / size_t(T), w % size_t(T));
        }
        j["check"] = {{"max_abs_probability", worst.max_abs}, {"layer", worst_layer}, {"atol", kProbAtol},
                      {"rtol", kProbRtol}, {"bad", bad},        {"max_abs_logits", logits.max_abs},
                      {"logits_tolerance", kLogitTol},          {"pass", pass}};
        if (!pass) rc = kMismatch;
    }

    const auto& attention = main.result.attention;
    if (!o.probs_out.empty()) {
        std::vector<float> all;
        std::vector<int64_t> shape = {int64_t(H), T, T};
        if (o.layer) {
            all = attention.front().probs;
        } else {
            shape.insert(shape.begin(), int64_t(layers.size()));
            for (const auto& a : attention) all.insert(all.end(), a.probs.begin(), a.probs.end());
        }
        write_npy(o.probs_out, shape, all);
        std::fprintf(out, "wrote %s: probabilities %s = [%s%d, %d, %d] float32\n", o.probs_out.c_str(),
                     o.layer ? "[H, T, T]" : "[layers, H, T, T]",
                     o.layer ? "" : (std::to_string(layers.size()) + ", ").c_str(), H, T, T);
        j["probs_out"] = o.probs_out;
    }

    const std::string where = o.model.backend == "cpu" ? "cpu reference" : "vulkan";
    const std::string name = info.synthetic ? info.source : std::filesystem::path(info.source).filename().string();
    if (!o.png.empty()) {
        viz::Image image;
        std::string what;
        if (o.layer) {
            const model::LayerAttention& a = attention.front();
            viz::MapOptions mo;
            mo.head = o.head.value_or(-1);
            mo.log_decades = o.log_decades;
            mo.query_tokens = labels;
            mo.title = name + " (" + info.family + "), layer " + std::to_string(a.layer) +
                       (o.head ? ", head " + std::to_string(*o.head) : "") + ", " + std::to_string(T) + " tokens, " +
                       where;
            viz::MapLayout layout;
            image = viz::render_attention_map({a.probs, a.H, a.Lq, a.Lk}, mo, &layout);
            what = o.head ? "layer " + std::to_string(a.layer) + " head " + std::to_string(*o.head)
                          : "layer " + std::to_string(a.layer) + ", " + std::to_string(H) + " heads";
            what += ", " + std::to_string(layout.cell) + " px per token";
            j["layout"] = map_layout_json(layout);
        } else {
            std::vector<viz::AttentionProbs> all;
            for (const auto& a : attention) all.push_back({a.probs, a.H, a.Lq, a.Lk});
            viz::ThumbnailOptions to;
            to.log_decades = o.log_decades;
            to.title = name + " (" + info.family + "), " + std::to_string(info.n_layer) + " layers x " +
                       std::to_string(H) + " heads, " + std::to_string(T) + " tokens, " + where;
            viz::ThumbnailLayout layout;
            image = viz::render_attention_thumbnails(all, to, &layout);
            what = std::to_string(info.n_layer) + " layers x " + std::to_string(H) + " heads";
            what += layout.pool > 1 ? ", " + std::to_string(layout.pool) + " tokens per pixel"
                                    : ", " + std::to_string(layout.cell) + " px per token";
            j["layout"] = thumbnail_layout_json(layout);
        }
        viz::write_png(o.png, image);
        std::fprintf(out, "wrote %s: %d x %d pixels, %s\n", o.png.c_str(), image.width, image.height, what.c_str());
        j["png"] = o.png;
    }

    std::vector<LayerSummaries> summaries;
    nlohmann::ordered_json summaries_json = nlohmann::ordered_json::array();
    for (const auto& a : attention) {
        summaries.push_back({a.layer, viz::summarize_heads({a.probs, a.H, a.Lq, a.Lk})});
        summaries_json.push_back({{"layer", a.layer}, {"heads", head_summaries_json(summaries.back().heads)}});
    }
    if (o.json) {
        j["summaries"] = summaries_json;
    } else {
        print_layer_summaries(summaries);
    }
    if (o.json) std::printf("%s\n", json_line(j).c_str());
    return rc;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "inspect", "A model's attention weights on a prompt: one head, one layer's heads, or every layer's, drawn as "
                   "a PNG with the tokens on both axes, with per-head summaries");
    auto o = std::make_shared<Options>();
    o->cmd = cmd;
    o->model.add_to(*cmd);
    cmd->add_option("--text", o->text, "prompt as text (needs the model's tokenizer, or --tokenizer)");
    cmd->add_option("--tokens", o->tokens, "prompt as comma-separated token ids, e.g. 464,3797");
    cmd->add_option("--file", o->file, "prompt as the text of a file (- for stdin)")->type_name("PATH");
    cmd->add_option("--tokenizer", o->tokenizer,
                    "tokenizer files (tokenizer.json, or GPT-2's vocab.json + merges.txt) for a model without them, "
                    "e.g. a synthetic GPT-2: encodes --text/--file and labels the tokens")
        ->type_name("DIR");
    add_int(*cmd, "--layer", o->layer, 0, std::numeric_limits<int>::max(),
            "the layer to draw: a grid of its heads, or one head with --head (default: every layer, as a layers x "
            "heads grid of thumbnails)");
    add_int(*cmd, "--head", o->head, 0, std::numeric_limits<int>::max(), "with --layer: draw this head alone, full size");
    cmd->add_option("--png", o->png, "draw the attention as a PNG (viridis; masked keys blank)")->type_name("FILE");
    cmd->add_option("--probs-out", o->probs_out,
                    "write the probabilities as float32 .npy: [H, T, T] with --layer, else [layers, H, T, T]")
        ->type_name("FILE");
    add_float(*cmd, "--log-scale", o->log_decades, 0, 38, false,
              "with --png: colour by log10 of the probability over this many decades below the brightest (e.g. 3, "
              "for long prompts); 0: linear");
    cmd->add_flag("--check", o->check,
                  "also run the other backend (the CPU reference, with the same --dtype rounding) and compare the "
                  "probabilities (tolerance 1e-4 + 1e-3·|CPU|, 40 times below one colour level) and logits (2e-3); "
                  "exit 1 past them");
    cmd->add_flag("--json", o->json,
                  "one JSON object on stdout (tokens, per-head summaries of every layer drawn, the check, the PNG's "
                  "layout, version, commit, device and driver); the report goes to stderr");
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
