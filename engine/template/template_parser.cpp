// Lexer and parser of the Jinja2 subset. The lexer reproduces Jinja's whitespace handling (trim_blocks,
// lstrip_blocks, `-`/`+` markers, one trailing newline dropped) because chat templates are whitespace-exact:
// a stray newline changes the prompt the model sees.
#include "template/template_ast.h"

#include <cstring>
#include <set>

namespace wb::template_detail {

namespace {

Error errorAt(int line, const std::string& msg) { return makeError("chat template line " + std::to_string(line) + ": " + msg); }

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

int countNewlines(const std::string& s, size_t from, size_t to) {
    int n = 0;
    for (size_t i = from; i < to && i < s.size(); ++i) n += s[i] == '\n';
    return n;
}

void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Lexer {
public:
    Lexer(const std::string& src, const ChatTemplateOptions& opt) : m_src(src), m_opt(opt) {}

    Result<std::vector<Token>> run() {
        const std::string& s = m_src;
        while (m_pos < s.size()) {
            size_t start = findTagStart(m_pos);
            std::string text = s.substr(m_pos, (start == std::string::npos ? s.size() : start) - m_pos);
            int textLine = m_line;
            m_line += countNewlines(s, m_pos, start == std::string::npos ? s.size() : start);
            if (start == std::string::npos) {
                pushText(std::move(text), textLine);
                break;
            }
            char kind = s[start + 1];
            char sign = start + 2 < s.size() && (s[start + 2] == '-' || s[start + 2] == '+') ? s[start + 2] : 0;
            applyLeftStrip(text, kind, sign);
            pushText(std::move(text), textLine);
            m_pos = start + 2 + (sign ? 1 : 0);
            if (kind == '#') {
                WB_TRY(lexComment(start));
            } else if (kind == '%' && isRawTag()) {
                WB_TRY(lexRaw(start));
            } else {
                WB_TRY(lexTag(kind));
            }
        }
        m_tokens.push_back(Token{TokenType::End, "", 0, 0.0, m_line});
        return std::move(m_tokens);
    }

private:
    size_t findTagStart(size_t from) const {
        for (size_t i = m_src.find('{', from); i != std::string::npos; i = m_src.find('{', i + 1)) {
            if (i + 1 < m_src.size() && (m_src[i + 1] == '{' || m_src[i + 1] == '%' || m_src[i + 1] == '#')) return i;
        }
        return std::string::npos;
    }

    void pushText(std::string text, int line) {
        if (!text.empty()) m_tokens.push_back(Token{TokenType::Text, std::move(text), 0, 0.0, line});
    }

    // `{%-` strips all whitespace before the tag; otherwise lstrip_blocks strips the spaces that start the
    // tag's line, exactly as Jinja's lexer decides it (including a line started by a trimmed previous tag).
    void applyLeftStrip(std::string& text, char kind, char sign) {
        if (sign == '-') {
            size_t end = text.size();
            while (end > 0 && isSpace(text[end - 1])) --end;
            text.resize(end);
        } else if (sign != '+' && m_opt.lstripBlocks && kind != '{') {
            size_t nl = text.rfind('\n');
            size_t lpos = nl == std::string::npos ? 0 : nl + 1;
            if ((lpos > 0 || m_lineStarting) && lpos < text.size()) {
                bool allSpace = true;
                for (size_t i = lpos; i < text.size(); ++i) allSpace = allSpace && isSpace(text[i]);
                if (allSpace) text.resize(lpos);
            }
        }
        m_lineStarting = false;
    }

    // After a closing delimiter: `-` eats all following whitespace, trim_blocks one newline after a block.
    void applyRightStrip(bool minus, bool plus, bool isBlock) {
        size_t from = m_pos;
        if (minus) {
            while (m_pos < m_src.size() && isSpace(m_src[m_pos])) ++m_pos;
        } else if (isBlock && !plus && m_opt.trimBlocks && m_pos < m_src.size() && m_src[m_pos] == '\n') {
            ++m_pos;
        }
        m_line += countNewlines(m_src, from, m_pos);
        m_lineStarting = m_pos > from && m_src[m_pos - 1] == '\n';
    }

    Result<void> lexComment(size_t start) {
        size_t end = m_src.find("#}", m_pos);
        if (end == std::string::npos) return errorAt(m_line, "unterminated comment '{#'");
        bool minus = end > m_pos && m_src[end - 1] == '-';
        bool plus = end > m_pos && m_src[end - 1] == '+';
        m_line += countNewlines(m_src, m_pos, end);
        m_pos = end + 2;
        applyRightStrip(minus, plus, true);
        (void)start;
        return {};
    }

    bool isRawTag() const {
        size_t p = m_pos;
        while (p < m_src.size() && isSpace(m_src[p])) ++p;
        if (m_src.compare(p, 3, "raw") != 0) return false;
        p += 3;
        if (p < m_src.size() && isNameChar(m_src[p])) return false;
        while (p < m_src.size() && isSpace(m_src[p])) ++p;
        if (p < m_src.size() && m_src[p] == '-') ++p;
        return m_src.compare(p, 2, "%}") == 0;
    }

    Result<void> lexRaw(size_t start) {
        int line = m_line;
        // Close of the `{% raw %}` tag itself: only `-` strips, no trim_blocks (as in Jinja).
        size_t close = m_src.find("%}", m_pos);
        bool minus = close > 0 && m_src[close - 1] == '-';
        m_line += countNewlines(m_src, m_pos, close);
        m_pos = close + 2;
        applyRightStrip(minus, false, false);
        size_t contentStart = m_pos;
        for (size_t i = m_src.find("{%", m_pos); i != std::string::npos; i = m_src.find("{%", i + 2)) {
            size_t p = i + 2;
            char sign = p < m_src.size() && (m_src[p] == '-' || m_src[p] == '+') ? m_src[p] : 0;
            if (sign) ++p;
            while (p < m_src.size() && isSpace(m_src[p])) ++p;
            if (m_src.compare(p, 6, "endraw") != 0) continue;
            p += 6;
            while (p < m_src.size() && isSpace(m_src[p])) ++p;
            char closeSign = p < m_src.size() && (m_src[p] == '-' || m_src[p] == '+') ? m_src[p] : 0;
            if (closeSign) ++p;
            if (m_src.compare(p, 2, "%}") != 0) continue;
            std::string text = m_src.substr(contentStart, i - contentStart);
            applyLeftStrip(text, '%', sign);
            m_line += countNewlines(m_src, contentStart, p + 2);
            pushText(std::move(text), line);
            m_pos = p + 2;
            applyRightStrip(closeSign == '-', closeSign == '+', true);
            return {};
        }
        (void)start;
        return errorAt(line, "unterminated raw block, missing '{% endraw %}'");
    }

    Result<void> lexTag(char kind) {
        bool isBlock = kind == '%';
        int openLine = m_line;
        m_tokens.push_back(Token{isBlock ? TokenType::BlockBegin : TokenType::VarBegin, "", 0, 0.0, m_line});
        int depth = 0;
        const std::string& s = m_src;
        while (true) {
            while (m_pos < s.size() && isSpace(s[m_pos])) {
                m_line += s[m_pos] == '\n';
                ++m_pos;
            }
            if (m_pos >= s.size())
                return errorAt(openLine, std::string("unexpected end of template, unclosed '") +
                                             (isBlock ? "{%" : "{{") + "'");
            if (depth == 0) {
                const char* close = isBlock ? "%}" : "}}";
                char c = s[m_pos];
                if ((c == '-' || c == '+') && s.compare(m_pos + 1, 2, close) == 0) {
                    m_pos += 3;
                    m_tokens.push_back(Token{isBlock ? TokenType::BlockEnd : TokenType::VarEnd, "", 0, 0.0, m_line});
                    applyRightStrip(c == '-', c == '+', isBlock);
                    return {};
                }
                if (s.compare(m_pos, 2, close) == 0) {
                    m_pos += 2;
                    m_tokens.push_back(Token{isBlock ? TokenType::BlockEnd : TokenType::VarEnd, "", 0, 0.0, m_line});
                    applyRightStrip(false, false, isBlock);
                    return {};
                }
                // The other tag's closer or a new opener inside a tag means the tag was never closed.
                if (s.compare(m_pos, 2, isBlock ? "}}" : "%}") == 0 || s.compare(m_pos, 2, "{%") == 0 ||
                    s.compare(m_pos, 2, "{{") == 0)
                    return errorAt(openLine, std::string("unclosed '") + (isBlock ? "{%" : "{{") +
                                                 "', found '" + s.substr(m_pos, 2) + "'");
            }
            char c = s[m_pos];
            if (isNameStart(c)) {
                size_t b = m_pos;
                while (m_pos < s.size() && isNameChar(s[m_pos])) ++m_pos;
                m_tokens.push_back(Token{TokenType::Name, s.substr(b, m_pos - b), 0, 0.0, m_line});
            } else if (isDigit(c)) {
                WB_TRY(lexNumber());
            } else if (c == '\'' || c == '"') {
                WB_TRY(lexString());
            } else {
                static const char* twoChar[] = {"//", "**", "==", "!=", "<=", ">="};
                std::string op;
                for (const char* t : twoChar)
                    if (s.compare(m_pos, 2, t) == 0) op = t;
                if (op.empty()) {
                    if (!std::strchr("+-*/%~<>=()[]{},.:|", c))
                        return errorAt(m_line, std::string("unexpected character '") + c + "'");
                    op = std::string(1, c);
                }
                if (op == "(" || op == "[" || op == "{") ++depth;
                if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
                m_pos += op.size();
                m_tokens.push_back(Token{TokenType::Op, op, 0, 0.0, m_line});
            }
        }
    }

    Result<void> lexNumber() {
        const std::string& s = m_src;
        size_t b = m_pos;
        bool isFloat = false;
        while (m_pos < s.size() && (isDigit(s[m_pos]) || s[m_pos] == '_')) ++m_pos;
        if (m_pos + 1 < s.size() && s[m_pos] == '.' && isDigit(s[m_pos + 1])) {
            isFloat = true;
            ++m_pos;
            while (m_pos < s.size() && (isDigit(s[m_pos]) || s[m_pos] == '_')) ++m_pos;
        }
        if (m_pos < s.size() && (s[m_pos] == 'e' || s[m_pos] == 'E')) {
            size_t p = m_pos + 1;
            if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
            if (p < s.size() && isDigit(s[p])) {
                isFloat = true;
                m_pos = p;
                while (m_pos < s.size() && isDigit(s[m_pos])) ++m_pos;
            }
        }
        std::string text;
        for (size_t i = b; i < m_pos; ++i)
            if (s[i] != '_') text += s[i];
        Token t{isFloat ? TokenType::Float : TokenType::Int, text, 0, 0.0, m_line};
        try {
            if (isFloat) t.floatValue = std::stod(text);
            else t.intValue = std::stoll(text);
        } catch (...) {
            return errorAt(m_line, "number literal out of range: " + text);
        }
        m_tokens.push_back(std::move(t));
        return {};
    }

    Result<void> lexString() {
        const std::string& s = m_src;
        char q = s[m_pos++];
        int line = m_line;
        std::string out;
        while (true) {
            if (m_pos >= s.size()) return errorAt(line, "unterminated string literal");
            char c = s[m_pos++];
            if (c == q) break;
            if (c == '\n') ++m_line;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (m_pos >= s.size()) return errorAt(line, "unterminated string literal");
            char e = s[m_pos++];
            switch (e) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case '0': out += '\0'; break;
            case 'a': out += '\a'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'v': out += '\v'; break;
            case '\\': out += '\\'; break;
            case '\'': out += '\''; break;
            case '"': out += '"'; break;
            case '\n': ++m_line; break;  // line continuation
            case 'x':
            case 'u':
            case 'U': {
                size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if (m_pos + len > s.size()) return errorAt(line, "truncated escape in string literal");
                uint32_t cp = 0;
                for (size_t i = 0; i < len; ++i) {
                    char h = s[m_pos + i];
                    int d = isDigit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                    if (d < 0) return errorAt(line, "bad escape in string literal");
                    cp = cp * 16 + static_cast<uint32_t>(d);
                }
                m_pos += len;
                appendUtf8(out, cp);
                break;
            }
            default:  // Python keeps unknown escapes verbatim
                out += '\\';
                out += e;
            }
        }
        m_tokens.push_back(Token{TokenType::String, std::move(out), 0, 0.0, line});
        return {};
    }

