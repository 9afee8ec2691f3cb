// Llama-family config.json: per-family defaults as transformers' LlamaConfig, MistralConfig and Qwen2Config
// set them, and one-line errors that name the field. The file is untrusted: no value is ever dumped whole
// into a message (nlohmann's dump recurses, so a 100,000-deep array would overflow the stack); a wrong
// value is described by its type, a number by its value, a string by a short escaped prefix.
#include <vkattn/model/llama_config.hpp>

#include "model/json_file.hpp"
#include "model/llama_internal.hpp"
#include "model/llama_json.hpp"
#include "vkattn/error.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace vkattn::model {
namespace llama_detail {

using json = nlohmann::json;

std::string short_text(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size() && i < 40; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
            out += buf;
        }
    }
    return s.size() > 40 ? out + "..." : out;
}

static std::string number_text(double v) {
    std::ostringstream s;
    s.precision(10);
    s << v;
    return s.str();
}

std::string describe(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
        case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
        case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
        case json::value_t::number_float: {
            // 64.0 printed as "64" would read as the integer the message says was expected.
            const double x = v.get<double>();
            return std::abs(x) < 1e15 && std::floor(x) == x ? number_text(x) + ".0" : number_text(x);
        }
        case json::value_t::string: return "the string \"" + short_text(v.get_ref<const std::string&>()) + "\"";
        case json::value_t::array: return "an array of " + std::to_string(v.size()) + " values";
        case json::value_t::object: return "an object";
        default: return std::string("a JSON ") + v.type_name();
    }
}

std::string read_small_file(const std::filesystem::path& path, const char* expected, uintmax_t max_bytes) {
    const std::string name = path.string();
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status)) throw Error(name + ": no such file");
    if (std::filesystem::is_directory(status)) throw Error(name + ": is a directory, expected " + expected);
    if (!std::filesystem::is_regular_file(status)) {
        throw Error(name + ": is not a regular file (a device, FIFO or socket), expected " + expected);
    }
    // These files are a few KB; a bigger one is not one of them, and reading it whole could exhaust memory.
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(name + ": cannot read its size: " + ec.message());
    if (size > max_bytes) {
        throw Error(name + ": is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                    " expected of " + expected);
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(name + ": cannot open for reading");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw Error(name + ": read error");
    return text.str();
}

}  // namespace llama_detail

namespace {

using json = nlohmann::json;
using llama_detail::describe;
using llama_detail::number_text;
using llama_detail::short_text;

// Reads the fields of one config.json object, each error prefixed with the source's name.
class Fields {
public:
    Fields(const json& object, std::string source) : obj_(object), source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

    // Present and not null.
    bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }
    bool present(const char* key) const { return obj_.contains(key); }
    const json& at(const char* key) const { return obj_.at(key); }

    // An integer in [lo, INT_MAX]; `what` describes the accepted range for the message.
    int integer(const char* key, const json& v, int64_t lo, const char* what) const {
        if (!v.is_number_integer()) fail(std::string("'") + key + "' is " + describe(v) + ", expected " + what);
        if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int>::max())) {
            fail(std::string("'") + key + "' is " + describe(v) + ", too large (at most " +
                 std::to_string(std::numeric_limits<int>::max()) + ")");
        }
        const int64_t n = v.get<int64_t>();
        if (n < lo) fail(std::string("'") + key + "' is " + describe(v) + ", expected " + what);
        if (n > std::numeric_limits<int>::max()) {
            fail(std::string("'") + key + "' is " + describe(v) + ", too large (at most " +
                 std::to_string(std::numeric_limits<int>::max()) + ")");
        }
        return int(n);
    }

    int required_positive(const char* key) const {
        if (!present(key)) fail(std::string("has no '") + key + "', expected a positive integer");
        return integer(key, at(key), 1, "a positive integer");
    }

    // Absent or null gives the fallback.
    int optional_positive(const char* key, int fallback) const {
        return has(key) ? integer(key, at(key), 1, "a positive integer") : fallback;
    }

    double number(const char* key, const json& v) const {
        if (!v.is_number()) fail(std::string("'") + key + "' is " + describe(v) + ", expected a number");
        return v.get<double>();
    }

    double optional_number(const char* key, double fallback) const {
        return present(key) ? number(key, at(key)) : fallback;
    }

    bool optional_bool(const char* key, bool fallback) const {
        if (!present(key)) return fallback;
        const json& v = at(key);
        if (!v.is_boolean()) fail(std::string("'") + key + "' is " + describe(v) + ", expected true or false");
        return v.get<bool>();
    }

    std::string optional_string(const char* key, const std::string& fallback) const {
        if (!present(key)) return fallback;
        const json& v = at(key);
        if (!v.is_string()) fail(std::string("'") + key + "' is " + describe(v) + ", expected a string");
        return v.get<std::string>();
    }

