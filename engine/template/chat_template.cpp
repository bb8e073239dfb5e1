// Renderer of parsed chat templates. Semantics follow Python Jinja2 as transformers runs it; where a template
// relies on Python object behaviour (str() of a list, dict method lookup, negative indices, slices) we mimic
// Python because the rendered prompt must match what the checkpoint was trained on byte for byte.
#include "template/chat_template.h"

#include "template/template_ast.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_map>

namespace wb {

using namespace template_detail;

namespace {

using Value = TemplateValue;
using Kind = TemplateValue::Kind;
using Scope = std::unordered_map<std::string, Value>;

constexpr const char* kErrorPrefix = "chat template line ";

Error errorAt(int line, const std::string& msg) { return makeError(kErrorPrefix + std::to_string(line) + ": " + msg); }

// Errors from builtins carry no line; the expression that called them adds it.
Error withLine(int line, const Error& e) {
    if (e.message.rfind(kErrorPrefix, 0) == 0) return e;
    return errorAt(line, e.message);
}

// ---- UTF-8 helpers: Python strings index and measure by code point. ----

bool isAscii(const std::string& s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

std::vector<std::string> codepoints(const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        len = std::min(len, s.size() - i);
        out.push_back(s.substr(i, len));
        i += len;
    }
    return out;
}

int64_t stringLength(const std::string& s) {
    if (isAscii(s)) return static_cast<int64_t>(s.size());
    int64_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

bool isPySpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string stripChars(const std::string& s, const Value* chars, bool left, bool right) {
    auto strip = [&](char c) {
        if (chars && chars->isString()) return chars->asString().find(c) != std::string::npos;
        return isPySpace(c);
    };
    size_t b = 0, e = s.size();
    if (left)
        while (b < e && strip(s[b])) ++b;
    if (right)
        while (e > b && strip(s[e - 1])) --e;
    return s.substr(b, e - b);
}

std::string toLower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string toUpper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.
std::string pyTitle(const std::string& s) {
    std::string out = s;
    bool prevLetter = false;
    for (char& c : out) {
        if (isAlpha(c)) {
            c = prevLetter ? toLower(std::string(1, c))[0] : toUpper(std::string(1, c))[0];
            prevLetter = true;
        } else {
            prevLetter = static_cast<unsigned char>(c) >= 0x80 && prevLetter;
        }
    }
    return out;
}

std::string pyCapitalize(const std::string& s) {
    std::string out = toLower(s);
    if (!out.empty()) out[0] = toUpper(out.substr(0, 1))[0];
    return out;
}

std::vector<std::string> pySplit(const std::string& s, const Value* sep, int64_t maxSplit) {
    std::vector<std::string> out;
    if (!sep || sep->isNone() || sep->isUndefined()) {
        size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && isPySpace(s[i])) ++i;
            if (i >= s.size()) break;
            if (maxSplit >= 0 && static_cast<int64_t>(out.size()) == maxSplit) {
                size_t e = s.size();
                while (e > i && isPySpace(s[e - 1])) --e;
                out.push_back(s.substr(i, e - i));
                break;
            }
            size_t b = i;
            while (i < s.size() && !isPySpace(s[i])) ++i;
            out.push_back(s.substr(b, i - b));
        }
        return out;
    }
    const std::string& d = sep->asString();
    size_t b = 0;
    while (true) {
        size_t p = maxSplit >= 0 && static_cast<int64_t>(out.size()) == maxSplit ? std::string::npos : s.find(d, b);
        if (p == std::string::npos) {
            out.push_back(s.substr(b));
            break;
        }
        out.push_back(s.substr(b, p - b));
        b = p + d.size();
    }
    return out;
}

std::string replaceAll(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
    std::string out;
    if (from.empty()) {  // Python inserts `to` between every character
        auto cps = codepoints(s);
        int64_t n = 0;
        for (const auto& cp : cps) {
            if (count < 0 || n < count) {
                out += to;
                ++n;
            }
            out += cp;
        }
        if (count < 0 || n < count) out += to;
        return out;
    }
    size_t b = 0;
    int64_t n = 0;
    while (true) {
        size_t p = (count >= 0 && n >= count) ? std::string::npos : s.find(from, b);
        if (p == std::string::npos) {
            out += s.substr(b);
            break;
        }
        out += s.substr(b, p - b) + to;
        b = p + from.size();
        ++n;
    }
    return out;
}

std::vector<std::string> splitLines(const std::string& s) {
    std::vector<std::string> out;
    size_t b = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' || s[i] == '\r') {
            out.push_back(s.substr(b, i - b));
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            b = i + 1;
        }
    }
    if (b < s.size()) out.push_back(s.substr(b));
    return out;
}

// Python's list(x) for the iterables templates use.
Result<Value::List> iterate(const Value& v) {
    switch (v.kind()) {
    case Kind::Undefined: return Value::List{};
    case Kind::List: return v.asList();
    case Kind::Map: {
        Value::List keys;
        for (const auto& [k, _] : v.asMap().entries()) keys.emplace_back(k);
        return keys;
    }
    case Kind::String: {
        Value::List chars;
        for (auto& cp : codepoints(v.asString())) chars.emplace_back(std::move(cp));
        return chars;
    }
    default: return makeError(std::string("'") + v.typeName() + "' object is not iterable");
    }
}

Result<int64_t> length(const Value& v) {
    switch (v.kind()) {
    case Kind::Undefined: return int64_t{0};
    case Kind::String: return stringLength(v.asString());
    case Kind::List: return static_cast<int64_t>(v.asList().size());
    case Kind::Map: return static_cast<int64_t>(v.asMap().size());
    default: return makeError(std::string("object of type '") + v.typeName() + "' has no len()");
    }
}

