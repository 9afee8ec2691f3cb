// GPT-2 config: checks and config.json parsing. Fields that would change the math in ways the forward
// passes do not implement (exact-erf GELU, a custom MLP width, unscaled attention) are refused here so a
// checkpoint never runs with silently different numerics.
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/model/gpt2_weights.hpp>

#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace vkattn::model {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
    throw Error(path.string() + ": " + what);
}

// A value for a message without dump()ing it whole (a value nested 100,000 deep overflows dump's recursion, and
// a long string would make a 100 kB message): scalars as a short prefix, containers by their type.
std::string brief(const json& v) {
    if (!v.is_primitive()) return std::string("a JSON ") + v.type_name();
    const std::string text = v.dump(-1, ' ', true);  // ASCII, control characters escaped
    return text.size() > 48 ? text.substr(0, 48) + "..." : text;
}

int positive_int(const json& config, const char* key, const std::filesystem::path& path) {
    if (!config.contains(key)) fail(path, std::string("has no '") + key + "', expected a positive integer");
    const json& v = config.at(key);
    if (!v.is_number_integer()) fail(path, std::string("'") + key + "' is " + brief(v) + ", expected a positive integer");
    const int64_t n = v.is_number_unsigned() ? int64_t(std::min<uint64_t>(v.get<uint64_t>(), uint64_t(std::numeric_limits<int64_t>::max())))
                                             : v.get<int64_t>();
    if (n <= 0) fail(path, std::string("'") + key + "' is " + std::to_string(n) + ", expected a positive integer");
    if (n > std::numeric_limits<int>::max()) fail(path, std::string("'") + key + "' is " + brief(v) + ", too large");
    return int(n);
}

bool optional_bool(const json& config, const char* key, bool fallback, const std::filesystem::path& path) {
    if (!config.contains(key)) return fallback;
    const json& v = config.at(key);
    if (!v.is_boolean()) fail(path, std::string("'") + key + "' is " + brief(v) + ", expected true or false");
    return v.get<bool>();
}

}  // namespace

void Gpt2Config::validate() const {
    const auto positive = [](const char* field, int value) {
        if (value <= 0) throw Error(std::string("GPT-2 config: ") + field + " is " + std::to_string(value) + ", expected a positive integer");
    };
    positive("n_embd", n_embd);
    positive("n_head", n_head);
    positive("n_layer", n_layer);
    positive("n_positions", n_positions);
    positive("vocab_size", vocab_size);
    if (n_embd % n_head != 0) {
        throw Error("GPT-2 config: n_embd " + std::to_string(n_embd) + " is not divisible by n_head " + std::to_string(n_head));
    }
    if (!(layer_norm_epsilon > 0.0f) || !std::isfinite(layer_norm_epsilon)) {
        std::ostringstream s;
        s << "GPT-2 config: layer_norm_epsilon is " << layer_norm_epsilon << ", expected a positive finite number";
        throw Error(s.str());
    }
    if (activation_function == "gelu") {
        throw Error("GPT-2 config: activation_function \"gelu\" (exact erf GELU) is not supported; expected the tanh "
                    "approximation \"gelu_new\" or \"gelu_pytorch_tanh\"");
    }
    if (activation_function != "gelu_new" && activation_function != "gelu_pytorch_tanh") {
        throw Error("GPT-2 config: activation_function " + brief(json(activation_function)) +
                    " is not supported; expected \"gelu_new\" or \"gelu_pytorch_tanh\"");
    }
}

Gpt2Config load_gpt2_config(const std::filesystem::path& config_json) {
    const auto& path = config_json;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
    // Only a regular file: a FIFO would block the read forever.
    if (!std::filesystem::is_regular_file(path, ec)) fail(path, "is not a regular file, expected a config.json");
    std::ifstream in(path);
    if (!in) fail(path, "cannot open for reading");
    json config;
    try {
        config = json::parse(in);
    } catch (const json::exception& e) {
        const auto* pe = dynamic_cast<const json::parse_error*>(&e);
        fail(path, pe ? "not valid JSON (syntax error near byte " + std::to_string(pe->byte) + ")"
                      : std::string("not valid JSON (a number out of range)"));
    }
    if (!config.is_object()) fail(path, std::string("is a JSON ") + config.type_name() + ", expected an object");

    if (!config.contains("model_type")) fail(path, "has no 'model_type', expected \"gpt2\"");
    if (config.at("model_type") != "gpt2") fail(path, "'model_type' is " + brief(config.at("model_type")) + ", expected \"gpt2\"");

    Gpt2Config c;
    c.n_embd = positive_int(config, "n_embd", path);
    c.n_head = positive_int(config, "n_head", path);
    c.n_layer = positive_int(config, "n_layer", path);
    c.vocab_size = positive_int(config, "vocab_size", path);
    // Old configs carry n_ctx beside n_positions, newer ones only n_positions; both mean the wpe rows.
    if (config.contains("n_positions")) c.n_positions = positive_int(config, "n_positions", path);
    else if (config.contains("n_ctx")) c.n_positions = positive_int(config, "n_ctx", path);
    else fail(path, "has neither 'n_positions' nor 'n_ctx', expected a positive integer");

    if (config.contains("layer_norm_epsilon")) {
        const json& eps = config.at("layer_norm_epsilon");
        if (!eps.is_number()) fail(path, "'layer_norm_epsilon' is " + brief(eps) + ", expected a number");
        c.layer_norm_epsilon = eps.get<float>();
    }
    if (config.contains("activation_function")) {
        const json& act = config.at("activation_function");
        if (!act.is_string()) fail(path, "'activation_function' is " + brief(act) + ", expected a string");
        c.activation_function = act.get<std::string>();
    }
    if (config.contains("n_inner") && !config.at("n_inner").is_null()) {
        const int n_inner = positive_int(config, "n_inner", path);
        if (int64_t(n_inner) != 4 * int64_t(c.n_embd)) {
            fail(path, "'n_inner' is " + std::to_string(n_inner) + "; only null or 4 * n_embd = " +
                           std::to_string(4 * int64_t(c.n_embd)) + " is supported");
        }
    }
    if (!optional_bool(config, "scale_attn_weights", true, path)) fail(path, "'scale_attn_weights' false is not supported");
    if (optional_bool(config, "scale_attn_by_inverse_layer_idx", false, path)) {
        fail(path, "'scale_attn_by_inverse_layer_idx' true is not supported");
    }

    try {
        c.validate();
    } catch (const Error& e) {
        fail(path, e.what());
    }
    return c;
}

}  // namespace vkattn::model