private:
    const json& obj_;
    std::string source_;
};

struct FamilyDefaults {
    int num_key_value_heads;  // -1: num_attention_heads
    int max_position_embeddings;
    std::optional<int> bos, eos;
    int sliding_window;       // Mistral and Qwen2 default to 4096; 0: none
    int max_window_layers;    // Qwen2
};

FamilyDefaults defaults_of(LlamaFamily family) {
    switch (family) {
        case LlamaFamily::llama: return {-1, 2048, 1, 2, 0, 0};
        case LlamaFamily::mistral: return {8, 4096 * 32, 1, 2, 4096, 0};
        case LlamaFamily::qwen2: return {32, 32768, std::nullopt, std::nullopt, 4096, 28};
    }
    return {-1, 2048, 1, 2, 0, 0};
}

constexpr struct {
    LlamaFamily family;
    const char* model_type;
    const char* architecture;
} k_families[] = {
    {LlamaFamily::llama, "llama", "LlamaForCausalLM"},
    {LlamaFamily::mistral, "mistral", "MistralForCausalLM"},
    {LlamaFamily::qwen2, "qwen2", "Qwen2ForCausalLM"},
};

// model_type decides, as in transformers' Auto classes; without one, the first known architecture.
LlamaFamily family_of(const Fields& f) {
    if (f.present("model_type")) {
        const json& v = f.at("model_type");
        if (v.is_string()) {
            for (const auto& k : k_families) {
                if (v.get_ref<const std::string&>() == k.model_type) return k.family;
            }
        }
        f.fail("'model_type' is " + describe(v) + ", expected \"llama\", \"mistral\" or \"qwen2\"");
    }
    if (f.has("architectures")) {
        const json& v = f.at("architectures");
        if (!v.is_array()) f.fail("'architectures' is " + describe(v) + ", expected an array of class names");
        for (const json& name : v) {
            if (!name.is_string()) continue;
            for (const auto& k : k_families) {
                if (name.get_ref<const std::string&>() == k.architecture) return k.family;
            }
        }
        f.fail("has no 'model_type', and 'architectures' names none of LlamaForCausalLM, MistralForCausalLM, "
               "Qwen2ForCausalLM");
    }
    f.fail("has neither 'model_type' nor 'architectures', expected model_type \"llama\", \"mistral\" or \"qwen2\"");
}

