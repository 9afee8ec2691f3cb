#include "model/json_file.hpp"

#include <vkattn/error.hpp>

#include <fstream>

namespace vkattn::model {

nlohmann::json read_json_file(const std::filesystem::path& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status)) throw Error(path.string() + ": no such file");
    if (!std::filesystem::is_regular_file(status)) throw Error(path.string() + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open for reading");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string() + ": " + json_error(e));
    }
}

std::string json_error(const nlohmann::json::exception& e) {
    // nlohmann's own text ("[json.exception.parse_error.101] ...") may quote the file; the byte is enough.
    if (const auto* p = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
        return "not valid JSON (syntax error near byte " + std::to_string(p->byte) + ")";
    }
    return "not valid JSON (a number out of range)";
}

std::string clip(std::string_view s, size_t n) {
    if (s.size() <= n) return std::string(s);
    size_t cut = n;  // back to the start of a UTF-8 character
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return std::string(s.substr(0, cut)) + "...";
}

std::string describe_json(const nlohmann::json& value) {
    switch (value.type()) {
        case nlohmann::json::value_t::object: return "a JSON object";
        case nlohmann::json::value_t::array: return "a JSON array";
        case nlohmann::json::value_t::string: {
            const std::string& s = value.get_ref<const std::string&>();
            const auto quoted = [](const std::string& t) {
                return nlohmann::json(t).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            };
            if (s.size() <= 40) return quoted(s);
            std::string head = clip(s, 40);
            head.resize(head.size() - 3);  // clip's "..." goes outside the quotes
            return quoted(head) + "...";
        }
        case nlohmann::json::value_t::binary: return "binary data";
        case nlohmann::json::value_t::discarded: return "nothing";
        default: return value.dump();  // a scalar: short and flat
    }
}

std::vector<int> read_token_ids(const nlohmann::json& config, const char* key, int vocab_size,
                                const std::filesystem::path& path) {
    if (!config.contains(key) || config.at(key).is_null()) return {};
    const nlohmann::json& v = config.at(key);
    const auto bad = [&] {
        return Error(path.string() + ": '" + key + "' is " + describe_json(v) + ", expected a token id in [0, " +
                     std::to_string(vocab_size) + ") or a list of them");
    };
    std::vector<int> ids;
    const auto add = [&](const nlohmann::json& x) {
        if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= vocab_size) throw bad();
        ids.push_back(int(x.get<int64_t>()));
    };
    if (v.is_array()) {
        for (const nlohmann::json& x : v) add(x);
    } else {
        add(v);
    }
    return ids;
}

}  // namespace vkattn::model
