// Internals of the action parser (api/agent.h has the public entry points): a reader of Python literals, the
// subset the model's answers use and ast.literal_eval accepts (strings with their escapes and prefixes, ints,
// floats, lists, tuples, True/False/None). Nothing is evaluated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/agent.h"

namespace wb::agent {

struct PyValue {
    enum class Kind { Str, Int, Float, List, Bool, None };
    Kind kind = Kind::None;
    std::string str;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    std::vector<PyValue> items;  // List (tuples too)
    bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
    double number() const { return kind == Kind::Int ? double(i) : f; }
};

/// Reads one literal at `pos` (leading whitespace skipped); on success `pos` is just past it. Tolerates a raw
/// newline inside a one-quote string (models write them; Python would refuse).
bool readPyLiteral(std::string_view s, size_t& pos, PyValue& out, std::string& error);

}  // namespace wb::agent
