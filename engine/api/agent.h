// The phone agent (AutoGLM-Phone-9B's way of operating a phone, issue #15): the answer's action language parsed
// into typed actions, and (agent_session) the agent's loop over a screen source against a chat target.
// Qt-free; the CLI (`wb agent`) and the GUI include this header only, the implementation is in engine/agent/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wb {

/// The actions of the model's own agent (Open-AutoGLM), plus finish and a name the parser does not know.
enum class AgentActionKind {
    Tap, DoubleTap, LongPress, Swipe, Type, TypeName, Launch, Back, Home, Wait, TakeOver, Note, CallApi,
    Interact, Finish, Unknown
};
/// The name as the model writes it ("Double Tap", "Type_Name", "finish"); "unknown" for Unknown.
const char* agentActionName(AgentActionKind kind);

/// A point on the model's 0-999 grid, relative to the screenshot's width and height.
struct AgentPoint {
    int x = 0;
    int y = 0;
    bool operator==(const AgentPoint&) const = default;
};

struct AgentPixel {
    int x = 0;
    int y = 0;
    bool operator==(const AgentPixel&) const = default;
};
/// The reference agent's mapping: pixel x = int(x / 1000 * width) (same for y), clamped into the screen.
AgentPixel agentPointToPixel(AgentPoint p, int screenWidth, int screenHeight);

struct AgentAction {
    AgentActionKind kind = AgentActionKind::Unknown;
    std::string name;                  // as written: "Tap", "Long Press", "finish", or the unknown name
    std::optional<AgentPoint> point;   // element=[x,y]: Tap, Double Tap, Long Press
    std::optional<AgentPoint> start;   // Swipe
    std::optional<AgentPoint> end;     // Swipe
    std::string text;                  // Type, Type_Name
    std::string app;                   // Launch
    std::string message;               // finish; Tap's sensitive-step note; Take_over; Note
    std::string instruction;           // Call_API
    std::optional<double> durationSeconds;  // Wait: "3 seconds" or a bare number
    /// Every keyword argument as written (its Python literal source), known or not.
    std::map<std::string, std::string> args;
    std::string line;                  // the call itself, e.g. do(action="Tap", element=[500,300])
    /// A sensitive Tap (it carries a message: the reference asks the user before tapping).
    bool sensitive() const { return kind == AgentActionKind::Tap && !message.empty(); }
};

/// What the parser made of an answer. ok(): an action was read (an Unknown one included: `warning` says so).
struct AgentParse {
    bool ok() const { return error.empty(); }
    AgentAction action;
    std::string error;    // why nothing could be read; empty when ok
    std::string warning;  // e.g. an unknown action name, text after the call
    std::string raw;      // the text given, untouched
};

/// Reads one answer: `<think>…</think>` sections before it are skipped, `<answer>` may be there or not and its
/// `</answer>` may be missing (a stream cut at max_tokens); the call is do(action="NAME", key=value, …) or
/// finish(message="…"), values being Python literals (strings with escapes, ints, floats, lists, True/False/
/// None), read by a literal reader, never evaluated. Never throws.
AgentParse parseAgentAnswer(std::string_view text);

}  // namespace wb