std::optional<Llama3RopeScaling> rope_scaling_of(const Fields& f) {
    if (!f.has("rope_scaling")) return std::nullopt;
    const json& rs = f.at("rope_scaling");
    if (!rs.is_object()) f.fail("'rope_scaling' is " + describe(rs) + ", expected null or an object");
    // transformers reads "rope_type", and "type" in configs written before 4.43.
    const char* type_key = rs.contains("rope_type") ? "rope_type" : "type";
    if (!rs.contains(type_key)) f.fail("'rope_scaling' has no 'rope_type', expected \"llama3\"");
    const json& type = rs.at(type_key);
    if (!type.is_string()) f.fail(std::string("'rope_scaling.") + type_key + "' is " + describe(type) + ", expected a string");
    const std::string& name = type.get_ref<const std::string&>();
    if (name == "default") return std::nullopt;  // transformers' name for plain, unscaled RoPE
    if (name != "llama3") {
        f.fail("rope_scaling type \"" + short_text(name) +
               "\" is not supported; expected null, \"default\" or \"llama3\"");
    }
    const auto field = [&](const char* key) -> const json& {
        if (!rs.contains(key)) f.fail(std::string("'rope_scaling' of type llama3 has no '") + key + "'");
        return rs.at(key);
    };
    const auto num = [&](const char* key) {
        const json& v = field(key);
        if (!v.is_number()) f.fail(std::string("'rope_scaling.") + key + "' is " + describe(v) + ", expected a number");
        return v.get<double>();
    };
    Llama3RopeScaling s;
    s.factor = num("factor");
    s.low_freq_factor = num("low_freq_factor");
    s.high_freq_factor = num("high_freq_factor");
    const std::string omax = "rope_scaling.original_max_position_embeddings";
    s.original_max_position_embeddings = f.integer(omax.c_str(), field("original_max_position_embeddings"), 1, "a positive integer");
    return s;
}

std::optional<int> token_id(const Fields& f, const char* key, const json& v) {
    if (v.is_null()) return std::nullopt;
    return f.integer(key, v, 0, "a non-negative token id");
}

// An empty string when c is consistent, else the first problem, naming the field.
std::string first_problem(const LlamaConfig& c) {
    const std::pair<const char*, int> positive[] = {
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"num_hidden_layers", c.num_hidden_layers},
        {"num_attention_heads", c.num_attention_heads},
        {"num_key_value_heads", c.num_key_value_heads},
        {"head_dim", c.head_dim},
        {"vocab_size", c.vocab_size},
        {"max_position_embeddings", c.max_position_embeddings},
    };
    for (const auto& [name, value] : positive) {
        if (value <= 0) return std::string(name) + " is " + std::to_string(value) + ", expected a positive integer";
    }
    if (c.num_attention_heads % c.num_key_value_heads != 0) {
        return "num_key_value_heads " + std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
               std::to_string(c.num_attention_heads);
    }
    if (c.head_dim % 2 != 0) {
        return "head_dim " + std::to_string(c.head_dim) + " is odd; rotary embeddings rotate pairs (i, i + head_dim/2)";
    }
    if (int64_t(c.num_attention_heads) * c.head_dim > std::numeric_limits<int>::max()) {
        return "num_attention_heads " + std::to_string(c.num_attention_heads) + " × head_dim " + std::to_string(c.head_dim) +
               " is too large";
    }
    if (!std::isfinite(c.rms_norm_eps) || !(c.rms_norm_eps > 0.0)) {
        return "rms_norm_eps is " + number_text(c.rms_norm_eps) + ", expected a positive number";
    }
    if (!std::isfinite(c.rope_theta) || !(c.rope_theta > 0.0)) {
        return "rope_theta is " + number_text(c.rope_theta) + ", expected a positive number";
    }
    if (c.rope_scaling) {
        const Llama3RopeScaling& s = *c.rope_scaling;
        if (!std::isfinite(s.factor) || !(s.factor > 0.0)) {
            return "rope_scaling.factor is " + number_text(s.factor) + ", expected a positive number";
        }
        if (!std::isfinite(s.low_freq_factor) || !(s.low_freq_factor > 0.0)) {
            return "rope_scaling.low_freq_factor is " + number_text(s.low_freq_factor) + ", expected a positive number";
        }
        if (!std::isfinite(s.high_freq_factor) || !(s.high_freq_factor > s.low_freq_factor)) {
            return "rope_scaling.high_freq_factor is " + number_text(s.high_freq_factor) +
                   ", expected a number above low_freq_factor " + number_text(s.low_freq_factor);
        }
        if (s.original_max_position_embeddings <= 0) {
            return "rope_scaling.original_max_position_embeddings is " + std::to_string(s.original_max_position_embeddings) +
                   ", expected a positive integer";
        }
    }
    if (!c.layer_window.empty()) {
        if (c.layer_window.size() != size_t(c.num_hidden_layers)) {
            return "layer_window has " + std::to_string(c.layer_window.size()) + " entries, expected num_hidden_layers = " +
                   std::to_string(c.num_hidden_layers) + " (or none)";
        }
        for (size_t l = 0; l < c.layer_window.size(); ++l) {
            if (c.layer_window[l] < 0) {
                return "sliding window of layer " + std::to_string(l) + " is " + std::to_string(c.layer_window[l]) +
                       ", expected 0 (none) or a positive width";
            }
        }
    }
    const auto bad_id = [&](const char* name, int id) -> std::string {
        if (id >= 0 && id < c.vocab_size) return {};
        return std::string(name) + " " + std::to_string(id) + " is outside the vocabulary [0, " +
               std::to_string(c.vocab_size) + ")";
    };
    if (c.bos_token_id) {
        if (auto p = bad_id("bos_token_id", *c.bos_token_id); !p.empty()) return p;
    }
    for (int id : c.eos_token_ids) {
        if (auto p = bad_id("eos_token_id", id); !p.empty()) return p;
    }
    return {};
}

}  // namespace

