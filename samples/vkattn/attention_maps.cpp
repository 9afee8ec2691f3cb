#include "attention_maps.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/error.hpp>
#include <vkattn/npy.hpp>
#include <vkattn/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace vkattn::cli {

// A missing folder is the usual mistake; say so before minutes of compute rather than after.
void check_writable_folder(const std::string& file, const std::string& option) {
    const std::filesystem::path parent = std::filesystem::path(file).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        throw Error("cannot write " + option + " " + file + ": " + parent.string() + " is not a directory");
    }
}

namespace {

std::string cell(double v, const char* format) {
    if (std::isnan(v)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

nlohmann::ordered_json number(double v) {
    return std::isnan(v) ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v);
}

}  // namespace

void AttentionMapOptions::add_to(CLI::App& cmd) {
    cmd.add_option("--probs-out", probs_out, "write the attention probabilities [B, H, Lq, Lk] as float32 .npy")
        ->type_name("FILE");
    cmd.add_option("--png", png,
                   "draw the probabilities of batch 0 as a PNG: one head (--head) or a grid of all heads, and print "
                   "per-head summaries")
        ->type_name("FILE");
    cmd.add_option("--head", head, "with --png: the head to draw (default: all heads in a grid)");
    cmd.add_option("--log-scale", log_decades,
                   "with --png: colour by log10 of the probability over this many decades below the brightest "
                   "(e.g. 3, for long sequences); default linear");
    cmd.add_flag("--json", json, "print one JSON object on stdout instead of the report (on stderr then): the check, "
                                 "the per-head summaries with --png or --probs-out, version, commit, device and driver");
}

void check_attention_map_options(const AttentionMapOptions& o, int heads) {
    if (o.head != -1 && o.png.empty()) throw Error("--head chooses the head that --png draws; give --png too");
    if (o.log_decades != 0 && o.png.empty()) throw Error("--log-scale sets the colours of --png; give --png too");
    if (!(o.log_decades >= 0 && o.log_decades <= 38)) {
        throw Error("--log-scale must be 0 (linear) to 38 decades, got " + cell(o.log_decades, "%g"));
    }
    if (o.head < -1 || o.head >= heads) {
        throw Error("--head " + std::to_string(o.head) + " does not exist: the attention has " + std::to_string(heads) +
                    " heads (0 to " + std::to_string(heads - 1) + ")");
    }
    if (!o.png.empty()) check_writable_folder(o.png, "--png");
    if (!o.probs_out.empty()) check_writable_folder(o.probs_out, "--probs-out");
}

void print_head_summaries(const std::vector<viz::HeadSummary>& heads) {
    std::printf("per-head summary: mean probability on the previous and on the first token, mean distance attended "
                "(tokens), entropy (nats)\n");
    std::printf("%6s %10s %10s %10s %10s\n", "head", "previous", "first", "distance", "entropy");
    for (const auto& h : heads) {
        std::printf("%6d %10s %10s %10s %10s\n", h.head, cell(h.previous_token, "%.3f").c_str(),
                    cell(h.first_token, "%.3f").c_str(), cell(h.mean_distance, "%.2f").c_str(),
                    cell(h.entropy, "%.3f").c_str());
    }
}

void print_layer_summaries(const std::vector<LayerSummaries>& layers) {
    std::printf("per-head summary: mean probability on the previous and on the first token, mean distance attended "
                "(tokens), entropy (nats)\n");
    std::printf("%6s %6s %10s %10s %10s %10s\n", "layer", "head", "previous", "first", "distance", "entropy");
    for (const auto& l : layers) {
        for (const auto& h : l.heads) {
            std::printf("%6d %6d %10s %10s %10s %10s\n", l.layer, h.head, cell(h.previous_token, "%.3f").c_str(),
                        cell(h.first_token, "%.3f").c_str(), cell(h.mean_distance, "%.2f").c_str(),
                        cell(h.entropy, "%.3f").c_str());
        }
    }
}

nlohmann::ordered_json head_summaries_json(const std::vector<viz::HeadSummary>& heads) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& h : heads) {
        out.push_back({{"head", h.head},
                       {"previous_token", number(h.previous_token)},
                       {"first_token", number(h.first_token)},
                       {"mean_distance", number(h.mean_distance)},
                       {"entropy", number(h.entropy)}});
    }
    return out;
}

