// The answer → AgentAction. The reference agent (Open-AutoGLM) reads do(...) with Python's ast and
// ast.literal_eval, and slices Type's text and finish's message out by position; this reads the same calls with
// a literal reader of its own, and falls back to the slicing only where the strict reading fails (an unescaped
// quote inside a typed text), saying so in the warning.
#include "agent/action_parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>

namespace wb {

namespace {

bool isIdent(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void skipSpace(std::string_view s, size_t& pos) {
    while (pos < s.size() && isSpace(s[pos])) ++pos;
}

void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Python's escapes in a non-raw string; an unknown escape keeps its backslash, as Python does.
bool unescape(std::string_view body, std::string& out, std::string& error) {
    for (size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c != '\\' || i + 1 >= body.size()) {
            out += c;
            continue;
        }
        const char e = body[++i];
        switch (e) {
            case '\n':
                break;  // line continuation
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'n':
                out += '\n';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'v':
                out += '\v';
                break;
            case 'x':
            case 'u':
            case 'U': {
                const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (size_t k = 1; k <= n; ++k) {
                    const int h = i + k < body.size() ? hexValue(body[i + k]) : -1;
                    if (h < 0) {
                        error = std::string("bad \\") + e + " escape";
                        return false;
                    }
                    cp = cp * 16 + uint32_t(h);
                }
                if (cp > 0x10FFFF) {
                    error = "escape beyond Unicode";
                    return false;
                }
                appendUtf8(out, cp);
                i += n;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    uint32_t cp = uint32_t(e - '0');
                    for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
                        cp = cp * 8 + uint32_t(body[++i] - '0');
                    appendUtf8(out, cp);
                } else {
                    out += '\\';
                    out += e;
                }
        }
    }
    return true;
}

bool readString(std::string_view s, size_t& pos, std::string& out, std::string& error) {
    bool raw = false, bytes = false;
    while (pos < s.size() && std::strchr("rRuUbB", s[pos]) && s[pos] != '\0') {
        raw |= s[pos] == 'r' || s[pos] == 'R';
        bytes |= s[pos] == 'b' || s[pos] == 'B';
        ++pos;
    }
    (void)bytes;
    if (pos >= s.size() || (s[pos] != '"' && s[pos] != '\'')) {
        error = "expected a string";
        return false;
    }
    const char q = s[pos];
    const bool triple = pos + 2 < s.size() && s[pos + 1] == q && s[pos + 2] == q;
    const size_t open = pos;
    pos += triple ? 3 : 1;
    const size_t begin = pos;
    while (pos < s.size()) {
        if (s[pos] == '\\') {
            pos += 2;
            continue;
        }
        if (s[pos] == q && (!triple || (pos + 2 < s.size() && s[pos + 1] == q && s[pos + 2] == q))) {
            const std::string_view body = s.substr(begin, pos - begin);
            pos += triple ? 3 : 1;
            if (raw) {
                out.assign(body);
                return true;
            }
            return unescape(body, out, error);
        }
        ++pos;
    }
    pos = open;
    error = "a string that never ends";
    return false;
}

bool readNumber(std::string_view s, size_t& pos, agent::PyValue& out, std::string& error) {
    const size_t begin = pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    bool isFloat = false;
    std::string digits(1, begin < pos ? s[begin] : '+');
    while (pos < s.size()) {
        const char c = s[pos];
        if (std::isdigit(static_cast<unsigned char>(c))) {
            digits += c;
        } else if (c == '_') {
        } else if (c == '.' || c == 'e' || c == 'E') {
            isFloat = true;
            digits += c;
        } else if ((c == '-' || c == '+') && (s[pos - 1] == 'e' || s[pos - 1] == 'E')) {
            digits += c;
        } else {
            break;
        }
        ++pos;
    }
    if (digits.size() < 2 || (!std::isdigit(static_cast<unsigned char>(digits[1])) && digits[1] != '.')) {
        pos = begin;
        error = "expected a value";
        return false;
    }
    char* end = nullptr;
    if (isFloat) {
        out.kind = agent::PyValue::Kind::Float;
        out.f = std::strtod(digits.c_str(), &end);
    } else {
        out.kind = agent::PyValue::Kind::Int;
        errno = 0;
        out.i = std::strtoll(digits.c_str(), &end, 10);
        if (errno == ERANGE) {
            out.kind = agent::PyValue::Kind::Float;
            out.f = std::strtod(digits.c_str(), &end);
        }
    }
    if (!end || *end != '\0') {
        pos = begin;
        error = "a malformed number";
        return false;
    }
    return true;
}

}  // namespace

namespace agent {

namespace {

// Lists nest this deep at most: an answer is [x, y], and a mutant of "[[[[…" must not overflow the stack.
constexpr int kMaxDepth = 16;

bool readValue(std::string_view s, size_t& pos, PyValue& out, std::string& error, int depth);

}  // namespace

bool readPyLiteral(std::string_view s, size_t& pos, PyValue& out, std::string& error) {
    return readValue(s, pos, out, error, 0);
}

namespace {

bool readValue(std::string_view s, size_t& pos, PyValue& out, std::string& error, int depth) {
    if (depth > kMaxDepth) {
        error = "values nested too deep";
        return false;
    }
    skipSpace(s, pos);
    if (pos >= s.size()) {
        error = "the text ends where a value was expected";
        return false;
    }
    const char c = s[pos];
    out = PyValue{};
    if (c == '"' || c == '\'' ||
        (std::strchr("rRuUbB", c) && pos + 1 < s.size() &&
         (s[pos + 1] == '"' || s[pos + 1] == '\'' ||
          (std::strchr("rRbB", s[pos + 1]) && pos + 2 < s.size() && (s[pos + 2] == '"' || s[pos + 2] == '\''))))) {
        out.kind = PyValue::Kind::Str;
        if (!readString(s, pos, out.str, error)) return false;
        // Adjacent literals concatenate ("a" "b"), as in Python.
        for (;;) {
            size_t p = pos;
            skipSpace(s, p);
            if (p >= s.size() || (s[p] != '"' && s[p] != '\'')) return true;
            std::string more;
            if (!readString(s, p, more, error)) return false;
            out.str += more;
            pos = p;
        }
    }
    if (c == '[' || c == '(') {
        const char close = c == '[' ? ']' : ')';
        out.kind = PyValue::Kind::List;
        ++pos;
        while (true) {
            skipSpace(s, pos);
            if (pos < s.size() && s[pos] == close) {
                ++pos;
                return true;
            }
            PyValue item;
            if (!readValue(s, pos, item, error, depth + 1)) return false;
            out.items.push_back(std::move(item));
            skipSpace(s, pos);
            if (pos < s.size() && s[pos] == ',') {
                ++pos;
                continue;
            }
            if (pos < s.size() && s[pos] == close) {
                ++pos;
                return true;
            }
            error = std::string("expected ',' or '") + close + "' in a list";
            return false;
        }
    }
    for (auto [word, kind, b] :
         {std::tuple{"True", PyValue::Kind::Bool, true}, std::tuple{"False", PyValue::Kind::Bool, false},
          std::tuple{"None", PyValue::Kind::None, false}}) {
        const size_t n = std::strlen(word);
        if (s.substr(pos, n) == word && (pos + n >= s.size() || !isIdent(s[pos + n]))) {
            out.kind = kind;
            out.b = b;
            pos += n;
            return true;
        }
    }
    return readNumber(s, pos, out, error);
}

}  // namespace

}  // namespace agent

const char* agentActionName(AgentActionKind kind) {
    switch (kind) {
        case AgentActionKind::Tap:
            return "Tap";
        case AgentActionKind::DoubleTap:
            return "Double Tap";
        case AgentActionKind::LongPress:
            return "Long Press";
        case AgentActionKind::Swipe:
            return "Swipe";
        case AgentActionKind::Type:
            return "Type";
        case AgentActionKind::TypeName:
            return "Type_Name";
        case AgentActionKind::Launch:
            return "Launch";
        case AgentActionKind::Back:
            return "Back";
        case AgentActionKind::Home:
            return "Home";
        case AgentActionKind::Wait:
            return "Wait";
        case AgentActionKind::TakeOver:
            return "Take_over";
        case AgentActionKind::Note:
            return "Note";
        case AgentActionKind::CallApi:
            return "Call_API";
        case AgentActionKind::Interact:
            return "Interact";
        case AgentActionKind::Finish:
            return "finish";
        case AgentActionKind::Unknown:
            break;
    }
    return "unknown";
}

AgentPixel agentPointToPixel(AgentPoint p, int screenWidth, int screenHeight) {
    auto map = [](int v, int size) {
        const int px = int(double(v) / 1000.0 * double(size));
        return std::clamp(px, 0, std::max(0, size - 1));
    };
    return {map(p.x, screenWidth), map(p.y, screenHeight)};
}

namespace {

using agent::PyValue;

// "Double Tap", "double_tap", "DoubleTap" → the same kind: names compared without case, spaces and underscores.
AgentActionKind kindOf(const std::string& name) {
    std::string k;
    for (char c : name)
        if (c != ' ' && c != '_' && c != '-') k += char(std::tolower(static_cast<unsigned char>(c)));
    static const std::pair<const char*, AgentActionKind> table[] = {{"tap", AgentActionKind::Tap},
                                                                    {"doubletap", AgentActionKind::DoubleTap},
                                                                    {"longpress", AgentActionKind::LongPress},
                                                                    {"swipe", AgentActionKind::Swipe},
                                                                    {"type", AgentActionKind::Type},
                                                                    {"typename", AgentActionKind::TypeName},
                                                                    {"launch", AgentActionKind::Launch},
                                                                    {"back", AgentActionKind::Back},
                                                                    {"home", AgentActionKind::Home},
                                                                    {"wait", AgentActionKind::Wait},
                                                                    {"takeover", AgentActionKind::TakeOver},
                                                                    {"note", AgentActionKind::Note},
                                                                    {"callapi", AgentActionKind::CallApi},
                                                                    {"interact", AgentActionKind::Interact},
                                                                    {"finish", AgentActionKind::Finish}};
    for (const auto& [n, kind] : table)
        if (k == n) return kind;
    return AgentActionKind::Unknown;
}

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && isSpace(s[a])) ++a;
    while (b > a && isSpace(s[b - 1])) --b;
    return std::string(s.substr(a, b - a));
}