// Python ordering for sort/min/max/comparisons.
Result<int> compareValues(const Value& a, const Value& b) {
    if (a.isNumber() && b.isNumber()) {
        if (a.isFloat() || b.isFloat()) {
            double x = a.asDouble(), y = b.asDouble();
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = a.asInt(), y = b.asInt();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.isString() && b.isString()) {
        int c = a.asString().compare(b.asString());
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (a.isList() && b.isList()) {
        const auto& x = a.asList();
        const auto& y = b.asList();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            auto c = compareValues(x[i], y[i]);
            if (!c.ok() || c.value() != 0) return c;
        }
        return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
    return makeError(std::string("cannot compare '") + a.typeName() + "' with '" + b.typeName() + "'");
}

// Python slice semantics for [start:stop:step].
Result<std::vector<int64_t>> sliceIndices(int64_t len, const Value& start, const Value& stop, const Value& step) {
    auto isSet = [](const Value& v) { return !v.isUndefined() && !v.isNone(); };
    int64_t st = isSet(step) ? step.asInt() : 1;
    if (st == 0) return makeError("slice step cannot be zero");
    int64_t b, e;
    auto clamp = [&](const Value& v, int64_t def, bool isStart) {
        if (!isSet(v)) return def;
        int64_t x = v.asInt();
        if (x < 0) x += len;
        if (st > 0) return std::clamp<int64_t>(x, 0, len);
        (void)isStart;
        return std::clamp<int64_t>(x, -1, len - 1);
    };
    if (st > 0) {
        b = clamp(start, 0, true);
        e = clamp(stop, len, false);
    } else {
        b = clamp(start, len - 1, true);
        e = clamp(stop, -1, false);
    }
    std::vector<int64_t> idx;
    if (st > 0)
        for (int64_t i = b; i < e; i += st) idx.push_back(i);
    else
        for (int64_t i = b; i > e; i += st) idx.push_back(i);
    return idx;
}

struct LoopControl {
    enum Flow { Normal, Break, Continue };
};
using Flow = LoopControl::Flow;

class Renderer {
public:
    Renderer(const Program& program, const Value& context) : m_prog(program), m_opt(program.options) {
        m_root = std::make_shared<Scope>();
        if (context.isMap())
            for (const auto& [k, v] : context.asMap().entries()) (*m_root)[k] = v;
        m_chain.push_back(m_root);
    }

    Result<std::string> run() {
        std::string out;
        m_out = &out;
        auto r = execBody(m_prog.body);
        if (!r.ok()) return r.error();
        return out;
    }

private:
    // ---------------------------------------------------------------- statements

    Result<Flow> execBody(const Body& body) {
        for (const auto& n : body) {
            auto r = exec(*n);
            if (!r.ok() || r.value() != Flow::Normal) return r;
        }
        return Flow::Normal;
    }

    Result<void> emit(const std::string& s, int line) {
        if (m_out->size() + s.size() > m_opt.maxOutputBytes)
            return errorAt(line, "output exceeds " + std::to_string(m_opt.maxOutputBytes) + " bytes");
        *m_out += s;
        return {};
    }

    Result<Flow> exec(const Node& n) {
        switch (n.kind) {
        case Node::Kind::Text: WB_TRY(emit(n.text, n.line)); return Flow::Normal;
        case Node::Kind::Output: {
            auto v = eval(*n.expr);
            if (!v.ok()) return v.error();
            WB_TRY(emit(v.value().str(), n.line));
            return Flow::Normal;
        }
        case Node::Kind::If: {
            for (const auto& [cond, body] : n.branches) {
                auto c = eval(*cond);
                if (!c.ok()) return c.error();
                if (c.value().truthy()) return execBody(body);
            }
            return execBody(n.elseBody);
        }
        case Node::Kind::For: return execFor(n);
        case Node::Kind::Set: {
            auto v = eval(*n.expr);
            if (!v.ok()) return v.error();
            WB_TRY(assign(n, std::move(v.value())));
            return Flow::Normal;
        }
        case Node::Kind::SetBlock: {
            std::string captured;
            std::string* saved = m_out;
            m_out = &captured;
            auto r = execBody(n.body);
            m_out = saved;
            if (!r.ok()) return r.error();
            WB_TRY(assign(n, Value(std::move(captured))));
            return Flow::Normal;
        }
        case Node::Kind::Macro: {
            const Node* macro = &n;
            Value fn = Value::function([this, macro](const TemplateArgs& args) { return callMacro(*macro, args); });
            (*m_chain.back())[n.text] = fn;
            return Flow::Normal;
        }
        case Node::Kind::Break: return Flow::Break;
        case Node::Kind::Continue: return Flow::Continue;
        case Node::Kind::Do: {
            auto v = eval(*n.expr);
            if (!v.ok()) return v.error();
            return Flow::Normal;
        }
        case Node::Kind::Block: return execBody(n.body);
        }
        return Flow::Normal;
    }

    Result<void> assign(const Node& n, Value v) {
        if (!n.text.empty()) {  // set ns.attr = v
            Value target = lookup(n.targets[0]);
            if (!target.isMap()) return errorAt(n.line, "cannot assign attribute on '" + n.targets[0] + "'");
            target.asMap().set(n.text, std::move(v));
            return {};
        }
        if (n.targets.size() == 1) {
            (*m_chain.back())[n.targets[0]] = std::move(v);
            return {};
        }
        auto items = iterate(v);
        if (!items.ok()) return withLine(n.line, items.error());
        if (items.value().size() != n.targets.size())
            return errorAt(n.line, "cannot unpack " + std::to_string(items.value().size()) + " values into " +
                                       std::to_string(n.targets.size()) + " names");
        for (size_t i = 0; i < n.targets.size(); ++i) (*m_chain.back())[n.targets[i]] = items.value()[i];
        return {};
    }

    Result<void> countIteration(int line) {
        if (++m_iterations > m_opt.maxLoopIterations)
            return errorAt(line, "loop iteration limit (" + std::to_string(m_opt.maxLoopIterations) + ") exceeded");
        return {};
    }

    Result<Flow> execFor(const Node& n) {
        auto iterable = eval(*n.expr);
        if (!iterable.ok()) return iterable.error();
        auto listR = iterate(iterable.value());
        if (!listR.ok()) return withLine(n.line, listR.error());
        Value::List items = std::move(listR.value());

        auto scope = std::make_shared<Scope>();
        m_chain.push_back(scope);
        struct Pop {
            std::vector<std::shared_ptr<Scope>>& chain;
            ~Pop() { chain.pop_back(); }
        } pop{m_chain};

        auto bindTargets = [&](const Value& item) -> Result<void> {
            if (n.targets.size() == 1) {
                (*scope)[n.targets[0]] = item;
                return {};
            }
            auto parts = iterate(item);
            if (!parts.ok()) return withLine(n.line, parts.error());
            if (parts.value().size() != n.targets.size())
                return errorAt(n.line, "cannot unpack " + std::to_string(parts.value().size()) + " values into " +
                                           std::to_string(n.targets.size()) + " loop variables");
            for (size_t i = 0; i < n.targets.size(); ++i) (*scope)[n.targets[i]] = parts.value()[i];
            return {};
        };

        // The `if` filter applies before loop.index/length are counted, as in Jinja.
        if (n.filter) {
            Value::List kept;
            for (const auto& item : items) {
                WB_TRY(countIteration(n.line));
                WB_TRY(bindTargets(item));
                auto c = eval(*n.filter);
                if (!c.ok()) return c.error();
                if (c.value().truthy()) kept.push_back(item);
            }
            items = std::move(kept);
        }
        if (items.empty()) {
            scope->clear();
            return execBody(n.elseBody);
        }
        const int64_t len = static_cast<int64_t>(items.size());
        for (int64_t i = 0; i < len; ++i) {
            WB_TRY(countIteration(n.line));
            WB_TRY(bindTargets(items[static_cast<size_t>(i)]));
            Value::Map loop;
            loop.set("index", Value(i + 1));
            loop.set("index0", Value(i));
            loop.set("revindex", Value(len - i));
            loop.set("revindex0", Value(len - i - 1));
            loop.set("first", Value(i == 0));
            loop.set("last", Value(i == len - 1));
            loop.set("length", Value(len));
            loop.set("depth", Value(1));
            loop.set("depth0", Value(0));
            loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
            loop.set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value());
            loop.set("cycle", Value::function([i](const TemplateArgs& a) -> Result<Value> {
                         if (a.positional.empty()) return makeError("loop.cycle() needs at least one value");
                         return a.positional[static_cast<size_t>(i) % a.positional.size()];
                     }));
            (*scope)["loop"] = Value(std::move(loop));
            auto r = execBody(n.body);
            if (!r.ok()) return r;
            if (r.value() == Flow::Break) break;
        }
        return Flow::Normal;
    }

    Result<Value> callMacro(const Node& macro, const TemplateArgs& args) {
        if (m_depth >= m_opt.maxCallDepth)
            return errorAt(macro.line, "macro recursion deeper than " + std::to_string(m_opt.maxCallDepth));
        if (args.positional.size() > macro.targets.size())
            return errorAt(macro.line, "macro '" + macro.text + "' takes " + std::to_string(macro.targets.size()) +
                                           " arguments");
        // A macro sees the template's top-level variables and its own arguments, not its caller's locals.
        auto local = std::make_shared<Scope>();
        std::vector<std::shared_ptr<Scope>> savedChain = std::move(m_chain);
        m_chain = {m_root, local};
        std::string captured;
        std::string* savedOut = m_out;
        m_out = &captured;
        ++m_depth;
        auto restore = [&]() {
            --m_depth;
            m_out = savedOut;
            m_chain = std::move(savedChain);
        };
        for (size_t i = 0; i < macro.targets.size(); ++i) {
            const std::string& p = macro.targets[i];
            const Value* given = args.find(i, p);
            if (given) {
                (*local)[p] = *given;
            } else if (macro.defaults[i]) {
                auto d = eval(*macro.defaults[i]);
                if (!d.ok()) {
                    restore();
                    return d.error();
                }
                (*local)[p] = d.value();
            } else {
                (*local)[p] = Value();
            }
        }
        auto r = execBody(macro.body);
        restore();
        if (!r.ok()) return r.error();
        return Value(std::move(captured));
    }

    // ---------------------------------------------------------------- expressions

    Value lookup(const std::string& name) const {
        for (auto it = m_chain.rbegin(); it != m_chain.rend(); ++it) {
            auto f = (*it)->find(name);
            if (f != (*it)->end()) return f->second;
        }
        if (m_chain.front() != m_root) {
            auto f = m_root->find(name);
            if (f != m_root->end()) return f->second;
        }
        return builtin(name);
    }

    Value builtin(const std::string& name) const {
        if (name == "range") {
            size_t cap = m_opt.maxLoopIterations;
            return Value::function([cap](const TemplateArgs& a) -> Result<Value> {
                int64_t start = 0, stop = 0, step = 1;
                const auto& p = a.positional;
                if (p.size() == 1) stop = p[0].asInt();
                else if (p.size() >= 2) {
                    start = p[0].asInt();
                    stop = p[1].asInt();
                    if (p.size() >= 3) step = p[2].asInt();
                } else return makeError("range() expects 1 to 3 arguments");
                if (step == 0) return makeError("range() step must not be zero");
                Value::List out;
                for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                    if (out.size() >= cap) return makeError("range() too large");
                    out.emplace_back(i);
                }
                return Value(std::move(out));
            });
        }
        if (name == "namespace" || name == "dict") {
            return Value::function([](const TemplateArgs& a) -> Result<Value> {
                Value::Map m;
                for (const auto& p : a.positional)
                    if (p.isMap())
                        for (const auto& [k, v] : p.asMap().entries()) m.set(k, v);
                for (const auto& [k, v] : a.named) m.set(k, v);
                return Value(std::move(m));
            });
        }
        if (name == "raise_exception") {
            return Value::function([](const TemplateArgs& a) -> Result<Value> {
                return makeError("raise_exception: " + (a.positional.empty() ? std::string() : a.positional[0].str()));
            });
        }
        if (name == "strftime_now") {
            return Value::function([](const TemplateArgs& a) -> Result<Value> {
                std::string fmt = a.positional.empty() ? "%Y-%m-%d" : a.positional[0].str();
                std::time_t t = std::time(nullptr);
                std::tm tm{};
                localtime_r(&t, &tm);
                char buf[256];
                size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
                return Value(std::string(buf, n));
            });
        }
        return Value();
    }

    Result<Value> eval(const Expr& e) {
        switch (e.kind) {
        case Expr::Kind::Literal: return e.value;
        case Expr::Kind::Name: return lookup(e.name);
        case Expr::Kind::Attr: {
            auto obj = eval(*e.args[0]);
            if (!obj.ok()) return obj;
            return getAttr(obj.value(), e.name);
        }
        case Expr::Kind::Item: {
            auto obj = eval(*e.args[0]);
            if (!obj.ok()) return obj;
            auto key = eval(*e.args[1]);
            if (!key.ok()) return key;
            return getItem(obj.value(), key.value());
        }
        case Expr::Kind::Slice: return evalSlice(e);
        case Expr::Kind::Call: return evalCall(e);
        case Expr::Kind::Filter: return evalFilter(e);
        case Expr::Kind::Test: {
            auto v = evalTest(e);
            if (!v.ok()) return v.error();
            return Value(v.value() != e.negated);
        }
        case Expr::Kind::Neg:
        case Expr::Kind::Pos: {
            auto v = eval(*e.args[0]);
            if (!v.ok()) return v;
            const Value& x = v.value();
            if (!x.isNumber()) return errorAt(e.line, std::string("bad operand type for unary -: '") + x.typeName() + "'");
            if (e.kind == Expr::Kind::Pos) return x.isBool() ? Value(x.asInt()) : x;
            if (x.isFloat()) return Value(-x.asDouble());
            return Value(-x.asInt());
        }
        case Expr::Kind::Not: {
            auto v = eval(*e.args[0]);
            if (!v.ok()) return v;
            return Value(!v.value().truthy());
        }
        case Expr::Kind::And: {
            auto l = eval(*e.args[0]);
            if (!l.ok() || !l.value().truthy()) return l;
            return eval(*e.args[1]);
        }
        case Expr::Kind::Or: {
            auto l = eval(*e.args[0]);
            if (!l.ok() || l.value().truthy()) return l;
            return eval(*e.args[1]);
        }
        case Expr::Kind::Cond: {
            auto c = eval(*e.args[0]);
            if (!c.ok()) return c;
            if (c.value().truthy()) return eval(*e.args[1]);
            if (e.args[2]) return eval(*e.args[2]);
            return Value();
        }
        case Expr::Kind::ListLit: {
            Value::List list;
            for (const auto& a : e.args) {
                auto v = eval(*a);
                if (!v.ok()) return v;
                list.push_back(std::move(v.value()));
            }
            return Value(std::move(list));
        }
        case Expr::Kind::DictLit: {
            Value::Map map;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                auto k = eval(*e.args[i]);
                if (!k.ok()) return k;
                auto v = eval(*e.args[i + 1]);
                if (!v.ok()) return v;
                map.set(k.value().str(), std::move(v.value()));
            }
            return Value(std::move(map));
        }
        case Expr::Kind::Binary: return evalBinary(e);
        }
        return Value();
    }

    Result<Value> evalSlice(const Expr& e) {
        auto obj = eval(*e.args[0]);
        if (!obj.ok()) return obj;
        Value parts[3];
        for (int i = 0; i < 3; ++i) {
            if (!e.args[static_cast<size_t>(i) + 1]) continue;
            auto v = eval(*e.args[static_cast<size_t>(i) + 1]);
            if (!v.ok()) return v;
            parts[i] = v.value();
        }
        const Value& o = obj.value();
        if (o.isUndefined()) return Value();
        if (o.isList()) {
            const auto& list = o.asList();
            auto idx = sliceIndices(static_cast<int64_t>(list.size()), parts[0], parts[1], parts[2]);
            if (!idx.ok()) return withLine(e.line, idx.error());
            Value::List out;
            for (int64_t i : idx.value()) out.push_back(list[static_cast<size_t>(i)]);
            return Value(std::move(out));
        }
        if (o.isString()) {
            auto cps = codepoints(o.asString());
            auto idx = sliceIndices(static_cast<int64_t>(cps.size()), parts[0], parts[1], parts[2]);
            if (!idx.ok()) return withLine(e.line, idx.error());
            std::string out;
            for (int64_t i : idx.value()) out += cps[static_cast<size_t>(i)];
            return Value(std::move(out));
        }
        return errorAt(e.line, std::string("'") + o.typeName() + "' object is not subscriptable");
    }

    Result<TemplateArgs> evalArgs(const Expr& e, size_t first) {
        TemplateArgs args;
        size_t nPos = e.args.size() - first - e.kwNames.size();
        for (size_t i = first; i < e.args.size(); ++i) {
            auto v = eval(*e.args[i]);
            if (!v.ok()) return v.error();
            if (i - first < nPos) args.positional.push_back(std::move(v.value()));
            else args.named.emplace_back(e.kwNames[i - first - nPos], std::move(v.value()));
        }
        return args;
    }

    Result<Value> evalCall(const Expr& e) {
        auto callee = eval(*e.args[0]);
        if (!callee.ok()) return callee;
        auto args = evalArgs(e, 1);
        if (!args.ok()) return args.error();
        const Value& fn = callee.value();
        if (!fn.isCallable()) {
            std::string what = e.args[0]->kind == Expr::Kind::Name   ? "'" + e.args[0]->name + "'"
                               : e.args[0]->kind == Expr::Kind::Attr ? "'" + e.args[0]->name + "'"
                                                                      : "value";
            if (fn.isUndefined()) return errorAt(e.line, what + " is undefined and cannot be called");
            return errorAt(e.line, what + " of type '" + fn.typeName() + "' is not callable");
        }
        auto r = fn.asFunction()(args.value());
        if (!r.ok()) return withLine(e.line, r.error());
        return r;
    }

    Result<Value> evalBinary(const Expr& e) {
        auto lr = eval(*e.args[0]);
        if (!lr.ok()) return lr;
        auto rr = eval(*e.args[1]);
        if (!rr.ok()) return rr;
        const Value& a = lr.value();
        const Value& b = rr.value();
        const std::string& op = e.name;
        if (op == "~") return Value(a.str() + b.str());
        if (op == "==") return Value(a.equals(b));
        if (op == "!=") return Value(!a.equals(b));
        if (op == "in" || op == "notin") {
            auto r = contains(b, a);
            if (!r.ok()) return withLine(e.line, r.error());
            return Value(r.value() == (op == "in"));
        }
        if (op == "<" || op == ">" || op == "<=" || op == ">=") {
            auto c = compareValues(a, b);
            if (!c.ok()) return withLine(e.line, c.error());
            int x = c.value();
            return Value(op == "<" ? x < 0 : op == ">" ? x > 0 : op == "<=" ? x <= 0 : x >= 0);
        }
        auto typeError = [&]() {
            return errorAt(e.line, "unsupported operand types for " + op + ": '" + a.typeName() + "' and '" +
                                       b.typeName() + "'");
        };
        if (op == "+") {
            if (a.isString() && b.isString()) {
                if (a.asString().size() + b.asString().size() > m_opt.maxOutputBytes)
                    return errorAt(e.line, "string too long");
                return Value(a.asString() + b.asString());
            }
            if (a.isList() && b.isList()) {
                Value::List out = a.asList();
                out.insert(out.end(), b.asList().begin(), b.asList().end());
                return Value(std::move(out));
            }
        }
        if (op == "*") {
            const Value* s = a.isString() || a.isList() ? &a : b.isString() || b.isList() ? &b : nullptr;
            const Value* n = s == &a ? &b : &a;
            if (s && (n->isInt() || n->isBool())) {
                int64_t times = std::max<int64_t>(0, n->asInt());
                if (s->isString()) {
                    if (static_cast<double>(s->asString().size()) * static_cast<double>(times) >
                        static_cast<double>(m_opt.maxOutputBytes))
                        return errorAt(e.line, "string too long");
                    std::string out;
                    for (int64_t i = 0; i < times; ++i) out += s->asString();
                    return Value(std::move(out));
                }
                if (static_cast<double>(s->asList().size()) * static_cast<double>(times) >
                    static_cast<double>(m_opt.maxLoopIterations))
                    return errorAt(e.line, "list too long");
                Value::List out;
                for (int64_t i = 0; i < times; ++i) out.insert(out.end(), s->asList().begin(), s->asList().end());
                return Value(std::move(out));
            }
        }
        if (!a.isNumber() || !b.isNumber()) return typeError();
        bool useFloat = a.isFloat() || b.isFloat();
        if (op == "/") {
            if (b.asDouble() == 0.0) return errorAt(e.line, "division by zero");
            return Value(a.asDouble() / b.asDouble());
        }
        if (useFloat) {
            double x = a.asDouble(), y = b.asDouble();
            if (op == "+") return Value(x + y);
            if (op == "-") return Value(x - y);
            if (op == "*") return Value(x * y);
            if (op == "**") return Value(std::pow(x, y));
            if (y == 0.0) return errorAt(e.line, "division by zero");
            if (op == "//") return Value(std::floor(x / y));
            if (op == "%") {
                double m = std::fmod(x, y);
                if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
                return Value(m);
            }
        } else {
            int64_t x = a.asInt(), y = b.asInt();
            if (op == "+") return Value(x + y);
            if (op == "-") return Value(x - y);
            if (op == "*") return Value(x * y);
            if (op == "**") {
                if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
                int64_t r = 1;
                for (int64_t i = 0; i < y && i < 64; ++i) r *= x;
                return Value(r);
            }
            if (y == 0) return errorAt(e.line, "integer division or modulo by zero");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                --q;
                m += y;
            }
            if (op == "//") return Value(q);
            if (op == "%") return Value(m);
        }
        return typeError();
    }

    static Result<bool> contains(const Value& container, const Value& item) {
        switch (container.kind()) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (!item.isString()) return makeError("'in <string>' requires string as left operand");
            return container.asString().find(item.asString()) != std::string::npos;
        case Kind::List:
            for (const auto& v : container.asList())
                if (v.equals(item)) return true;
            return false;
        case Kind::Map: return item.isString() && container.asMap().contains(item.asString());
        default: return makeError(std::string("argument of type '") + container.typeName() + "' is not iterable");
        }
    }

    Result<Value> getItem(const Value& obj, const Value& key) {
        switch (obj.kind()) {
        case Kind::Map: {
            if (key.isString()) {
                if (const Value* v = obj.asMap().find(key.asString())) return *v;
                return getAttr(obj, key.asString());
            }
            if (const Value* v = obj.asMap().find(key.str())) return *v;
            return Value();
        }
        case Kind::List: {
            if (!key.isInt() && !key.isBool()) return Value();
            int64_t n = static_cast<int64_t>(obj.asList().size());
            int64_t i = key.asInt();
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value();
            return obj.asList()[static_cast<size_t>(i)];
        }
        case Kind::String: {
            if (!key.isInt()) return key.isString() ? getAttr(obj, key.asString()) : Value();
            auto cps = codepoints(obj.asString());
            int64_t n = static_cast<int64_t>(cps.size());
            int64_t i = key.asInt();
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value();
            return Value(cps[static_cast<size_t>(i)]);
        }
        default: return Value();
        }
    }

    // Attribute lookup as Jinja's sandbox does it: Python attributes (methods) first, then items.
    Result<Value> getAttr(const Value& obj, const std::string& name) {
        if (obj.isString()) return stringMethod(obj.asString(), name);
        if (obj.isMap()) {
            if (name == "items" || name == "keys" || name == "values" || name == "get") return dictMethod(obj, name);
            if (const Value* v = obj.asMap().find(name)) return *v;
            return Value();
        }
        return Value();
    }

    static Value dictMethod(const Value& obj, const std::string& name) {
        return Value::function([obj, name](const TemplateArgs& a) -> Result<Value> {
            const auto& entries = obj.asMap().entries();
            if (name == "get") {
                if (a.positional.empty()) return makeError("get() needs a key");
                if (const Value* v = obj.asMap().find(a.positional[0].str())) return *v;
                return a.positional.size() > 1 ? a.positional[1] : Value::none();
            }
            Value::List out;
            for (const auto& [k, v] : entries) {
                if (name == "keys") out.emplace_back(k);
                else if (name == "values") out.push_back(v);
                else out.emplace_back(Value::List{Value(k), v});
            }
            return Value(std::move(out));
        });
    }

    static Value stringMethod(const std::string& s, const std::string& name) {
        static const char* known[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                      "replace", "upper", "lower", "title", "capitalize", "find", "rfind",
                                      "count", "join", "splitlines", "isdigit", "isalpha", "isspace", "isupper",
                                      "islower", "format"};
        bool found = false;
        for (const char* k : known) found = found || name == k;
        if (!found) return Value();
        return Value::function([s, name](const TemplateArgs& a) -> Result<Value> {
            const Value* a0 = a.find(0, name == "split" || name == "rsplit" ? "sep" : "");
            if (name == "strip") return Value(stripChars(s, a0, true, true));
            if (name == "lstrip") return Value(stripChars(s, a0, true, false));
            if (name == "rstrip") return Value(stripChars(s, a0, false, true));
            if (name == "upper") return Value(toUpper(s));
            if (name == "lower") return Value(toLower(s));
            if (name == "title") return Value(pyTitle(s));
            if (name == "capitalize") return Value(pyCapitalize(s));
            if (name == "split" || name == "rsplit") {
                const Value* ms = a.find(1, "maxsplit");
                int64_t maxSplit = ms ? ms->asInt() : -1;
                if (a0 && a0->isString() && a0->asString().empty()) return makeError("empty separator");
                std::vector<std::string> parts;
                if (name == "rsplit" && maxSplit >= 0 && a0 && a0->isString()) {
                    // rsplit with a limit splits from the right.
                    const std::string& d = a0->asString();
                    std::string rest = s;
                    while (maxSplit-- > 0) {
                        size_t p = rest.rfind(d);
                        if (p == std::string::npos) break;
                        parts.insert(parts.begin(), rest.substr(p + d.size()));
                        rest.resize(p);
                    }
                    parts.insert(parts.begin(), rest);
                } else {
                    parts = pySplit(s, a0, maxSplit);
                }
                Value::List out;
                for (auto& p : parts) out.emplace_back(std::move(p));
                return Value(std::move(out));
            }
            if (name == "startswith" || name == "endswith") {
                if (!a0) return makeError(name + "() needs an argument");
                std::vector<std::string> options;
                if (a0->isList())
                    for (const auto& v : a0->asList()) options.push_back(v.str());
                else if (a0->isString()) options.push_back(a0->asString());
                else return makeError(name + "() argument must be str or a tuple of str");
                for (const auto& o : options) {
                    if (o.size() > s.size()) continue;
                    if (name == "startswith" ? s.compare(0, o.size(), o) == 0
                                             : s.compare(s.size() - o.size(), o.size(), o) == 0)
                        return Value(true);
                }
                return Value(false);
            }
            if (name == "replace") {
                if (a.positional.size() < 2) return makeError("replace() needs two arguments");
                int64_t count = a.positional.size() > 2 ? a.positional[2].asInt() : -1;
                return Value(replaceAll(s, a.positional[0].str(), a.positional[1].str(), count));
            }
            if (name == "find" || name == "rfind" || name == "count") {
                if (!a0) return makeError(name + "() needs an argument");
                std::string sub = a0->str();
                if (name == "count") {
                    if (sub.empty()) return Value(stringLength(s) + 1);
                    int64_t n = 0;
                    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
                    return Value(n);
                }
                size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
                if (p == std::string::npos) return Value(int64_t{-1});
                return Value(stringLength(s.substr(0, p)));
            }
            if (name == "join") {
                if (!a0) return makeError("join() needs an argument");
                auto items = iterate(*a0);
                if (!items.ok()) return items.error();
                std::string out;
                bool first = true;
                for (const auto& v : items.value()) {
                    if (!v.isString()) return makeError("join() expects strings");
                    if (!first) out += s;
                    first = false;
                    out += v.asString();
                }
                return Value(std::move(out));
            }
            if (name == "splitlines") {
                Value::List out;
                for (auto& l : splitLines(s)) out.emplace_back(std::move(l));
                return Value(std::move(out));
            }
            auto all = [&](auto pred) {
                if (s.empty()) return Value(false);
                for (char c : s)
                    if (!pred(c)) return Value(false);
                return Value(true);
            };
            if (name == "isdigit") return all([](char c) { return c >= '0' && c <= '9'; });
            if (name == "isalpha") return all([](char c) { return isAlpha(c); });
            if (name == "isspace") return all([](char c) { return isPySpace(c); });
            if (name == "isupper") return Value(toUpper(s) == s && toLower(s) != s);
            if (name == "islower") return Value(toLower(s) == s && toUpper(s) != s);
            if (name == "format") {
                // str.format with {} / {0} / {name} fields; no format specs.
                std::string out;
                size_t auto_ = 0;
                for (size_t i = 0; i < s.size(); ++i) {
                    if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') {
                        out += '{';
                        ++i;
                    } else if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') {
                        out += '}';
                        ++i;
                    } else if (s[i] == '{') {
                        size_t close = s.find('}', i);
                        if (close == std::string::npos) return makeError("format(): unmatched '{'");
                        std::string field = s.substr(i + 1, close - i - 1);
                        const Value* v = nullptr;
                        if (field.empty()) v = a.find(auto_++, "");
                        else if (std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; }))
                            v = a.find(std::stoul(field), "");
                        else v = a.find(SIZE_MAX, field);
                        if (!v) return makeError("format(): missing argument for '{" + field + "}'");
                        out += v->str();
                        i = close;
                    } else {
                        out += s[i];
                    }
                }
                return Value(std::move(out));
            }
            return makeError("unknown string method " + name);
        });
    }

    // ---------------------------------------------------------------- attribute paths for filters

    Result<Value> attributePath(const Value& v, const Value& attr) {
        if (attr.isInt()) return getItem(v, attr);
        Value cur = v;
        Value dot(".");
        for (const auto& part : pySplit(attr.str(), &dot, -1)) {
            bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
            auto next = numeric ? getItem(cur, Value(static_cast<int64_t>(std::stoll(part)))) : getItem(cur, Value(part));
            if (!next.ok()) return next;
            cur = next.value();
        }
        return cur;
    }

    // ---------------------------------------------------------------- tests

    Result<bool> applyTest(const std::string& name, const Value& v, const TemplateArgs& args, int line) {
        const Value* a0 = args.find(0, "value");
        auto needArg = [&]() -> Result<void> {
            if (!a0) return errorAt(line, "test '" + name + "' needs an argument");
            return {};
        };
        if (name == "defined") return !v.isUndefined();
        if (name == "undefined") return v.isUndefined();
        if (name == "none") return v.isNone();
        if (name == "string") return v.isString();
        if (name == "mapping") return v.isMap();
        if (name == "iterable") return v.isList() || v.isMap() || v.isString() || v.isUndefined();
        if (name == "sequence") return v.isList() || v.isMap() || v.isString() || v.isUndefined();
        if (name == "number") return v.isNumber();
        if (name == "integer") return v.isInt();
        if (name == "float") return v.isFloat();
        if (name == "boolean") return v.isBool();
        if (name == "true") return v.isBool() && v.asBool();
        if (name == "false") return v.isBool() && !v.asBool();
        if (name == "callable") return v.isCallable();
        if (name == "odd" || name == "even") {
            if (!v.isNumber()) return errorAt(line, "test '" + name + "' needs a number");
            return (v.asInt() % 2 != 0) == (name == "odd");
        }
        if (name == "divisibleby") {
            WB_TRY(needArg());
            if (a0->asInt() == 0) return errorAt(line, "divisibleby(0)");
            return v.asInt() % a0->asInt() == 0;
        }
        if (name == "lower") return v.isString() && toLower(v.asString()) == v.asString();
        if (name == "upper") return v.isString() && toUpper(v.asString()) == v.asString();
        if (name == "eq" || name == "equalto" || name == "==") {
            WB_TRY(needArg());
            return v.equals(*a0);
        }
        if (name == "ne" || name == "!=") {
            WB_TRY(needArg());
            return !v.equals(*a0);
        }
        if (name == "sameas") {
            WB_TRY(needArg());
            return v.sameAs(*a0);
        }
        if (name == "in") {
            WB_TRY(needArg());
            auto r = contains(*a0, v);
            if (!r.ok()) return withLine(line, r.error());
            return r.value();
        }
        if (name == "lt" || name == "gt" || name == "le" || name == "ge" || name == "lessthan" ||
            name == "greaterthan" || name == "<" || name == ">" || name == "<=" || name == ">=") {
            WB_TRY(needArg());
            auto c = compareValues(v, *a0);
            if (!c.ok()) return withLine(line, c.error());
            int x = c.value();
            if (name == "lt" || name == "lessthan" || name == "<") return x < 0;
            if (name == "gt" || name == "greaterthan" || name == ">") return x > 0;
            if (name == "le" || name == "<=") return x <= 0;
            return x >= 0;
        }
        if (name == "escaped") return false;
        return errorAt(line, "unknown test '" + name + "'");
    }

    Result<bool> evalTest(const Expr& e) {
        auto v = eval(*e.args[0]);
        if (!v.ok()) return v.error();
        auto args = evalArgs(e, 1);
        if (!args.ok()) return args.error();
        return applyTest(e.name, v.value(), args.value(), e.line);
    }

    // ---------------------------------------------------------------- filters

    Result<Value> evalFilter(const Expr& e) {
        auto input = eval(*e.args[0]);
        if (!input.ok()) return input;
        auto args = evalArgs(e, 1);
        if (!args.ok()) return args.error();
        auto r = applyFilter(e.name, input.value(), args.value(), e.line);
        if (!r.ok()) return withLine(e.line, r.error());
        return r;
    }

    Result<Value> selectOrReject(const Value& v, const TemplateArgs& args, bool byAttr, bool keep, int line) {
        auto items = iterate(v);
        if (!items.ok()) return items.error();
        size_t first = 0;
        Value attr;
        if (byAttr) {
            if (args.positional.empty()) return makeError("selectattr/rejectattr need an attribute name");
            attr = args.positional[0];
            first = 1;
        }
        std::string test;
        TemplateArgs testArgs;
        if (args.positional.size() > first) {
            test = args.positional[first].str();
            testArgs.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(first) + 1,
                                       args.positional.end());
        }
        Value::List out;
        for (const auto& item : items.value()) {
            Value subject = item;
            if (byAttr) {
                auto a = attributePath(item, attr);
                if (!a.ok()) return a;
                subject = a.value();
            }
            bool pass;
            if (test.empty()) {
                pass = subject.truthy();
            } else {
                auto t = applyTest(test, subject, testArgs, line);
                if (!t.ok()) return t.error();
                pass = t.value();
            }
            if (pass == keep) out.push_back(item);
        }
        return Value(std::move(out));
    }

    Result<Value> sortList(Value::List items, const TemplateArgs& args) {
        const Value* rev = args.find(0, "reverse");
        const Value* cs = args.find(1, "case_sensitive");
        const Value* attr = args.find(2, "attribute");
        bool caseSensitive = cs && cs->truthy();
        std::vector<std::pair<Value, Value>> keyed;
        for (auto& item : items) {
            Value key = item;
            if (attr && !attr->isNone() && !attr->isUndefined()) {
                auto k = attributePath(item, *attr);
                if (!k.ok()) return k;
                key = k.value();
            }
            if (!caseSensitive && key.isString()) key = Value(toLower(key.asString()));
            keyed.emplace_back(std::move(key), std::move(item));
        }
        std::string err;
        std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
            auto c = compareValues(x.first, y.first);
            if (!c.ok()) {
                err = c.error().message;
                return false;
            }
            return c.value() < 0;
        });
        if (!err.empty()) return makeError(err);
        if (rev && rev->truthy()) std::reverse(keyed.begin(), keyed.end());
        Value::List out;
        for (auto& [_, item] : keyed) out.push_back(std::move(item));
        return Value(std::move(out));
    }

    Result<Value> applyFilter(const std::string& name, const Value& v, const TemplateArgs& args, int line) {
        const Value* a0 = args.positional.empty() ? nullptr : &args.positional[0];
        if (name == "default" || name == "d") {
            const Value* def = args.find(0, "default_value");
            const Value* boolean = args.find(1, "boolean");
            bool useDefault = v.isUndefined() || (boolean && boolean->truthy() && !v.truthy());
            if (useDefault) return def ? *def : Value(std::string());
            return v;
        }
        if (name == "safe" || name == "string") return name == "safe" ? v : Value(v.str());
        if (name == "trim") return Value(stripChars(v.str(), args.find(0, "chars"), true, true));
        if (name == "upper") return Value(toUpper(v.str()));
        if (name == "lower") return Value(toLower(v.str()));
        if (name == "capitalize") return Value(pyCapitalize(v.str()));
        if (name == "title") {
            // Jinja's title(): words start after whitespace, '-', and opening brackets.
            std::string s = v.str();
            bool start = true;
            for (char& c : s) {
                if (isAlpha(c)) {
                    c = start ? toUpper(std::string(1, c))[0] : toLower(std::string(1, c))[0];
                    start = false;
                } else if (isPySpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<') {
                    start = true;
                } else {
                    start = false;
                }
            }
            return Value(s);
        }
        if (name == "length" || name == "count") {
            auto n = length(v);
            if (!n.ok()) return n.error();
            return Value(n.value());
        }
        if (name == "wordcount") {
            int64_t n = 0;
            bool in = false;
            for (unsigned char c : v.str()) {
                bool w = std::isalnum(c) || c == '_' || c >= 0x80;
                if (w && !in) ++n;
                in = w;
            }
            return Value(n);
        }
        if (name == "join") {
            const Value* sep = args.find(0, "d");
            const Value* attr = args.find(1, "attribute");
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            std::string out;
            bool first = true;
            for (const auto& item : items.value()) {
                if (!first && sep) out += sep->str();
                first = false;
                if (attr && !attr->isNone()) {
                    auto a = attributePath(item, *attr);
                    if (!a.ok()) return a;
                    out += a.value().str();
                } else {
                    out += item.str();
                }
            }
            return Value(std::move(out));
        }
        if (name == "first" || name == "last") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            if (items.value().empty()) return Value();
            return name == "first" ? items.value().front() : items.value().back();
        }
        if (name == "list") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            return Value(std::move(items.value()));
        }
        if (name == "reverse") {
            if (v.isString()) {
                auto cps = codepoints(v.asString());
                std::string out;
                for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
                return Value(std::move(out));
            }
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            std::reverse(items.value().begin(), items.value().end());
            return Value(std::move(items.value()));
        }
        if (name == "tojson") {
            const Value* indent = args.find(0, "indent");
            const Value* sortKeys = args.find(SIZE_MAX, "sort_keys");
            int ind = -1;
            if (indent && indent->isNumber()) ind = static_cast<int>(std::clamp<int64_t>(indent->asInt(), 0, 64));
            auto s = v.toJsonText(ind, sortKeys && sortKeys->truthy());
            if (!s.ok()) return s.error();
            return Value(std::move(s.value()));
        }
        if (name == "int") {
            const Value* def = args.find(0, "default");
            Value fallback = def ? *def : Value(int64_t{0});
            if (v.isNumber()) return Value(v.asInt());
            if (v.isString()) {
                std::string s = stripChars(v.asString(), nullptr, true, true);
                try {
                    size_t used = 0;
                    long long x = std::stoll(s, &used, 10);
                    if (used == s.size()) return Value(static_cast<int64_t>(x));
                    double d = std::stod(s, &used);
                    if (used == s.size()) return Value(static_cast<int64_t>(d));
                } catch (...) {
                }
            }
            return fallback;
        }
        if (name == "float") {
            const Value* def = args.find(0, "default");
            Value fallback = def ? *def : Value(0.0);
            if (v.isNumber()) return Value(v.asDouble());
            if (v.isString()) {
                std::string s = stripChars(v.asString(), nullptr, true, true);
                try {
                    size_t used = 0;
                    double d = std::stod(s, &used);
                    if (used == s.size()) return Value(d);
                } catch (...) {
                }
            }
            return fallback;
        }
        if (name == "abs") {
            if (v.isFloat()) return Value(std::fabs(v.asDouble()));
            if (v.isNumber()) return Value(static_cast<int64_t>(std::llabs(v.asInt())));
            return makeError(std::string("bad operand type for abs(): '") + v.typeName() + "'");
        }
        if (name == "round") {
            const Value* prec = args.find(0, "precision");
            const Value* method = args.find(1, "method");
            if (!v.isNumber()) return makeError("round() needs a number");
            double scale = std::pow(10.0, prec ? static_cast<double>(prec->asInt()) : 0.0);
            double x = v.asDouble() * scale;
            std::string m = method ? method->str() : "common";
            if (m == "ceil") x = std::ceil(x);
            else if (m == "floor") x = std::floor(x);
            else x = std::nearbyint(x);  // Python's round(): half to even
            return Value(x / scale);
        }
        if (name == "replace") {
            if (args.positional.size() < 2) return makeError("replace needs two arguments");
            const Value* count = args.find(2, "count");
            return Value(replaceAll(v.str(), args.positional[0].str(), args.positional[1].str(),
                                    count && !count->isNone() ? count->asInt() : -1));
        }
        if (name == "items") {
            if (v.isUndefined()) return Value(Value::List{});
            if (!v.isMap()) return makeError("items filter needs a mapping");
            return dictMethod(v, "items").asFunction()(TemplateArgs{});
        }
        if (name == "dictsort") {
            if (!v.isMap()) return makeError("dictsort needs a mapping");
            auto items = dictMethod(v, "items").asFunction()(TemplateArgs{});
            if (!items.ok()) return items;
            const Value* cs = args.find(0, "case_sensitive");
            const Value* by = args.find(1, "by");
            const Value* rev = args.find(2, "reverse");
            TemplateArgs sortArgs;
            sortArgs.named.emplace_back("reverse", rev ? *rev : Value(false));
            sortArgs.named.emplace_back("case_sensitive", cs ? *cs : Value(false));
            sortArgs.named.emplace_back("attribute", Value(int64_t{by && by->str() == "value" ? 1 : 0}));
            return sortList(items.value().asList(), sortArgs);
        }
        if (name == "sort") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            return sortList(std::move(items.value()), args);
        }
        if (name == "unique") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            const Value* cs = args.find(0, "case_sensitive");
            const Value* attr = args.find(1, "attribute");
            Value::List out;
            std::vector<Value> seen;
            for (const auto& item : items.value()) {
                Value key = item;
                if (attr && !attr->isNone()) {
                    auto k = attributePath(item, *attr);
                    if (!k.ok()) return k;
                    key = k.value();
                }
                if (!(cs && cs->truthy()) && key.isString()) key = Value(toLower(key.asString()));
                bool dup = false;
                for (const auto& s : seen) dup = dup || s.equals(key);
                if (!dup) {
                    seen.push_back(key);
                    out.push_back(item);
                }
            }
            return Value(std::move(out));
        }
        if (name == "min" || name == "max" || name == "sum") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            const Value* attr = args.find(name == "sum" ? 0 : 1, "attribute");
            Value::List keys;
            for (const auto& item : items.value()) {
                if (attr && !attr->isNone()) {
                    auto k = attributePath(item, *attr);
                    if (!k.ok()) return k;
                    keys.push_back(k.value());
                } else {
                    keys.push_back(item);
                }
            }
            if (name == "sum") {
                const Value* start = args.find(1, "start");
                Value acc = start ? *start : Value(int64_t{0});
                for (const auto& k : keys) {
                    if (!k.isNumber() || !acc.isNumber()) return makeError("sum needs numbers");
                    acc = acc.isFloat() || k.isFloat() ? Value(acc.asDouble() + k.asDouble()) : Value(acc.asInt() + k.asInt());
                }
                return acc;
            }
            if (keys.empty()) return Value();
            size_t best = 0;
            for (size_t i = 1; i < keys.size(); ++i) {
                auto c = compareValues(keys[i], keys[best]);
                if (!c.ok()) return c.error();
                if (name == "min" ? c.value() < 0 : c.value() > 0) best = i;
            }
            return items.value()[best];
        }
        if (name == "select" || name == "reject") return selectOrReject(v, args, false, name == "select", line);
        if (name == "selectattr" || name == "rejectattr")
            return selectOrReject(v, args, true, name == "selectattr", line);
        if (name == "map") {
            auto items = iterate(v);
            if (!items.ok()) return items.error();
            Value::List out;
            const Value* attr = args.find(SIZE_MAX, "attribute");
            if (attr) {
                const Value* def = args.find(SIZE_MAX, "default");
                for (const auto& item : items.value()) {
                    auto a = attributePath(item, *attr);
                    if (!a.ok()) return a;
                    out.push_back(a.value().isUndefined() && def ? *def : a.value());
                }
                return Value(std::move(out));
            }
            if (!a0) return makeError("map needs a filter name or attribute=");
            std::string filter = a0->str();
            TemplateArgs rest;
            rest.positional.assign(args.positional.begin() + 1, args.positional.end());
            rest.named = args.named;
            for (const auto& item : items.value()) {
                auto r = applyFilter(filter, item, rest, line);
                if (!r.ok()) return r;
                out.push_back(std::move(r.value()));
            }
            return Value(std::move(out));
        }
        if (name == "attr") {
            if (!a0) return makeError("attr needs a name");
            return getAttr(v, a0->str());
        }
        if (name == "indent") {
            const Value* width = args.find(0, "width");
            const Value* first = args.find(1, "first");
            const Value* blank = args.find(2, "blank");
            std::string ind = width ? (width->isString() ? width->asString()
                                                          : std::string(static_cast<size_t>(std::clamp<int64_t>(width->asInt(), 0, 256)), ' '))
                                    : std::string(4, ' ');
            std::string s = v.str() + "\n";  // Jinja appends a newline so splitlines keeps a trailing empty line
            auto lines = splitLines(s);
            std::string out;
            if (blank && blank->truthy()) {
                for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" + ind : "") + lines[i];
            } else {
                out = lines.empty() ? "" : lines[0];
                for (size_t i = 1; i < lines.size(); ++i) out += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
            }
            if (first && first->truthy()) out = ind + out;
            return Value(std::move(out));
        }
        if (name == "center") {
            int64_t width = a0 ? a0->asInt() : 80;
            std::string s = v.str();
            int64_t len = stringLength(s);
            if (width <= len) return Value(s);
            int64_t total = std::min<int64_t>(width - len, 4096);
            int64_t left = total / 2 + (total & width & 1);
            return Value(std::string(static_cast<size_t>(left), ' ') + s +
                         std::string(static_cast<size_t>(total - left), ' '));
        }
        if (name == "e" || name == "escape" || name == "forceescape") {
            std::string out;
            for (char c : v.str()) {
                switch (c) {
                case '&': out += "&amp;"; break;
                case '<': out += "&lt;"; break;
                case '>': out += "&gt;"; break;
                case '"': out += "&#34;"; break;
                case '\'': out += "&#39;"; break;
                default: out += c;
                }
            }
            return Value(std::move(out));
        }
        if (name == "format") {
            // printf-style "%s"/"%d" with positional arguments, enough for the templates that use it.
            std::string fmt = v.str(), out;
            size_t argi = 0;
            for (size_t i = 0; i < fmt.size(); ++i) {
                if (fmt[i] != '%' || i + 1 >= fmt.size()) {
                    out += fmt[i];
                    continue;
                }
                char c = fmt[++i];
                if (c == '%') {
                    out += '%';
                } else if (c == 's' || c == 'd' || c == 'r' || c == 'i') {
                    if (argi >= args.positional.size()) return makeError("format: not enough arguments");
                    const Value& x = args.positional[argi++];
                    out += c == 'r' ? x.repr() : (c == 'd' || c == 'i') ? std::to_string(x.asInt()) : x.str();
                } else {
                    return makeError(std::string("format: unsupported conversion %") + c);
                }
            }
            return Value(std::move(out));
        }
        return errorAt(line, "unknown filter '" + name + "'");
    }

    const Program& m_prog;
    const ChatTemplateOptions& m_opt;
    std::shared_ptr<Scope> m_root;
    std::vector<std::shared_ptr<Scope>> m_chain;
    std::string* m_out = nullptr;
    size_t m_iterations = 0;
    size_t m_depth = 0;
};

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string source, ChatTemplateOptions options) {
    try {
        auto program = std::make_shared<Program>();
        program->options = options;
        // Jinja normalises newlines to "\n" and drops a single trailing newline (keep_trailing_newline=False).
        std::string normalized;
        normalized.reserve(source.size());
        for (size_t i = 0; i < source.size(); ++i) {
            if (source[i] == '\r') {
                normalized += '\n';
                if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
            } else {
                normalized += source[i];
            }
        }
        if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
        program->source = std::move(source);
        auto tokens = tokenize(normalized, program->options);
        if (!tokens.ok()) return tokens.error();
        auto body = parseTemplate(tokens.value());
        if (!body.ok()) return body.error();
        program->body = std::move(body.value());
        ChatTemplate t;
        t.m_program = std::move(program);
        return t;
    } catch (const std::exception& e) {
        return makeError(std::string("chat template: ") + e.what());
    }
}