    const std::string& m_src;
    const ChatTemplateOptions& m_opt;
    size_t m_pos = 0;
    int m_line = 1;
    bool m_lineStarting = true;
    std::vector<Token> m_tokens;
};

constexpr int kMaxNesting = 200;
constexpr int kMaxLinks = 256;  // a filter link costs ~9 KB of stack under ASan

class Parser {
public:
    explicit Parser(const std::vector<Token>& tokens) : m_toks(tokens) {}

    Result<Body> run() {
        auto body = parseBody({});
        if (!body.ok()) return body.error();
        if (cur().type != TokenType::End) return errorAt(cur().line, "unexpected tag");
        return std::move(body.value());
    }

private:
    const Token& cur() const { return m_toks[m_i]; }
    const Token& peek(size_t k = 1) const { return m_toks[std::min(m_i + k, m_toks.size() - 1)]; }
    void advance() {
        if (m_i + 1 < m_toks.size()) ++m_i;
    }
    bool isOp(const char* op) const { return cur().type == TokenType::Op && cur().text == op; }
    bool isName(const char* n) const { return cur().type == TokenType::Name && cur().text == n; }
    bool skipOp(const char* op) {
        if (!isOp(op)) return false;
        advance();
        return true;
    }
    bool skipName(const char* n) {
        if (!isName(n)) return false;
        advance();
        return true;
    }
    std::string describe(const Token& t) const {
        switch (t.type) {
        case TokenType::End: return "end of template";
        case TokenType::BlockEnd: return "'%}'";
        case TokenType::VarEnd: return "'}}'";
        case TokenType::Text: return "text";
        case TokenType::String: return "string";
        default: return "'" + t.text + "'";
        }
    }
    Result<void> expectOp(const char* op) {
        if (skipOp(op)) return {};
        return errorAt(cur().line, std::string("expected '") + op + "', got " + describe(cur()));
    }
    Result<std::string> expectName() {
        if (cur().type != TokenType::Name) return errorAt(cur().line, "expected a name, got " + describe(cur()));
        std::string n = cur().text;
        advance();
        return n;
    }
    Result<void> expectBlockEnd() {
        if (cur().type == TokenType::BlockEnd) {
            advance();
            return {};
        }
        return errorAt(cur().line, "expected '%}', got " + describe(cur()));
    }

