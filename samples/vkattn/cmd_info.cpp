// vkattn info --model: what a model is (family, shapes, parameters, tokenizer) and what it needs on a device
// (weights per storage dtype, KV cache per token and at a context), from config.json alone: no weight is read.
#include "cli.hpp"
#include "cli_args.hpp"

#include <vkattn/dtype.hpp>
#include <vkattn/error.hpp>
#include <vkattn/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>

namespace vkattn::cli {
namespace {

struct Options {
    std::string model;
    int context = 0;  // 0: the model's own context length
    bool json = false;
    DeviceOption device;
};

int run(const Options& o) {
    const model::ModelInfo m = model::inspect_model(o.model);

    // The device is optional here: without one the shapes and byte counts are still worth printing.
    std::optional<DeviceInfo> device;
    std::string no_device;
    try {
        device = Context(o.device.context_options()).device();
    } catch (const Error& e) {
        no_device = e.what();
    }
    // Each layer's cache is one storage buffer bound whole by the attention kernels, which bounds the context
    // a device can attend over; by default the cache is sized for the context the model can use there.
    const uint64_t per_layer_row = m.n_layer > 0 ? m.cache_bytes_per_token / uint64_t(m.n_layer) : 0;
    const uint64_t binding_positions =
        device && per_layer_row > 0 ? device->max_storage_buffer_range / per_layer_row : 0;
    const int usable = binding_positions > 0 ? int(std::min<uint64_t>(uint64_t(m.context_length), binding_positions))
                                             : m.context_length;
    const int context = o.context > 0 ? o.context : usable;
    const uint64_t cache = m.cache_bytes_per_token * uint64_t(context);

    if (o.json) {
        nlohmann::ordered_json j = {{"version", version()},
                                    {"commit", git_commit()},
                                    {"model", m.source},
                                    {"family", m.family},
                                    {"variant", m.variant},
                                    {"synthetic", m.synthetic},
                                    {"layers", m.n_layer},
                                    {"heads", m.n_head},
                                    {"kv_heads", m.n_kv_head},
                                    {"head_dim", m.head_dim},
                                    {"hidden", m.hidden},
                                    {"intermediate", m.intermediate},
                                    {"vocab_size", m.vocab_size},
                                    {"context_length", m.context_length},
                                    {"window", m.window},
                                    {"parameters", m.parameters},
                                    {"tokenizer", m.tokenizer},
                                    {"cache_bytes_per_token", m.cache_bytes_per_token},
                                    {"context", context},
                                    {"cache_bytes", cache}};
        nlohmann::ordered_json weights = nlohmann::ordered_json::array();
        for (const auto& w : m.weight_bytes) {
            nlohmann::ordered_json e = {{"dtype", dtype_name(w.dtype)}, {"bytes", w.bytes}};
            if (device) e["fits"] = w.bytes + cache <= device->device_heap_bytes;
            weights.push_back(e);
        }
        j["weights"] = weights;
        if (device) {
            j["device"] = device->name;
            j["driver"] = device->driver;
            j["heap_bytes"] = device->device_heap_bytes;
            j["positions_per_binding"] = binding_positions;
        } else {
            j["device_error"] = no_device;
        }
        std::printf("%s\n", j.dump(2).c_str());
        return kOk;
    }

    std::printf("%s\n", m.summary().c_str());
    std::printf("  source        %s%s\n", m.source.c_str(), m.synthetic ? " (synthetic: seeded random weights)" : "");
    std::printf("  layers        %d\n", m.n_layer);
    std::printf("  heads         %d query, %d key/value, head dim %d\n", m.n_head, m.n_kv_head, m.head_dim);
    std::printf("  widths        hidden %d, MLP %d, vocabulary %d\n", m.hidden, m.intermediate, m.vocab_size);
    std::printf("  context       %d positions%s\n", m.context_length,
                m.window > 0 ? (", sliding window " + std::to_string(m.window)).c_str() : "");
    std::printf("  parameters    %llu\n", static_cast<unsigned long long>(m.parameters));
    std::printf("  tokenizer     %s\n", m.tokenizer.empty() ? "none (token ids only)" : m.tokenizer.c_str());
    std::printf("  KV cache      %s per token; %s for %d tokens\n", size_str(m.cache_bytes_per_token).c_str(),
                size_str(cache).c_str(), context);
    if (device) {
        std::printf("device %s: %s heap, %s per storage binding (a layer's KV cache holds up to %llu positions)\n",
                    device->name.c_str(), size_str(device->device_heap_bytes).c_str(),
                    size_str(device->max_storage_buffer_range).c_str(),
                    static_cast<unsigned long long>(binding_positions));
    } else {
        std::printf("device: none usable (%s)\n", no_device.c_str());
    }
    for (const auto& w : m.weight_bytes) {
        std::printf("  --dtype %-4s  weights %10s + KV cache %10s = %10s", std::string(dtype_name(w.dtype)).c_str(),
                    size_str(w.bytes).c_str(), size_str(cache).c_str(), size_str(w.bytes + cache).c_str());
        if (device) std::printf("  %s", w.bytes + cache <= device->device_heap_bytes ? "fits" : "does not fit");
        std::printf("\n");
    }
    return kOk;
}

}  // namespace

Runner add_info(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "What a model is and what it needs on the device, from config.json alone");
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "Hugging Face model directory, or synthetic[:...] (see `vkattn forward --help`)")
        ->required();
    add_int(*cmd, "--context", o->context, 1, 1 << 30, "tokens to size the KV cache for (default: the context the model can use on the device)");
    cmd->add_flag("--json", o->json, "print one JSON object instead of the table");
    o->device.add_to(*cmd);
    return [o] { return run(*o); };
}

}  // namespace vkattn::cli
