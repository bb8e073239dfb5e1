// Internals of the agent's loop (api/agent.h has the public types): the message shapes of the model's own
// agent and the split of a reply's text into thinking and answer.
#pragma once

#include <string>
#include <vector>

#include "api/agent.h"

namespace wb::agent {

/// The user turn: the screenshot, then the text. The first turn's text is the task and the screen info (a JSON
/// object {"current_app": ...}), later ones "** Screen Info **" and the screen info, as the reference agent sends.
ChatMessage userTurn(const AgentScreen& screen, const std::string& task, bool first);
/// The same turn with its images removed (what earlier turns look like in later requests).
ChatMessage withoutImages(const ChatMessage& m);
/// The model's turn as the reference agent keeps it: <think>R</think><answer>A</answer>.
ChatMessage assistantTurn(const AgentReply& reply);

/// Splits raw streamed text: <think>…</think> is thinking (a text that opens <think> and never closes it is all
/// thinking; a </think> with no <think> before it ends a thinking the template opened), the rest the answer with
/// its <answer> tags dropped.
void splitThinking(const std::string& raw, std::string& reasoning, std::string& answer);

/// The text the parser gets for a reply: the answer, or (no answer at all) the unfinished thinking, so that the
/// parse error says the thinking never ended.
std::string parserInput(const AgentReply& reply);

}  // namespace wb::agent