    // Left-associative chains (a + b + c ..., x.a.b ..., v | f | g ...) build trees as deep as they are long, and
    // evaluation and destruction walk them recursively: a 100,000-term chain overflowed the stack. Every link
    // of every chain in one statement counts toward one budget (nesting has its own, kMaxNesting).
    Result<void> link(int line) {
        if (++m_links > kMaxLinks)
            return errorAt(line, "expression too long (over " + std::to_string(kMaxLinks) +
                                     " chained operators, filters, tests, calls or lookups)");
        return {};
    }

    // Parses nodes until a `{% name %}` with name in `ends` (left unconsumed) or the end of the template.
    Result<Body> parseBody(const std::set<std::string>& ends) {
        if (++m_nesting > kMaxNesting) return errorAt(cur().line, "blocks nested too deeply");
        Body body;
        while (true) {
            m_links = 0;
            const Token& t = cur();
            if (t.type == TokenType::End) {
                if (!ends.empty()) {
                    std::string want = *ends.begin();
                    for (const auto& e : ends)
                        if (e.rfind("end", 0) == 0) want = e;
                    return errorAt(t.line, "unexpected end of template, expected '" + want + "'");
                }
                break;
            }
            if (t.type == TokenType::Text) {
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Text;
                n->line = t.line;
                n->text = t.text;
                body.push_back(std::move(n));
                advance();
            } else if (t.type == TokenType::VarBegin) {
                int line = t.line;
                advance();
                auto e = parseTuple(true);
                if (!e.ok()) return e.error();
                if (cur().type != TokenType::VarEnd)
                    return errorAt(cur().line, "expected '}}', got " + describe(cur()));
                advance();
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Output;
                n->line = line;
                n->expr = std::move(e.value());
                body.push_back(std::move(n));
            } else if (t.type == TokenType::BlockBegin) {
                const Token& nameTok = peek();
                if (nameTok.type != TokenType::Name) return errorAt(nameTok.line, "expected a tag name");
                if (ends.count(nameTok.text)) break;
                advance();
                auto n = parseStatement();
                if (!n.ok()) return n.error();
                body.push_back(std::move(n.value()));
            } else {
                return errorAt(t.line, "unexpected " + describe(t));
            }
        }
        --m_nesting;
        return body;
    }

