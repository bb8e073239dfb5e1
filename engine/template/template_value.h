// TemplateValue: the dynamic value type of the chat-template interpreter, modelled on the Python objects a
// Jinja2 template sees under transformers (None, bool, int, float, str, list, dict, callables), plus Jinja's
// Undefined. Lists and maps are shared by reference like Python objects, so copying a value is cheap and a
// namespace() mutated through one copy is seen through all of them.
#pragma once

#include "core/result.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace wb {

class TemplateValue;

// Arguments of a call from a template: positional first, then keyword arguments in source order.
struct TemplateArgs {
    std::vector<TemplateValue> positional;
    std::vector<std::pair<std::string, TemplateValue>> named;

    // The argument at `index`, else the keyword argument `name`, else undefined.
    const TemplateValue* find(size_t index, const std::string& name) const;
};

using TemplateFunction = std::function<Result<TemplateValue>(const TemplateArgs&)>;

class TemplateValue {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Map, Callable };

    using List = std::vector<TemplateValue>;

    // Insertion-ordered string-keyed map: Python dicts keep insertion order and templates (and tojson) show it.
    class Map {
    public:
        const TemplateValue* find(const std::string& key) const;
        TemplateValue* find(const std::string& key);
        void set(const std::string& key, TemplateValue value);
        bool contains(const std::string& key) const { return find(key) != nullptr; }
        size_t size() const { return m_entries.size(); }
        bool empty() const { return m_entries.empty(); }
        const std::vector<std::pair<std::string, TemplateValue>>& entries() const { return m_entries; }

    private:
        std::vector<std::pair<std::string, TemplateValue>> m_entries;
    };

    TemplateValue() = default;  // undefined
    TemplateValue(std::nullptr_t) : m_v(nullptr) {}
    TemplateValue(bool b) : m_v(b) {}
    TemplateValue(int v) : m_v(static_cast<int64_t>(v)) {}
    TemplateValue(int64_t v) : m_v(v) {}
    TemplateValue(double v) : m_v(v) {}
    TemplateValue(std::string s) : m_v(std::move(s)) {}
    TemplateValue(const char* s) : m_v(std::string(s)) {}
    TemplateValue(List list) : m_v(std::make_shared<List>(std::move(list))) {}
    TemplateValue(Map map) : m_v(std::make_shared<Map>(std::move(map))) {}

    static TemplateValue undefined() { return TemplateValue(); }
    static TemplateValue none() { return TemplateValue(nullptr); }
    static TemplateValue function(TemplateFunction fn);
    // Objects keep their key order only from ordered_json; nlohmann::json itself stores keys sorted.
    static TemplateValue fromJson(const nlohmann::json& j);
    static TemplateValue fromJson(const nlohmann::ordered_json& j);

    Kind kind() const { return static_cast<Kind>(m_v.index()); }
    bool isUndefined() const { return kind() == Kind::Undefined; }
    bool isNone() const { return kind() == Kind::None; }
    bool isBool() const { return kind() == Kind::Bool; }
    bool isInt() const { return kind() == Kind::Int; }
    bool isFloat() const { return kind() == Kind::Float; }
    bool isNumber() const { return isInt() || isFloat() || isBool(); }
    bool isString() const { return kind() == Kind::String; }
    bool isList() const { return kind() == Kind::List; }
    bool isMap() const { return kind() == Kind::Map; }
    bool isCallable() const { return kind() == Kind::Callable; }

    bool asBool() const { return std::get<bool>(m_v); }
    int64_t asInt() const;     // bool and int; float truncates
    double asDouble() const;   // any number
    const std::string& asString() const { return std::get<std::string>(m_v); }
    const List& asList() const { return *std::get<std::shared_ptr<List>>(m_v); }
    List& asList() { return *std::get<std::shared_ptr<List>>(m_v); }
    const Map& asMap() const { return *std::get<std::shared_ptr<Map>>(m_v); }
    Map& asMap() { return *std::get<std::shared_ptr<Map>>(m_v); }
    const TemplateFunction& asFunction() const { return *std::get<std::shared_ptr<TemplateFunction>>(m_v); }

    // Builders for lists and maps (no effect on other kinds).
    void push(TemplateValue v);
    void set(const std::string& key, TemplateValue v);
    // Map lookup; undefined when absent or not a map.
    TemplateValue get(const std::string& key) const;

    bool truthy() const;                 // Python truthiness; undefined is falsy
    std::string str() const;             // Python str(); undefined renders as ""
    std::string repr() const;            // Python repr(), used for items of lists and dicts
    bool equals(const TemplateValue& other) const;  // Python ==
    bool sameAs(const TemplateValue& other) const;  // Python `is`
    const char* typeName() const;

    // json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sortKeys) as transformers' tojson does;
    // indent < 0 means None. Callables and undefined have no JSON form.
    Result<std::string> toJsonText(int indent = -1, bool sortKeys = false) const;

private:
    std::variant<std::monostate, std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<List>,
                 std::shared_ptr<Map>, std::shared_ptr<TemplateFunction>>
        m_v;
};

// Python's repr() of a float ("1.0", "0.1", "1e+16", "inf").
std::string pythonFloatRepr(double v);

}  // namespace wb
