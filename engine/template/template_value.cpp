#include "template/template_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace wb {

const TemplateValue* TemplateArgs::find(size_t index, const std::string& name) const {
    if (index < positional.size()) return &positional[index];
    for (const auto& [k, v] : named)
        if (k == name) return &v;
    return nullptr;
}

const TemplateValue* TemplateValue::Map::find(const std::string& key) const {
    for (const auto& e : m_entries)
        if (e.first == key) return &e.second;
    return nullptr;
}

TemplateValue* TemplateValue::Map::find(const std::string& key) {
    for (auto& e : m_entries)
        if (e.first == key) return &e.second;
    return nullptr;
}

void TemplateValue::Map::set(const std::string& key, TemplateValue value) {
    if (TemplateValue* v = find(key)) {
        *v = std::move(value);
        return;
    }
    m_entries.emplace_back(key, std::move(value));
}

TemplateValue TemplateValue::function(TemplateFunction fn) {
    TemplateValue v;
    v.m_v = std::make_shared<TemplateFunction>(std::move(fn));
    return v;
}

namespace {

template <typename Json>
TemplateValue convertJson(const Json& j) {
    switch (j.type()) {
    case nlohmann::json::value_t::null: return TemplateValue::none();
    case nlohmann::json::value_t::boolean: return TemplateValue(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return TemplateValue(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
        // Values above INT64_MAX do not fit our int; a float keeps their magnitude.
        uint64_t u = j.template get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return TemplateValue(static_cast<double>(u));
        return TemplateValue(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return TemplateValue(j.template get<double>());
    case nlohmann::json::value_t::string: return TemplateValue(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
        TemplateValue::List list;
        list.reserve(j.size());
        for (const auto& e : j) list.push_back(convertJson(e));
        return TemplateValue(std::move(list));
    }
    case nlohmann::json::value_t::object: {
        TemplateValue::Map map;
        for (auto it = j.begin(); it != j.end(); ++it) map.set(it.key(), convertJson(it.value()));
        return TemplateValue(std::move(map));
    }
    default: return TemplateValue::undefined();
    }
}

}  // namespace

TemplateValue TemplateValue::fromJson(const nlohmann::json& j) { return convertJson(j); }
TemplateValue TemplateValue::fromJson(const nlohmann::ordered_json& j) { return convertJson(j); }

int64_t TemplateValue::asInt() const {
    switch (kind()) {
    case Kind::Bool: return asBool() ? 1 : 0;
    case Kind::Int: return std::get<int64_t>(m_v);
    case Kind::Float: {
        double d = std::get<double>(m_v);
        if (!(d > -9.2e18 && d < 9.2e18)) return 0;
        return static_cast<int64_t>(d);
    }
    default: return 0;
    }
}

double TemplateValue::asDouble() const {
    if (kind() == Kind::Float) return std::get<double>(m_v);
    return static_cast<double>(asInt());
}

void TemplateValue::push(TemplateValue v) {
    if (isList()) asList().push_back(std::move(v));
}

void TemplateValue::set(const std::string& key, TemplateValue v) {
    if (isMap()) asMap().set(key, std::move(v));
}

TemplateValue TemplateValue::get(const std::string& key) const {
    if (!isMap()) return undefined();
    const TemplateValue* v = asMap().find(key);
    return v ? *v : undefined();
}

bool TemplateValue::truthy() const {
    switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return asBool();
    case Kind::Int: return asInt() != 0;
    case Kind::Float: return asDouble() != 0.0;
    case Kind::String: return !asString().empty();
    case Kind::List: return !asList().empty();
    case Kind::Map: return !asMap().empty();
    case Kind::Callable: return true;
    }
    return false;
}

std::string pythonFloatRepr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
    // Shortest round-trip digits, then laid out the way Python's repr does: positional for exponents in
    // [-4, 16), scientific otherwise.
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string s(buf, res.ptr);
    bool neg = s[0] == '-';
    if (neg) s.erase(0, 1);
    size_t e = s.find('e');
    int exp = std::stoi(s.substr(e + 1));
    std::string digits = s.substr(0, e);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    std::string out;
    if (exp >= 16 || exp < -4) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) {
            out += '.';
            out.append(digits, 1);
        }
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        out += eb;
    } else if (exp < 0) {
        out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
        size_t intLen = static_cast<size_t>(exp) + 1;
        if (digits.size() <= intLen) {
            out = digits + std::string(intLen - digits.size(), '0') + ".0";
        } else {
            out = digits.substr(0, intLen) + "." + digits.substr(intLen);
        }
    }
    return neg ? "-" + out : out;
}

static std::string pythonStringRepr(const std::string& s) {
    // Python prefers single quotes unless the string contains one and no double quote.
    bool hasSingle = s.find('\'') != std::string::npos;
    bool hasDouble = s.find('"') != std::string::npos;
    char q = (hasSingle && !hasDouble) ? '"' : '\'';
    std::string out(1, q);
    for (unsigned char c : s) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c == static_cast<unsigned char>(q)) {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c < 0x20 || c == 0x7f) {
                char b[8];
                std::snprintf(b, sizeof b, "\\x%02x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += q;
    return out;
}

std::string TemplateValue::str() const {
    switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return asString();
    default: return repr();
    }
}