    // At the tag name of a `{% name ... %}` whose `{%` is consumed.
    Result<NodePtr> parseStatement() {
        const Token& t = cur();
        std::string name = t.text;
        int line = t.line;
        advance();
        auto n = std::make_unique<Node>();
        n->line = line;
        if (name == "if") {
            n->kind = Node::Kind::If;
            auto cond = parseExpression();
            if (!cond.ok()) return cond.error();
            WB_TRY(expectBlockEnd());
            ExprPtr c = std::move(cond.value());
            while (true) {
                auto body = parseBody({"elif", "else", "endif"});
                if (!body.ok()) return body.error();
                n->branches.emplace_back(std::move(c), std::move(body.value()));
                advance();  // {%
                std::string tag = cur().text;
                advance();
                if (tag == "elif") {
                    auto e = parseExpression();
                    if (!e.ok()) return e.error();
                    c = std::move(e.value());
                    WB_TRY(expectBlockEnd());
                    continue;
                }
                WB_TRY(expectBlockEnd());
                if (tag == "else") {
                    auto eb = parseBody({"endif"});
                    if (!eb.ok()) return eb.error();
                    n->elseBody = std::move(eb.value());
                    advance();
                    advance();
                    WB_TRY(expectBlockEnd());
                }
                break;
            }
        } else if (name == "for") {
            n->kind = Node::Kind::For;
            bool paren = skipOp("(");
            do {
                auto target = expectName();
                if (!target.ok()) return target.error();
                n->targets.push_back(target.value());
            } while (skipOp(","));
            if (paren) WB_TRY(expectOp(")"));
            if (!skipName("in")) return errorAt(cur().line, "expected 'in' in for loop, got " + describe(cur()));
            auto iter = parseTuple(false);
            if (!iter.ok()) return iter.error();
            n->expr = std::move(iter.value());
            if (skipName("if")) {
                auto f = parseExpression();
                if (!f.ok()) return f.error();
                n->filter = std::move(f.value());
            }
            if (isName("recursive")) return errorAt(cur().line, "recursive for loops are not supported");
            WB_TRY(expectBlockEnd());
            auto body = parseBody({"else", "endfor"});
            if (!body.ok()) return body.error();
            n->body = std::move(body.value());
            advance();
            std::string tag = cur().text;
            advance();
            WB_TRY(expectBlockEnd());
            if (tag == "else") {
                auto eb = parseBody({"endfor"});
                if (!eb.ok()) return eb.error();
                n->elseBody = std::move(eb.value());
                advance();
                advance();
                WB_TRY(expectBlockEnd());
            }
        } else if (name == "set") {
            auto first = expectName();
            if (!first.ok()) return first.error();
            n->targets.push_back(first.value());
            if (skipOp(".")) {
                auto attr = expectName();
                if (!attr.ok()) return attr.error();
                n->text = attr.value();
            } else {
                while (skipOp(",")) {
                    auto t2 = expectName();
                    if (!t2.ok()) return t2.error();
                    n->targets.push_back(t2.value());
                }
            }
            if (cur().type == TokenType::BlockEnd) {
                if (n->targets.size() != 1) return errorAt(line, "block set takes one target");
                advance();
                n->kind = Node::Kind::SetBlock;
                auto body = parseBody({"endset"});
                if (!body.ok()) return body.error();
                n->body = std::move(body.value());
                advance();
                advance();
                WB_TRY(expectBlockEnd());
            } else {
                n->kind = Node::Kind::Set;
                WB_TRY(expectOp("="));
                auto v = parseTuple(true);
                if (!v.ok()) return v.error();
                n->expr = std::move(v.value());
                WB_TRY(expectBlockEnd());
            }
        } else if (name == "macro") {
            n->kind = Node::Kind::Macro;
            auto mname = expectName();
            if (!mname.ok()) return mname.error();
            n->text = mname.value();
            WB_TRY(expectOp("("));
            while (!isOp(")")) {
                auto p = expectName();
                if (!p.ok()) return p.error();
                n->targets.push_back(p.value());
                ExprPtr def;
                if (skipOp("=")) {
                    auto d = parseExpression();
                    if (!d.ok()) return d.error();
                    def = std::move(d.value());
                }
                n->defaults.push_back(std::move(def));
                if (!skipOp(",")) break;
            }
            WB_TRY(expectOp(")"));
            WB_TRY(expectBlockEnd());
            auto body = parseBody({"endmacro"});
            if (!body.ok()) return body.error();
            n->body = std::move(body.value());
            advance();
            advance();
            if (cur().type == TokenType::Name) advance();  // `{% endmacro name %}`
            WB_TRY(expectBlockEnd());
        } else if (name == "break" || name == "continue") {
            n->kind = name == "break" ? Node::Kind::Break : Node::Kind::Continue;
            WB_TRY(expectBlockEnd());
        } else if (name == "do") {
            n->kind = Node::Kind::Do;
            auto e = parseTuple(true);
            if (!e.ok()) return e.error();
            n->expr = std::move(e.value());
            WB_TRY(expectBlockEnd());
        } else if (name == "generation") {
            // transformers' {% generation %} marks assistant text for training masks; it renders its body.
            n->kind = Node::Kind::Block;
            WB_TRY(expectBlockEnd());
            auto body = parseBody({"endgeneration"});
            if (!body.ok()) return body.error();
            n->body = std::move(body.value());
            advance();
            advance();
            WB_TRY(expectBlockEnd());
        } else {
            static const std::set<std::string> stray = {"endif", "endfor", "else", "elif", "endset", "endmacro",
                                                        "endraw", "endgeneration"};
            if (stray.count(name)) return errorAt(line, "unexpected '" + name + "'");
            return errorAt(line, "unknown or unsupported tag '" + name + "'");
        }
        return n;
    }