Result<std::string> ChatTemplate::render(const TemplateValue& context) const {
    if (!m_program) return makeError("chat template: not parsed");
    try {
        Renderer r(*m_program, context);
        return r.run();
    } catch (const std::exception& e) {
        return makeError(std::string("chat template: ") + e.what());
    }
}

Result<std::string> ChatTemplate::renderChat(const TemplateValue& messages, bool addGenerationPrompt,
                                             const TemplateValue& extra, const std::string& bosToken,
                                             const std::string& eosToken) const {
    TemplateValue::Map ctx;
    ctx.set("messages", messages);
    ctx.set("add_generation_prompt", TemplateValue(addGenerationPrompt));
    ctx.set("bos_token", TemplateValue(bosToken));
    ctx.set("eos_token", TemplateValue(eosToken));
    // transformers always passes these, as None when absent; templates test `tools is not none`.
    ctx.set("tools", TemplateValue::none());
    ctx.set("documents", TemplateValue::none());
    if (extra.isMap())
        for (const auto& [k, v] : extra.asMap().entries()) ctx.set(k, v);
    return render(TemplateValue(std::move(ctx)));
}

const std::string& ChatTemplate::source() const {
    static const std::string empty;
    return m_program ? m_program->source : empty;
}

}  // namespace wb
