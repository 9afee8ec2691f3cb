// Attention maps from the CLI: --probs-out, --png, --head and --json on `vkattn attention`, and the per-head
// summary table that `vkattn inspect` prints too.
#pragma once

#include "cli.hpp"

#include <vkattn/attention_map.hpp>
#include <vkattn/dtype.hpp>
#include <vkattn/reference.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vkattn::cli {

struct AttentionMapOptions {
    std::string png;        // --png: the map of one head (--head) or a grid of all heads
    std::string probs_out;  // --probs-out: probabilities [B, H, Lq, Lk] as float32 .npy
    int head = -1;          // --head; -1: all heads
    float log_decades = 0;  // --log-scale; 0: linear colours
    bool json = false;      // --json: the command's report as one JSON object on stdout, summaries included
    void add_to(CLI::App& cmd);
    bool wanted() const { return !png.empty() || !probs_out.empty(); }
};

// What the attention command computed from, for its maps.
struct AttentionMapInputs {
    const reference::AttentionShape& shape;
    DType dtype;
    const std::vector<float>& q;  // [B, H, Lq, D]
    const std::vector<float>& k;  // [B, Hkv, Lk, D]
    float scale = 0;
    bool causal = false;
    int window = 0;
    std::string backend;          // vulkan: attention_scores + attention_softmax; cpu: the reference
    bool check = false;           // vulkan: compare the probabilities with the reference
    const DeviceOption& device;
};

// Throws vkattn::Error on map options that cannot apply (--head out of range, --head or --log-scale without
// --png, a --png or --probs-out in a folder that does not exist), before anything is computed.
void check_attention_map_options(const AttentionMapOptions& options, int heads);
// Throws vkattn::Error when the folder of `file` (given as `option`) does not exist.
void check_writable_folder(const std::string& file, const std::string& option);

// Computes the probabilities, writes --probs-out and --png, prints the per-head summaries of batch 0. With json,
// the summaries (and the probabilities' check) go into *json and the report lines to stderr. Returns kOk, or
// kMismatch when --check finds the GPU probabilities off the reference. Throws vkattn::Error on bad options
// (--head out of range, --head or --log-scale without --png, an unwritable path).
int write_attention_maps(const AttentionMapOptions& options, const AttentionMapInputs& inputs,
                         nlohmann::ordered_json* json = nullptr);

// The per-head summaries as a table on stdout, one row per head, "-" where a mean has no rows.
void print_head_summaries(const std::vector<viz::HeadSummary>& heads);
// The summaries of several layers (vkattn inspect) as one table on stdout, one row per layer and head.
struct LayerSummaries {
    int layer = 0;
    std::vector<viz::HeadSummary> heads;
};
void print_layer_summaries(const std::vector<LayerSummaries>& layers);
// ... and as JSON: [{"head": 0, "previous_token": ..., "first_token": ..., "mean_distance": ..., "entropy": ...}].
nlohmann::ordered_json head_summaries_json(const std::vector<viz::HeadSummary>& heads);

}  // namespace vkattn::cli