    ExprPtr make(Expr::Kind k, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line;
        return e;
    }

    // expr (',' expr)* -> a tuple (a list at run time) when there is a comma.
    Result<ExprPtr> parseTuple(bool withCond) {
        int line = cur().line;
        auto first = withCond ? parseExpression() : parseOr();
        if (!first.ok()) return first;
        if (!isOp(",")) return first;
        auto list = make(Expr::Kind::ListLit, line);
        list->args.push_back(std::move(first.value()));
        while (skipOp(",")) {
            if (cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd || isName("if")) break;
            auto e = withCond ? parseExpression() : parseOr();
            if (!e.ok()) return e;
            list->args.push_back(std::move(e.value()));
        }
        return list;
    }

    Result<ExprPtr> parseExpression() {
        if (++m_nesting > kMaxNesting) return errorAt(cur().line, "expression nested too deeply");
        auto r = parseCond();
        --m_nesting;
        return r;
    }

    Result<ExprPtr> parseCond() {
        auto e = parseOr();
        if (!e.ok()) return e;
        ExprPtr expr = std::move(e.value());
        while (isName("if")) {
            int line = cur().line;
            advance();
            WB_TRY(link(line));
            auto cond = parseOr();
            if (!cond.ok()) return cond;
            ExprPtr other;
            if (skipName("else")) {
                if (++m_nesting > kMaxNesting) return errorAt(line, "expression nested too deeply");
                auto o = parseCond();
                --m_nesting;
                if (!o.ok()) return o;
                other = std::move(o.value());
            }
            auto c = make(Expr::Kind::Cond, line);
            c->args.push_back(std::move(cond.value()));
            c->args.push_back(std::move(expr));
            c->args.push_back(std::move(other));
            expr = std::move(c);
        }
        return expr;
    }

