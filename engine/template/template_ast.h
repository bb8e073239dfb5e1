// Internal to engine/template: tokens and syntax tree of a parsed chat template.
#pragma once

#include "template/chat_template.h"
#include "template/template_value.h"

#include <memory>
#include <string>
#include <vector>

namespace wb::template_detail {

enum class TokenType { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
    TokenType type;
    std::string text;  // text, name, operator or decoded string literal
    int64_t intValue = 0;
    double floatValue = 0.0;
    int line = 1;
};

Result<std::vector<Token>> tokenize(const std::string& source, const ChatTemplateOptions& options);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class Kind {
        Literal,  // value
        Name,     // name
        Attr,     // args[0].name
        Item,     // args[0][args[1]]
        Slice,    // args[0][args[1]:args[2]:args[3]], any of 1..3 may be null
        Call,     // args[0](args[1..]); the last kwNames.size() arguments are keyword arguments
        Filter,   // args[0] | name(args[1..])
        Test,     // args[0] is [not] name(args[1..])
        Neg,      // -args[0]
        Pos,      // +args[0]
        Not,      // not args[0]
        Binary,   // args[0] <name> args[1]: + - * / // % ** ~ == != < > <= >= in notin
        And,
        Or,
        Cond,     // args[1] if args[0] else args[2] (args[2] may be null)
        ListLit,
        DictLit,  // keys at even indices, values at odd
    };
    Kind kind;
    int line = 1;
    std::string name;
    TemplateValue value;
    std::vector<ExprPtr> args;
    std::vector<std::string> kwNames;
    bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
    enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Do, Block };
    Kind kind;
    int line = 1;
    std::string text;                  // Text: the text; Set/SetBlock: attribute for `set ns.attr`; Macro: name
    ExprPtr expr;                      // Output, Set value, For iterable, Do
    ExprPtr filter;                    // For: `if` condition
    std::vector<std::string> targets;  // For/Set/SetBlock target names; Macro parameter names
    std::vector<ExprPtr> defaults;     // Macro parameter defaults (null where none)
    std::vector<std::pair<ExprPtr, Body>> branches;  // If: condition and body per if/elif
    Body body;                         // For/SetBlock/Macro/Block body
    Body elseBody;                     // If/For else
};

struct Program {
    std::string source;
    ChatTemplateOptions options;
    Body body;
};

Result<Body> parseTemplate(const std::vector<Token>& tokens);

}  // namespace wb::template_detail
