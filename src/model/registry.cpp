// The family registry and open_model: config.json (or a synthetic spec) -> the family -> the model.
#include "model/family.hpp"
#include "model/json_file.hpp"

#include <vkattn/error.hpp>
#include <vkattn/units.hpp>

#include <algorithm>
#include <cstdio>

namespace vkattn::model {

// Every family, one line each: FAMILY(name) where src/model/<name>*.cpp defines `const Family& name_family()`.
// The order matters only for `synthetic:ARGS`, which the first family that knows ARGS's syntax takes.
#define VKATTN_MODEL_FAMILIES(FAMILY) \
    FAMILY(gpt2)                      \
    FAMILY(llama)

#define VKATTN_DECLARE_FAMILY(name) const Family& name##_family();
VKATTN_MODEL_FAMILIES(VKATTN_DECLARE_FAMILY)
#undef VKATTN_DECLARE_FAMILY

namespace {

const std::vector<const Family*>& families() {
#define VKATTN_LIST_FAMILY(name) &name##_family(),
    static const std::vector<const Family*> all = {VKATTN_MODEL_FAMILIES(VKATTN_LIST_FAMILY)};
#undef VKATTN_LIST_FAMILY
    return all;
}

bool listed(const std::vector<std::string_view>& names, const std::string& value) {
    for (const std::string_view n : names) {
        if (n == value) return true;
    }
    return false;
}

std::string supported_architectures() {
    std::string s;
    for (const Family* f : families()) {
        for (const std::string_view a : f->architectures) s += (s.empty() ? "" : ", ") + std::string(a);
    }
    return s;
}

// The family config.json asks for: the first `architectures` entry a family lists, then `model_type`.
const Family& family_of(const nlohmann::json& config, const std::filesystem::path& path) {
    if (config.contains("architectures")) {
        const nlohmann::json& arch = config.at("architectures");
        if (!arch.is_array()) {
            throw Error(path.string() + ": 'architectures' is " + describe_json(arch) + ", expected an array of names");
        }
        for (const nlohmann::json& a : arch) {
            if (!a.is_string()) continue;
            for (const Family* f : families()) {
                if (listed(f->architectures, a.get<std::string>())) return *f;
            }
        }
    }
    if (config.contains("model_type") && config.at("model_type").is_string()) {
        for (const Family* f : families()) {
            if (listed(f->model_types, config.at("model_type").get<std::string>())) return *f;
        }
    }
    std::string named;
    if (config.contains("architectures") && !config.at("architectures").empty()) {
        named = "architectures[0] " + describe_json(config.at("architectures").at(0));
    }
    if (config.contains("model_type")) {
        named += (named.empty() ? "" : ", ") + std::string("model_type ") + describe_json(config.at("model_type"));
    }
    throw Error(path.string() + ": " + (named.empty() ? "names no 'architectures' or 'model_type'" : named + " is") +
                " not a model vkattn runs; supported: " + supported_architectures());
}

struct Opened {
    const Family* family = nullptr;
    std::unique_ptr<Checkpoint> checkpoint;
    std::filesystem::path dir;  // empty for synthetic models
    ModelInfo info;
};

Opened open_checkpoint(const std::string& spec) {
    Opened o;
    if (spec == "synthetic" || spec.starts_with("synthetic:")) {
        const std::string_view args = std::string_view(spec).substr(spec == "synthetic" ? 9 : 10);
        std::string help;
        if (spec != "synthetic" && args.empty()) {
            for (const Family* f : families()) help += (help.empty() ? "" : "; ") + std::string(f->synthetic_help);
            throw Error("--model 'synthetic:' names no model; expected synthetic (GPT-2 small) or " + help);
        }
        for (const Family* f : families()) {
            if (f->synthetic == nullptr) continue;
            help += (help.empty() ? "" : "; ") + std::string(f->synthetic_help);
            if (auto c = f->synthetic(args)) {
                o.family = f;
                o.checkpoint = std::move(c);
                break;
            }
        }
        if (!o.checkpoint) throw Error("--model '" + spec + "' is not a synthetic model vkattn knows; expected " + help);
        o.info = o.checkpoint->info();
        o.info.synthetic = true;
    } else {
        o.dir = spec;
        std::error_code ec;
        if (!std::filesystem::is_directory(o.dir, ec)) {
            throw Error("--model " + spec + " is not a directory; expected a Hugging Face model directory (config.json, "
                        "model.safetensors, tokenizer files) or synthetic[:...]");
        }
        const std::filesystem::path path = o.dir / "config.json";
        const nlohmann::json config = read_json_file(path);
        if (!config.is_object()) throw Error(path.string() + ": is " + describe_json(config) + ", expected an object");
        o.family = &family_of(config, path);
        o.checkpoint = o.family->from_config(config, o.dir);
        o.info = o.checkpoint->info();
    }
    o.info.family = std::string(o.family->name);
    o.info.source = spec;
    std::error_code ec;
    if (!o.dir.empty() && std::filesystem::exists(o.dir / "tokenizer.json", ec)) {
        o.info.tokenizer = "tokenizer.json";
    } else if (!o.dir.empty() && std::filesystem::exists(o.dir / "vocab.json", ec)) {
        o.info.tokenizer = "vocab.json + merges.txt";
    }
    return o;
}

// The directory's tokenizer when it has tokenizer files; none otherwise (ids still work).
std::optional<Tokenizer> tokenizer_of(const std::filesystem::path& dir) {
    if (dir.empty()) return std::nullopt;
    std::error_code ec;
    const bool has = std::filesystem::exists(dir / "tokenizer.json", ec) || std::filesystem::exists(dir / "vocab.json", ec);
    if (!has) return std::nullopt;
    return Tokenizer::from_dir(dir);
}

}  // namespace

Backend parse_backend(const std::string& name) {
    if (name == "vulkan") return Backend::vulkan;
    if (name == "cpu") return Backend::cpu;
    throw Error("backend '" + name.substr(0, 40) + "' is not one vkattn has; expected vulkan or cpu");
}

std::string ModelInfo::summary() const {
    char params[32];
    if (parameters >= 100000) {
        std::snprintf(params, sizeof params, "%.1fM", double(parameters) / 1e6);
    } else {
        std::snprintf(params, sizeof params, "%llu", static_cast<unsigned long long>(parameters));
    }
    std::string s = family + (variant.empty() || variant == family ? "" : " (" + variant + ")") + ": " +
                    std::to_string(n_layer) + " layers, " + std::to_string(n_head) + " heads";
    if (n_kv_head != n_head) s += " (" + std::to_string(n_kv_head) + " key/value)";
    s += ", C = " + std::to_string(hidden) + ", V = " + std::to_string(vocab_size) + ", P = " + std::to_string(context_length);
    if (window > 0) s += ", window " + std::to_string(window);
    return s + ", " + params + " parameters";
}

void check_fits_device(const DeviceInfo& device, const std::string& what, uint64_t weight_bytes, DType weights,
                       uint64_t cache_bytes) {
    if (weight_bytes + cache_bytes <= device.device_heap_bytes) return;
    throw Error(what + " needs " + bytes_str(weight_bytes + cache_bytes) + " of device memory (" +
                size_str(weight_bytes) + " of " + std::string(dtype_name(weights)) + " weights, " +
                size_str(cache_bytes) + " of KV cache); " + device.name + " has a " +
                bytes_str(device.device_heap_bytes) + " heap" +
                (weights == DType::f32 ? "; f16 weights would halve the weights" : ""));
}

ModelInfo inspect_model(const std::string& spec) { return open_checkpoint(spec).info; }

std::unique_ptr<LanguageModel> open_model(const std::string& spec, Backend backend, const ModelOptions& options) {
    Opened o = open_checkpoint(spec);
    std::optional<Tokenizer> tokenizer = tokenizer_of(o.dir);
    SpecialTokens special = o.checkpoint->special_tokens(tokenizer ? &*tokenizer : nullptr);
    std::unique_ptr<LanguageModel> model = o.checkpoint->load(backend, options);
    std::string description = model->description();  // what the family says about its backend
    ModelInfo info = o.info;
    if (model->info().context_length > 0) info.context_length = std::min(info.context_length, model->info().context_length);
    const std::string family = info.variant.empty() || info.variant == info.family ? info.family
                                                                                  : info.family + " (" + info.variant + ")";
    ModelAccess::finish(*model, std::move(info), std::move(special), family + " " + description, std::move(tokenizer));
    return model;
}

std::vector<std::string> model_families() {
    std::vector<std::string> names;
    for (const Family* f : families()) names.emplace_back(f->name);
    return names;
}

}  // namespace vkattn::model