int write_attention_maps(const AttentionMapOptions& o, const AttentionMapInputs& in, nlohmann::ordered_json* json) {
    const auto& s = in.shape;
    FILE* report = json ? stderr : stdout;
    check_attention_map_options(o, s.H);
    if (!o.wanted()) return kOk;

    reference::AttentionOptions ref_opts{in.scale, in.causal, in.window, {}, {}};
    std::vector<float> probs;  // [B, H, Lq, Lk]
    if (in.backend == "cpu" || in.check) probs = reference::attention_probs(s, in.q, in.k, ref_opts);
    if (in.backend != "cpu") {
        const std::vector<float> ref = std::move(probs);
        Context ctx(in.device.context_options());
        Tensor q(ctx, {s.B, s.H, s.Lq, s.D}, in.q, in.dtype);
        Tensor k(ctx, {s.B, s.Hkv, s.Lk, s.D}, in.k, in.dtype);
        Tensor scores(ctx, {s.B, s.H, s.Lq, s.Lk});
        AttentionParams params;
        params.scale = in.scale;
        params.causal = in.causal;
        params.window = in.window;
        attention_scores(ctx, q, k, scores, params);
        attention_softmax(ctx, scores, scores, params);
        probs = scores.download();
        if (in.check) {
            // fp32 exp and an Lk-term sum against the double reference: errors of a few ulp of 1 per row.
            const double atol = 1e-5, rtol = 1e-4;
            const ErrorStats e = compare(probs, ref, atol, rtol);
            std::fprintf(report, "check probabilities: max |GPU - CPU| = %.3g (tolerance %.0e + %.0e·|CPU|): %s\n",
                         e.max_abs, atol, rtol, e.bad == 0 ? "PASS" : "FAIL");
            if (json) {
                (*json)["check_probabilities"] = {
                    {"max_abs", e.max_abs}, {"atol", atol}, {"rtol", rtol}, {"bad", e.bad}, {"pass", e.bad == 0}};
            }
            if (e.bad != 0) return kMismatch;
        }
    }
    if (!o.probs_out.empty()) {
        const std::vector<int64_t> shape = {s.B, s.H, s.Lq, s.Lk};
        write_npy(o.probs_out, shape, probs);
        std::fprintf(report, "wrote %s: probabilities [B, H, Lq, Lk] = [%d, %d, %d, %d] float32\n", o.probs_out.c_str(),
                     s.B, s.H, s.Lq, s.Lk);
        if (json) (*json)["probs_out"] = o.probs_out;
    }
    const size_t per_batch = size_t(s.H) * size_t(s.Lq) * size_t(s.Lk);
    const viz::AttentionProbs batch0{std::span<const float>(probs.data(), per_batch), s.H, s.Lq, s.Lk};
    if (!o.png.empty()) {
        viz::MapOptions mo;
        mo.head = o.head;
        mo.log_decades = o.log_decades;
        mo.title = std::string("attention") + (in.causal ? " causal" : "") +
                   (in.window ? " window " + std::to_string(in.window) : "") + ", Lq " + std::to_string(s.Lq) +
                   ", Lk " + std::to_string(s.Lk) + (s.B > 1 ? ", batch 0 of " + std::to_string(s.B) : "") + ", " +
                   in.backend;
        viz::MapLayout layout;
        const viz::Image image = viz::render_attention_map(batch0, mo, &layout);
        viz::write_png(o.png, image);
        const std::string what = o.head >= 0 || s.H == 1 ? "head " + std::to_string(std::max(o.head, 0))
                                                          : std::to_string(s.H) + " heads";
        std::fprintf(report, "wrote %s: %d x %d pixels, %s, %d px per token, colours from 0 to %.3g", o.png.c_str(),
                     image.width, image.height, what.c_str(), layout.cell, double(layout.vmax));
        if (o.log_decades > 0) std::fprintf(report, " on a log scale over %g decades", double(o.log_decades));
        std::fprintf(report, "\n");
        if (json) (*json)["png"] = o.png;
    }
    const auto summaries = viz::summarize_heads(batch0);
    if (json) {
        (*json)["batch"] = 0;
        (*json)["heads"] = head_summaries_json(summaries);
    } else {
        if (s.B > 1) std::printf("(batch 0 of %d)\n", s.B);
        print_head_summaries(summaries);
    }
    return kOk;
}

}  // namespace vkattn::cli