// The first `do(` or `finish(` that starts a word (whitespace allowed before the parenthesis).
size_t findCall(std::string_view s, size_t& nameEnd, std::string& name) {
    for (size_t i = 0; i < s.size(); ++i) {
        if (i > 0 && isIdent(s[i - 1])) continue;
        for (const char* n : {"do", "finish"}) {
            const size_t len = std::strlen(n);
            if (s.substr(i, len) != n) continue;
            size_t p = i + len;
            skipSpace(s, p);
            if (p < s.size() && s[p] == '(') {
                nameEnd = p;
                name = n;
                return i;
            }
        }
    }
    return std::string_view::npos;
}

bool toPoint(const PyValue& v, AgentPoint& p) {
    if (v.kind != PyValue::Kind::List || v.items.size() != 2 || !v.items[0].isNumber() || !v.items[1].isNumber())
        return false;
    p = {int(std::lround(v.items[0].number())), int(std::lround(v.items[1].number()))};
    return true;
}

struct Kwarg {
    std::string key;
    PyValue value;
    std::string source;
};

// Reads `( key=value, ... )` from s at pos (just past the name, at the parenthesis). Positional values get an
// empty key.
bool readCallArgs(std::string_view s, size_t& pos, std::vector<Kwarg>& out, std::string& error) {
    ++pos;  // '('
    while (true) {
        skipSpace(s, pos);
        if (pos >= s.size()) {
            error = "the call never closes: no ')'";
            return false;
        }
        if (s[pos] == ')') {
            ++pos;
            return true;
        }
        Kwarg kw;
        size_t p = pos;
        while (p < s.size() && isIdent(s[p])) ++p;
        size_t eq = p;
        skipSpace(s, eq);
        if (p > pos && eq < s.size() && s[eq] == '=' && (eq + 1 >= s.size() || s[eq + 1] != '=')) {
            kw.key.assign(s.substr(pos, p - pos));
            pos = eq + 1;
        }
        skipSpace(s, pos);
        const size_t valueBegin = pos;
        if (!agent::readPyLiteral(s, pos, kw.value, error)) {
            error = (kw.key.empty() ? std::string("a value") : "the value of " + kw.key) + ": " + error;
            return false;
        }
        kw.source.assign(s.substr(valueBegin, pos - valueBegin));
        out.push_back(std::move(kw));
        skipSpace(s, pos);
        if (pos < s.size() && s[pos] == ',') {
            ++pos;
            continue;
        }
        if (pos < s.size() && s[pos] == ')') {
            ++pos;
            return true;
        }
        error = pos >= s.size() ? "the call never closes: no ')'"
                                : "expected ',' or ')' after " + (kw.key.empty() ? std::string("a value") : kw.key);
        return false;
    }
}