    Result<ExprPtr> parseOr() {
        auto l = parseAnd();
        if (!l.ok()) return l;
        ExprPtr left = std::move(l.value());
        while (isName("or")) {
            int line = cur().line;
            advance();
            WB_TRY(link(line));
            auto r = parseAnd();
            if (!r.ok()) return r;
            auto e = make(Expr::Kind::Or, line);
            e->args.push_back(std::move(left));
            e->args.push_back(std::move(r.value()));
            left = std::move(e);
        }
        return left;
    }

    Result<ExprPtr> parseAnd() {
        auto l = parseNot();
        if (!l.ok()) return l;
        ExprPtr left = std::move(l.value());
        while (isName("and")) {
            int line = cur().line;
            advance();
            WB_TRY(link(line));
            auto r = parseNot();
            if (!r.ok()) return r;
            auto e = make(Expr::Kind::And, line);
            e->args.push_back(std::move(left));
            e->args.push_back(std::move(r.value()));
            left = std::move(e);
        }
        return left;
    }

    Result<ExprPtr> parseNot() {
        if (isName("not")) {
            int line = cur().line;
            advance();
            if (++m_nesting > kMaxNesting) return errorAt(line, "expression nested too deeply");
            auto inner = parseNot();
            --m_nesting;
            if (!inner.ok()) return inner;
            auto e = make(Expr::Kind::Not, line);
            e->args.push_back(std::move(inner.value()));
            return e;
        }
        return parseCompare();
    }

    Result<ExprPtr> parseCompare() {
        auto l = parseMath1();
        if (!l.ok()) return l;
        ExprPtr left = std::move(l.value());
        // Python chains comparisons (a < b < c means a < b and b < c); templates do not chain in practice,
        // so each comparison applies to the previous result.
        while (true) {
            int line = cur().line;
            std::string op;
            if (cur().type == TokenType::Op &&
                (isOp("==") || isOp("!=") || isOp("<") || isOp(">") || isOp("<=") || isOp(">="))) {
                op = cur().text;
                advance();
            } else if (isName("in")) {
                op = "in";
                advance();
            } else if (isName("not") && peek().type == TokenType::Name && peek().text == "in") {
                op = "notin";
                advance();
                advance();
            } else {
                break;
            }
            WB_TRY(link(line));
            auto r = parseMath1();
            if (!r.ok()) return r;
            auto e = make(Expr::Kind::Binary, line);
            e->name = op;
            e->args.push_back(std::move(left));
            e->args.push_back(std::move(r.value()));
            left = std::move(e);
        }
        return left;
    }

    Result<ExprPtr> binaryChain(Result<ExprPtr> (Parser::*next)(), std::initializer_list<const char*> ops) {
        auto l = (this->*next)();
        if (!l.ok()) return l;
        ExprPtr left = std::move(l.value());
        while (true) {
            const char* found = nullptr;
            for (const char* op : ops)
                if (isOp(op)) found = op;
            if (!found) break;
            int line = cur().line;
            advance();
            WB_TRY(link(line));
            auto r = (this->*next)();
            if (!r.ok()) return r;
            auto e = make(Expr::Kind::Binary, line);
            e->name = found;
            e->args.push_back(std::move(left));
            e->args.push_back(std::move(r.value()));
            left = std::move(e);
        }
        return left;
    }