std::string TemplateValue::repr() const {
    switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return asBool() ? "True" : "False";
    case Kind::Int: return std::to_string(asInt());
    case Kind::Float: return pythonFloatRepr(asDouble());
    case Kind::String: return pythonStringRepr(asString());
    case Kind::List: {
        std::string out = "[";
        bool first = true;
        for (const auto& v : asList()) {
            if (!first) out += ", ";
            first = false;
            out += v.repr();
        }
        return out + "]";
    }
    case Kind::Map: {
        std::string out = "{";
        bool first = true;
        for (const auto& [k, v] : asMap().entries()) {
            if (!first) out += ", ";
            first = false;
            out += pythonStringRepr(k) + ": " + v.repr();
        }
        return out + "}";
    }
    case Kind::Callable: return "<function>";
    }
    return "";
}

bool TemplateValue::equals(const TemplateValue& o) const {
    if (isNumber() && o.isNumber()) {
        if (isFloat() || o.isFloat()) return asDouble() == o.asDouble();
        return asInt() == o.asInt();
    }
    if (kind() != o.kind()) return false;
    switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return asString() == o.asString();
    case Kind::List: {
        const auto& a = asList();
        const auto& b = o.asList();
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i)
            if (!a[i].equals(b[i])) return false;
        return true;
    }
    case Kind::Map: {
        const auto& a = asMap();
        const auto& b = o.asMap();
        if (a.size() != b.size()) return false;
        for (const auto& [k, v] : a.entries()) {
            const TemplateValue* w = b.find(k);
            if (!w || !v.equals(*w)) return false;
        }
        return true;
    }
    case Kind::Callable: return sameAs(o);
    default: return false;
    }
}

bool TemplateValue::sameAs(const TemplateValue& o) const {
    if (kind() != o.kind()) return false;
    switch (kind()) {
    case Kind::List: return std::get<std::shared_ptr<List>>(m_v) == std::get<std::shared_ptr<List>>(o.m_v);
    case Kind::Map: return std::get<std::shared_ptr<Map>>(m_v) == std::get<std::shared_ptr<Map>>(o.m_v);
    case Kind::Callable:
        return std::get<std::shared_ptr<TemplateFunction>>(m_v) ==
               std::get<std::shared_ptr<TemplateFunction>>(o.m_v);
    default: return equals(o);
    }
}

const char* TemplateValue::typeName() const {
    switch (kind()) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Map: return "dict";
    case Kind::Callable: return "function";
    }
    return "?";
}

// json.dumps string escaping with ensure_ascii=False: only quote, backslash and control characters.
static void jsonEscape(const std::string& s, std::string& out) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
}

static Result<void> dumpJson(const TemplateValue& v, int indent, bool sortKeys, int level, std::string& out) {
    using Kind = TemplateValue::Kind;
    auto newline = [&](int lvl) {
        out += '\n';
        out.append(static_cast<size_t>(indent) * static_cast<size_t>(lvl), ' ');
    };
    if (level > 512) return makeError("tojson: value nested too deeply");
    switch (v.kind()) {
    case Kind::None: out += "null"; return {};
    case Kind::Bool: out += v.asBool() ? "true" : "false"; return {};
    case Kind::Int: out += std::to_string(v.asInt()); return {};
    case Kind::Float: {
        double d = v.asDouble();
        if (std::isnan(d)) out += "NaN";
        else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
        else out += pythonFloatRepr(d);
        return {};
    }
    case Kind::String: jsonEscape(v.asString(), out); return {};
    case Kind::List: {
        const auto& list = v.asList();
        if (list.empty()) {
            out += "[]";
            return {};
        }
        out += '[';
        for (size_t i = 0; i < list.size(); ++i) {
            if (i) out += indent >= 0 ? "," : ", ";
            if (indent >= 0) newline(level + 1);
            WB_TRY(dumpJson(list[i], indent, sortKeys, level + 1, out));
        }
        if (indent >= 0) newline(level);
        out += ']';
        return {};
    }
    case Kind::Map: {
        const auto& entries = v.asMap().entries();
        if (entries.empty()) {
            out += "{}";
            return {};
        }
        std::vector<const std::pair<std::string, TemplateValue>*> order;
        for (const auto& e : entries) order.push_back(&e);
        if (sortKeys)
            std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
        out += '{';
        bool first = true;
        for (const auto* e : order) {
            if (!first) out += indent >= 0 ? "," : ", ";
            first = false;
            if (indent >= 0) newline(level + 1);
            jsonEscape(e->first, out);
            out += ": ";
            WB_TRY(dumpJson(e->second, indent, sortKeys, level + 1, out));
        }
        if (indent >= 0) newline(level);
        out += '}';
        return {};
    }
    case Kind::Undefined: return makeError("tojson: value is undefined");
    case Kind::Callable: return makeError("tojson: a function is not JSON serializable");
    }
    return {};
}

Result<std::string> TemplateValue::toJsonText(int indent, bool sortKeys) const {
    std::string out;
    WB_TRY(dumpJson(*this, indent, sortKeys, 0, out));
    return out;
}

}  // namespace wb