const char* llama_family_name(LlamaFamily family) {
    for (const auto& k : k_families) {
        if (k.family == family) return k.model_type;
    }
    return "?";
}

void LlamaConfig::validate() const {
    const std::string problem = first_problem(*this);
    if (!problem.empty()) throw Error("Llama-family config: " + problem);
}

LlamaConfig parse_llama_config(std::string_view json_text, const std::string& source) {
    json doc;
    try {
        doc = json::parse(json_text.begin(), json_text.end());
    } catch (const json::exception& e) {
        throw Error(source + ": " + json_error(e));
    }
    return llama_config_from_json(doc, source);
}

LlamaConfig llama_config_from_json(const json& doc, const std::string& source) {
    if (!doc.is_object()) throw Error(source + ": is " + describe(doc) + ", expected a JSON object");
    const Fields f(doc, source);

    LlamaConfig c;
    c.family = family_of(f);
    const FamilyDefaults d = defaults_of(c.family);
    const char* family = llama_family_name(c.family);

    c.hidden_size = f.required_positive("hidden_size");
    c.intermediate_size = f.required_positive("intermediate_size");
    c.num_hidden_layers = f.required_positive("num_hidden_layers");
    c.num_attention_heads = f.required_positive("num_attention_heads");
    c.vocab_size = f.required_positive("vocab_size");
    // All three families turn a null num_key_value_heads into num_attention_heads; the absent default differs.
    if (f.present("num_key_value_heads")) {
        c.num_key_value_heads = f.optional_positive("num_key_value_heads", c.num_attention_heads);
    } else {
        c.num_key_value_heads = d.num_key_value_heads < 0 ? c.num_attention_heads : d.num_key_value_heads;
    }
    if (f.has("head_dim")) {
        c.head_dim = f.optional_positive("head_dim", 0);
    } else {
        if (c.hidden_size % c.num_attention_heads != 0) {
            f.fail("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                   std::to_string(c.num_attention_heads) + ", and there is no 'head_dim'");
        }
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    c.max_position_embeddings = f.optional_positive("max_position_embeddings", d.max_position_embeddings);
    c.rms_norm_eps = f.optional_number("rms_norm_eps", 1e-6);
    c.rope_theta = f.optional_number("rope_theta", 10000.0);
    c.rope_scaling = rope_scaling_of(f);
    if (f.has("partial_rotary_factor") && f.number("partial_rotary_factor", f.at("partial_rotary_factor")) != 1.0) {
        f.fail("'partial_rotary_factor' is " + describe(f.at("partial_rotary_factor")) +
               "; only 1 (rotary embedding on the whole head) is supported");
    }

    const std::string act = f.optional_string("hidden_act", "silu");
    if (act != "silu" && act != "swish") {
        f.fail("'hidden_act' is \"" + short_text(act) + "\"; the " + family + " MLP supports only \"silu\"");
    }
    c.tie_word_embeddings = f.optional_bool("tie_word_embeddings", false);

    switch (c.family) {
        case LlamaFamily::llama:
            c.qkv_bias = c.o_bias = f.optional_bool("attention_bias", false);
            if (f.optional_bool("mlp_bias", false)) f.fail("'mlp_bias' true (biases on gate, up and down) is not supported");
            break;  // LlamaAttention has no sliding window, whatever the file says
        case LlamaFamily::mistral: {
            const int window = f.present("sliding_window") ? f.optional_positive("sliding_window", 0) : d.sliding_window;
            if (window > 0) c.layer_window.assign(size_t(c.num_hidden_layers), window);
            break;
        }
        case LlamaFamily::qwen2: {
            c.qkv_bias = true;  // Qwen2Attention: bias on q, k and v always, never on o
            const bool use = f.optional_bool("use_sliding_window", false);
            const int window = f.present("sliding_window") ? f.optional_positive("sliding_window", 0) : d.sliding_window;
            const int from = f.has("max_window_layers") ? f.integer("max_window_layers", f.at("max_window_layers"), 0,
                                                                    "a non-negative layer count")
                                                        : d.max_window_layers;
            std::vector<bool> sliding(size_t(c.num_hidden_layers));
            for (int l = 0; l < c.num_hidden_layers; ++l) sliding[size_t(l)] = l >= from;
            // transformers 4.53 and later write the per-layer choice out; it then decides.
            if (f.has("layer_types")) {
                const json& types = f.at("layer_types");
                if (!types.is_array() || types.size() != size_t(c.num_hidden_layers)) {
                    f.fail("'layer_types' is " + describe(types) + ", expected an array of num_hidden_layers = " +
                           std::to_string(c.num_hidden_layers) + " strings");
                }
                for (size_t l = 0; l < types.size(); ++l) {
                    const json& t = types[l];
                    const bool full = t.is_string() && t.get_ref<const std::string&>() == "full_attention";
                    const bool slide = t.is_string() && t.get_ref<const std::string&>() == "sliding_attention";
                    if (!full && !slide) {
                        f.fail("'layer_types[" + std::to_string(l) + "]' is " + describe(t) +
                               ", expected \"full_attention\" or \"sliding_attention\"");
                    }
                    sliding[l] = slide;
                }
            }
            if (use && window > 0) {
                c.layer_window.assign(size_t(c.num_hidden_layers), 0);
                for (size_t l = 0; l < sliding.size(); ++l) c.layer_window[l] = sliding[l] ? window : 0;
            }
            break;
        }
    }

    c.bos_token_id = f.present("bos_token_id") ? token_id(f, "bos_token_id", f.at("bos_token_id")) : d.bos;
    if (!f.present("eos_token_id")) {
        if (d.eos) c.eos_token_ids.push_back(*d.eos);
    } else if (const json& eos = f.at("eos_token_id"); eos.is_array()) {
        for (size_t i = 0; i < eos.size(); ++i) {
            const std::string key = "eos_token_id[" + std::to_string(i) + "]";
            c.eos_token_ids.push_back(f.integer(key.c_str(), eos[i], 0, "a non-negative token id"));
        }
    } else if (auto id = token_id(f, "eos_token_id", eos)) {
        c.eos_token_ids.push_back(*id);
    }

    const std::string problem = first_problem(c);
    if (!problem.empty()) f.fail(problem);
    return c;
}

LlamaConfig load_llama_config(const std::filesystem::path& config_json) {
    return parse_llama_config(llama_detail::read_small_file(config_json, "config.json"), config_json.string());
}

}  // namespace vkattn::model