    // Jinja's precedence: + - below ~ below * / // % below **.
    Result<ExprPtr> parseMath1() { return binaryChain(&Parser::parseConcat, {"+", "-"}); }
    Result<ExprPtr> parseConcat() { return binaryChain(&Parser::parseMath2, {"~"}); }
    Result<ExprPtr> parseMath2() { return binaryChain(&Parser::parsePow, {"*", "/", "//", "%"}); }
    Result<ExprPtr> parsePow() { return binaryChain(&Parser::parseUnaryWithFilters, {"**"}); }
    Result<ExprPtr> parseUnaryWithFilters() { return parseUnary(true); }

    Result<ExprPtr> parseUnary(bool withFilter) {
        ExprPtr node;
        int line = cur().line;
        if (isOp("-") || isOp("+")) {
            bool neg = isOp("-");
            advance();
            if (++m_nesting > kMaxNesting) return errorAt(line, "expression nested too deeply");
            auto inner = parseUnary(false);
            --m_nesting;
            if (!inner.ok()) return inner;
            node = make(neg ? Expr::Kind::Neg : Expr::Kind::Pos, line);
            node->args.push_back(std::move(inner.value()));
        } else {
            auto p = parsePrimary();
            if (!p.ok()) return p;
            node = std::move(p.value());
        }
        auto post = parsePostfix(std::move(node));
        if (!post.ok()) return post;
        node = std::move(post.value());
        if (withFilter) return parseFilterExpr(std::move(node));
        return node;
    }

    Result<ExprPtr> parsePrimary() {
        const Token& t = cur();
        int line = t.line;
        switch (t.type) {
        case TokenType::Name: {
            std::string n = t.text;
            advance();
            auto e = make(Expr::Kind::Literal, line);
            if (n == "true" || n == "True") e->value = TemplateValue(true);
            else if (n == "false" || n == "False") e->value = TemplateValue(false);
            else if (n == "none" || n == "None") e->value = TemplateValue::none();
            else {
                e->kind = Expr::Kind::Name;
                e->name = n;
            }
            return e;
        }
        case TokenType::String: {
            std::string s;
            while (cur().type == TokenType::String) {  // adjacent literals concatenate, as in Python
                s += cur().text;
                advance();
            }
            auto e = make(Expr::Kind::Literal, line);
            e->value = TemplateValue(std::move(s));
            return e;
        }
        case TokenType::Int: {
            auto e = make(Expr::Kind::Literal, line);
            e->value = TemplateValue(t.intValue);
            advance();
            return e;
        }
        case TokenType::Float: {
            auto e = make(Expr::Kind::Literal, line);
            e->value = TemplateValue(t.floatValue);
            advance();
            return e;
        }
        case TokenType::Op: {
            if (isOp("(")) {
                advance();
                if (skipOp(")")) return make(Expr::Kind::ListLit, line);  // empty tuple
                if (++m_nesting > kMaxNesting) return errorAt(line, "expression nested too deeply");
                auto inner = parseTuple(true);
                --m_nesting;
                if (!inner.ok()) return inner;
                WB_TRY(expectOp(")"));
                return inner;
            }
            if (isOp("[")) {
                advance();
                auto list = make(Expr::Kind::ListLit, line);
                while (!isOp("]")) {
                    auto e = parseExpression();
                    if (!e.ok()) return e;
                    list->args.push_back(std::move(e.value()));
                    if (!skipOp(",")) break;
                }
                WB_TRY(expectOp("]"));
                return list;
            }
            if (isOp("{")) {
                advance();
                auto dict = make(Expr::Kind::DictLit, line);
                while (!isOp("}")) {
                    auto k = parseExpression();
                    if (!k.ok()) return k;
                    WB_TRY(expectOp(":"));
                    auto v = parseExpression();
                    if (!v.ok()) return v;
                    dict->args.push_back(std::move(k.value()));
                    dict->args.push_back(std::move(v.value()));
                    if (!skipOp(",")) break;
                }
                WB_TRY(expectOp("}"));
                return dict;
            }
            break;
        }
        default: break;
        }
        return errorAt(line, "unexpected " + describe(t) + " in expression");
    }

    // Call arguments after '(' up to and including ')': positional then keyword (name=value).
    Result<void> parseCallArgs(Expr& call) {
        while (!isOp(")")) {
            if (cur().type == TokenType::Name && peek().type == TokenType::Op && peek().text == "=") {
                call.kwNames.push_back(cur().text);
                advance();
                advance();
            } else if (!call.kwNames.empty()) {
                return errorAt(cur().line, "positional argument after keyword argument");
            }
            auto e = parseExpression();
            if (!e.ok()) return e.error();
            call.args.push_back(std::move(e.value()));
            if (!skipOp(",")) break;
        }
        return expectOp(")");
    }