// The reference's way with Type's text and finish's message: everything between the key's opening quote and the
// quote before the call's last ')'. Used only when the strict reading failed (an unescaped quote inside).
bool sliceString(std::string_view call, const std::string& key, std::string& out) {
    size_t k = call.find(key + "=");
    if (k == std::string_view::npos) return false;
    size_t p = k + key.size() + 1;
    skipSpace(call, p);
    if (p >= call.size() || (call[p] != '"' && call[p] != '\'')) return false;
    const char q = call[p];
    size_t close = call.rfind(')');
    if (close == std::string_view::npos || close <= p) close = call.size();
    size_t endq = close;
    while (endq > p + 1 && isSpace(call[endq - 1])) --endq;
    if (endq <= p + 1 || call[endq - 1] != q) return false;
    std::string err;
    std::string body(call.substr(p + 1, endq - 1 - (p + 1)));
    if (!unescape(body, out, err)) out = body;
    return true;
}

}  // namespace

AgentParse parseAgentAnswer(std::string_view text) {
    AgentParse r;
    r.raw.assign(text);
    std::string_view s = text;
    // Thinking first: everything up to the last </think> is not the answer.
    const size_t thinkEnd = s.rfind("</think>");
    const bool hasAnswerTag = s.find("<answer>") != std::string_view::npos;
    if (thinkEnd != std::string_view::npos) {
        s = s.substr(thinkEnd + 8);
    } else if (s.find("<think>") != std::string_view::npos && !hasAnswerTag) {
        r.error = "the thinking never ended: no </think> and no <answer> (a reply cut at max_tokens?)";
        return r;
    }
    const size_t answerTag = s.find("<answer>");
    if (answerTag != std::string_view::npos) s = s.substr(answerTag + 8);
    const size_t answerEnd = s.find("</answer>");
    if (answerEnd != std::string_view::npos) s = s.substr(0, answerEnd);
    if (trim(s).empty()) {
        r.error = "the answer is empty";
        return r;
    }

    size_t nameEnd = 0;
    std::string callName;
    const size_t callStart = findCall(s, nameEnd, callName);
    if (callStart == std::string_view::npos) {
        r.error = "no do(...) or finish(...) call in the answer: \"" + trim(s).substr(0, 200) + "\"";
        return r;
    }
    size_t pos = nameEnd;
    std::vector<Kwarg> args;
    std::string readError;
    const bool strict = readCallArgs(s, pos, args, readError);
    AgentAction& a = r.action;
    if (strict) {
        a.line = trim(s.substr(callStart, pos - callStart));
        const std::string rest = trim(s.substr(pos));
        if (!rest.empty()) r.warning = "text after the call is ignored: \"" + rest.substr(0, 80) + "\"";
    } else {
        a.line = trim(s.substr(callStart));
    }

    auto arg = [&](const std::string& key) -> const PyValue* {
        for (const Kwarg& kw : args)
            if (kw.key == key) return &kw.value;
        return nullptr;
    };
    auto stringArg = [&](const std::string& key, std::string& out) -> bool {
        const PyValue* v = arg(key);
        if (!v) return false;
        if (v->kind == PyValue::Kind::Str) {
            out = v->str;
        } else {
            for (const Kwarg& kw : args)
                if (kw.key == key) out = kw.source;  // a number where a string was meant: kept as written
        }
        return true;
    };

    if (!strict) {
        // Only the reference's positional slicing is left: Type / Type_Name's text and finish's message.
        const std::string_view call = std::string_view(a.line);
        std::string name;
        if (callName == "finish") {
            if (sliceString(call, "message", a.message)) {
                a.kind = AgentActionKind::Finish;
                a.name = "finish";
                r.warning = "read leniently (" + readError + "): the message is the text between its quotes";
                return r;
            }
        } else {
            size_t p = call.find("action=");
            if (p != std::string_view::npos) {
                p += 7;
                PyValue v;
                std::string e;
                if (agent::readPyLiteral(call, p, v, e) && v.kind == PyValue::Kind::Str) {
                    const AgentActionKind k = kindOf(v.str);
                    if ((k == AgentActionKind::Type || k == AgentActionKind::TypeName) &&
                        sliceString(call, "text", a.text)) {
                        a.kind = k;
                        a.name = v.str;
                        r.warning = "read leniently (" + readError + "): the text is everything between its quotes";
                        return r;
                    }
                }
            }
        }
        r.error = "cannot read the call: " + readError;
        r.action = AgentAction{};
        return r;
    }

    for (const Kwarg& kw : args) {
        if (kw.key.empty() && callName == "do") {
            r.error = "do(...) takes keyword arguments only, got a positional " + kw.source;
            r.action = AgentAction{};
            return r;
        }
        a.args[kw.key.empty() ? "message" : kw.key] = kw.source;
    }

    if (callName == "finish") {
        a.kind = AgentActionKind::Finish;
        a.name = "finish";
        if (!stringArg("message", a.message) && !args.empty() && args[0].key.empty())
            a.message = args[0].value.kind == PyValue::Kind::Str ? args[0].value.str : args[0].source;
        return r;
    }

    const PyValue* action = arg("action");
    if (!action || action->kind != PyValue::Kind::Str) {
        r.error = action ? "action= is not a string" : "do(...) without action=\"NAME\"";
        r.action = AgentAction{};
        return r;
    }
    a.name = action->str;
    a.kind = kindOf(a.name);
    auto fail = [&](const std::string& msg) {
        r.error = msg;
        r.action = AgentAction{};
        return r;
    };
    auto point = [&](const char* key, std::optional<AgentPoint>& out) -> bool {
        const PyValue* v = arg(key);
        if (!v) return false;
        AgentPoint p;
        if (!toPoint(*v, p)) return false;
        out = p;
        if (p.x < 0 || p.y < 0 || p.x > 1000 || p.y > 1000) {
            if (!r.warning.empty()) r.warning += "; ";
            r.warning += std::string(key) + " is outside the 0-999 grid";
        }
        return true;
    };
    stringArg("message", a.message);
    switch (a.kind) {
        case AgentActionKind::Tap:
        case AgentActionKind::DoubleTap:
        case AgentActionKind::LongPress:
            if (!point("element", a.point)) return fail(a.name + " needs element=[x, y] (two numbers)");
            break;
        case AgentActionKind::Swipe:
            if (!point("start", a.start) || !point("end", a.end))
                return fail("Swipe needs start=[x1, y1] and end=[x2, y2] (two numbers each)");
            break;
        case AgentActionKind::Type:
        case AgentActionKind::TypeName:
            if (!stringArg("text", a.text)) return fail(a.name + " needs text=\"...\"");
            break;
        case AgentActionKind::Launch:
            if (!stringArg("app", a.app)) return fail("Launch needs app=\"...\"");
            break;
        case AgentActionKind::Wait: {
            const PyValue* d = arg("duration");
            if (d && d->isNumber()) {
                a.durationSeconds = d->number();
            } else if (d && d->kind == PyValue::Kind::Str) {
                char* end = nullptr;
                const std::string t = trim(d->str);
                const double v = std::strtod(t.c_str(), &end);
                if (end == t.c_str()) return fail("Wait's duration is not a number of seconds: \"" + d->str + "\"");
                a.durationSeconds = v;
            }
            break;
        }
        case AgentActionKind::CallApi:
            stringArg("instruction", a.instruction);
            break;
        case AgentActionKind::Unknown:
            if (!r.warning.empty()) r.warning += "; ";
            r.warning += "unknown action \"" + a.name + "\" (kept as written)";
            point("element", a.point);
            break;
        default:
            break;
    }
    return r;
}

}  // namespace wb