    Result<ExprPtr> parsePostfix(ExprPtr node) {
        while (true) {
            int line = cur().line;
            if (isOp(".") || isOp("[") || isOp("(")) WB_TRY(link(line));
            if (isOp(".")) {
                advance();
                auto e = make(Expr::Kind::Attr, line);
                if (cur().type == TokenType::Int) {  // foo.0 is foo[0] in Jinja
                    e->kind = Expr::Kind::Item;
                    auto idx = make(Expr::Kind::Literal, line);
                    idx->value = TemplateValue(cur().intValue);
                    advance();
                    e->args.push_back(std::move(node));
                    e->args.push_back(std::move(idx));
                } else {
                    auto n = expectName();
                    if (!n.ok()) return n.error();
                    e->name = n.value();
                    e->args.push_back(std::move(node));
                }
                node = std::move(e);
            } else if (isOp("[")) {
                advance();
                ExprPtr parts[3];
                bool isSlice = false;
                for (int i = 0; i < 3; ++i) {
                    if (!isOp(":") && !isOp("]")) {
                        auto e = parseExpression();
                        if (!e.ok()) return e;
                        parts[i] = std::move(e.value());
                    }
                    if (i < 2 && skipOp(":")) {
                        isSlice = true;
                        continue;
                    }
                    break;
                }
                WB_TRY(expectOp("]"));
                if (isSlice) {
                    auto e = make(Expr::Kind::Slice, line);
                    e->args.push_back(std::move(node));
                    for (auto& p : parts) e->args.push_back(std::move(p));
                    node = std::move(e);
                } else {
                    if (!parts[0]) return errorAt(line, "empty subscript");
                    auto e = make(Expr::Kind::Item, line);
                    e->args.push_back(std::move(node));
                    e->args.push_back(std::move(parts[0]));
                    node = std::move(e);
                }
            } else if (isOp("(")) {
                advance();
                auto e = make(Expr::Kind::Call, line);
                e->args.push_back(std::move(node));
                WB_TRY(parseCallArgs(*e));
                node = std::move(e);
            } else {
                break;
            }
        }
        return node;
    }

    Result<ExprPtr> parseFilterExpr(ExprPtr node) {
        while (true) {
            int line = cur().line;
            if (isOp("|") || isName("is")) WB_TRY(link(line));
            if (isOp("|")) {
                advance();
                std::string name;
                do {  // dotted filter names are not a thing in our subset, but keep the lexer honest
                    auto n = expectName();
                    if (!n.ok()) return n.error();
                    name += (name.empty() ? "" : ".") + n.value();
                } while (skipOp("."));
                auto e = make(Expr::Kind::Filter, line);
                e->name = name;
                e->args.push_back(std::move(node));
                if (skipOp("(")) WB_TRY(parseCallArgs(*e));
                node = std::move(e);
                auto post = parsePostfix(std::move(node));
                if (!post.ok()) return post;
                node = std::move(post.value());
            } else if (isName("is")) {
                advance();
                auto e = make(Expr::Kind::Test, line);
                e->negated = skipName("not");
                auto n = expectName();
                if (!n.ok()) return n.error();
                e->name = n.value();
                e->args.push_back(std::move(node));
                if (skipOp("(")) {
                    WB_TRY(parseCallArgs(*e));
                } else if ((cur().type == TokenType::Name || cur().type == TokenType::String ||
                            cur().type == TokenType::Int || cur().type == TokenType::Float || isOp("(") ||
                            isOp("[") || isOp("{")) &&
                           !isName("else") && !isName("or") && !isName("and") && !isName("if") &&
                           !isName("in") && !isName("not") && !isName("is")) {
                    // `x is divisibleby 3` / `x is sameas y`: one argument without parentheses.
                    auto p = parsePrimary();
                    if (!p.ok()) return p;
                    auto post = parsePostfix(std::move(p.value()));
                    if (!post.ok()) return post;
                    e->args.push_back(std::move(post.value()));
                }
                node = std::move(e);
            } else if (isOp("(")) {
                auto post = parsePostfix(std::move(node));
                if (!post.ok()) return post;
                node = std::move(post.value());
            } else {
                break;
            }
        }
        return node;
    }

    const std::vector<Token>& m_toks;
    size_t m_i = 0;
    int m_nesting = 0;
    int m_links = 0;
};

}  // namespace

Result<std::vector<Token>> tokenize(const std::string& source, const ChatTemplateOptions& options) {
    return Lexer(source, options).run();
}

Result<Body> parseTemplate(const std::vector<Token>& tokens) { return Parser(tokens).run(); }

}  // namespace wb::template_detail
