// The agent's loop over a screen source and a chat target (api/agent.h), in the conversation shape of the model's
// own agent (Open-AutoGLM's PhoneAgent): one system prompt, the task with the first screenshot, then one
// screenshot per turn, images of earlier turns stripped so the request stays one image long.
#include "agent/agent_session.h"

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace wb {

namespace agent {

namespace {

std::string screenInfo(const AgentScreen& screen) {
    return nlohmann::json{{"current_app", screen.currentApp.empty() ? "unknown" : screen.currentApp}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void stripTags(std::string& s, const char* tag) {
    const std::string t(tag);
    for (size_t p; (p = s.find(t)) != std::string::npos;) s.erase(p, t.size());
}

std::string trimmed(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

ChatMessage userTurn(const AgentScreen& screen, const std::string& task, bool first) {
    ChatMessage m;
    m.role = "user";
    const std::string text = first ? task + "\n\n" + screenInfo(screen) : "** Screen Info **\n\n" + screenInfo(screen);
    ContentPart image;
    image.kind = ContentPart::Kind::Image;
    image.image = screen.bytes;
    m.parts.push_back(std::move(image));
    m.parts.push_back(ContentPart::makeText(text));
    m.content = text;
    return m;
}

ChatMessage withoutImages(const ChatMessage& m) {
    ChatMessage out;
    out.role = m.role;
    if (m.parts.empty()) {
        out.content = m.content;
        return out;
    }
    for (const ContentPart& p : m.parts)
        if (p.kind == ContentPart::Kind::Text) out.content += p.text;
    return out;
}

ChatMessage assistantTurn(const AgentReply& reply) {
    return {"assistant", "<think>" + reply.reasoning + "</think><answer>" + reply.answer + "</answer>", {}};
}

void splitThinking(const std::string& raw, std::string& reasoning, std::string& answer) {
    const size_t open = raw.find("<think>");
    const size_t close = raw.rfind("</think>");
    if (close != std::string::npos) {
        reasoning += raw.substr(0, close);
        answer = raw.substr(close + 8);
    } else if (open != std::string::npos) {
        // Opened and never closed: an answer tag still ends it (a model that skips </think>).
        const size_t ans = raw.find("<answer>", open);
        reasoning += raw.substr(0, ans);
        answer = ans == std::string::npos ? std::string() : raw.substr(ans);
    } else {
        answer = raw;
    }
    stripTags(reasoning, "<think>");
    stripTags(reasoning, "</think>");
    stripTags(answer, "<answer>");
    stripTags(answer, "</answer>");
    reasoning = trimmed(reasoning);
    answer = trimmed(answer);
}

std::string parserInput(const AgentReply& reply) {
    if (!trimmed(reply.answer).empty()) return reply.answer;
    if (!reply.reasoning.empty()) return "<think>" + reply.reasoning;
    return {};
}

}  // namespace agent

const char* agentStopReasonName(AgentStopReason r) {
    switch (r) {
        case AgentStopReason::Running:
            return "running";
        case AgentStopReason::Finished:
            return "finished";
        case AgentStopReason::MaxSteps:
            return "max_steps";
        case AgentStopReason::ScreensExhausted:
            return "screens_exhausted";
        case AgentStopReason::ParseError:
            return "parse_error";
        case AgentStopReason::TargetError:
            return "target_error";
        case AgentStopReason::ScreenError:
            return "screen_error";
        case AgentStopReason::Cancelled:
            return "cancelled";
        case AgentStopReason::Declined:
            return "declined";
    }
    return "?";
}

const std::string& defaultAgentSystemPrompt() {
    static const std::string prompt = R"(Today's date is {date}.

You operate an Android phone for the user to complete the task they give you. Each turn you get a screenshot of
the phone's screen and a short note on the app in front. Look at the screenshot, think about what to do next, then
answer with exactly one action.

Answer format:
<think>your reasoning: what is on the screen, what you did before, what the next step is</think>
<answer>one action, on one line</answer>

Actions (values are Python literals: strings in double quotes, coordinates as [x, y] lists):
- do(action="Launch", app="NAME")  open an app by its name. Prefer this to looking for the app's icon.
- do(action="Tap", element=[x, y])  tap a point. Add message="WHY" when the tap commits something the user
  should confirm (a payment, a purchase, sending a message, deleting data): the user is asked first.
- do(action="Type", text="TEXT")  type into the focused input field (tap the field first; the old text is
  replaced).
- do(action="Type_Name", text="NAME")  type a person's name.
- do(action="Swipe", start=[x1, y1], end=[x2, y2])  swipe from one point to another (to scroll, swipe the other
  way from the direction you want the content to move).
- do(action="Long Press", element=[x, y])  press and hold a point.
- do(action="Double Tap", element=[x, y])  tap a point twice quickly.
- do(action="Back")  the system Back key.
- do(action="Home")  go to the home screen.
- do(action="Wait", duration="2 seconds")  wait for a page to load.
- do(action="Take_over", message="WHAT THE USER MUST DO")  hand over to the user when only they can act (a login,
  a verification code, a captcha).
- do(action="Note", message="TEXT")  remember something on the screen for later steps.
- do(action="Call_API", instruction="WHAT TO DO")  summarise or process what you noted.
- do(action="Interact")  ask the user to choose when several options fit the task.
- finish(message="RESULT")  the task is done (or cannot be done): say what happened.

Coordinates are relative to the screenshot: x and y each run from 0 (left, top) to 999 (right, bottom), whatever
the screen's size in pixels. Aim at the middle of the element.

Rules:
1. Check that the previous action worked before going on; if the screen did not change, try another way.
2. If a page has not loaded, wait (at most three times in a row), then go back and try again.
3. If the item you need is not visible, swipe to look for it before giving up.
4. Never make a payment or send anything on the user's behalf without a Tap that carries a message.
5. Answer with one action per turn, nothing after it.)";
    return prompt;
}

std::string fillAgentSystemPrompt(const std::string& prompt, const std::string& date) {
    std::string d = date;
    if (d.empty()) {
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        char buf[64];
        std::strftime(buf, sizeof buf, "%Y-%m-%d, %A", &tm);
        d = buf;
    }
    std::string out = prompt;
    for (size_t p; (p = out.find("{date}")) != std::string::npos;) out.replace(p, 6, d);
    return out;
}

AgentSession::AgentSession(AgentChatTarget& target, AgentScreenSource& source, AgentOptions options)
    : m_target(target), m_source(source), m_options(std::move(options)) {
    m_systemPrompt = fillAgentSystemPrompt(
        m_options.systemPrompt.empty() ? defaultAgentSystemPrompt() : m_options.systemPrompt, m_options.date);
    m_history.push_back({"system", m_systemPrompt, {}});
}

bool AgentSession::stop(AgentStopReason r, std::string detail) {
    m_stop = r;
    m_stopDetail = std::move(detail);
    return false;
}

bool AgentSession::step() {
    if (m_stop != AgentStopReason::Running) return false;
    if (m_options.cancel && m_options.cancel->load()) return stop(AgentStopReason::Cancelled, "stopped by the user");
    if (int(m_steps.size()) >= m_options.maxSteps)
        return stop(AgentStopReason::MaxSteps,
                    "the step limit (" + std::to_string(m_options.maxSteps) + ") was reached");
    if (!m_source.hasMore())
        return stop(AgentStopReason::ScreensExhausted, "no screenshot left in " + m_source.describe());
    auto screen = m_source.capture();
    if (!screen) return stop(AgentStopReason::ScreenError, screen.error().message);

    AgentStep s;
    s.index = int(m_steps.size()) + 1;
    s.screen = std::move(*screen);
    // Earlier turns lose their images; this one carries its screenshot.
    for (ChatMessage& m : m_history)
        if (m.role == "user" && m.hasImages()) m = agent::withoutImages(m);
    m_history.push_back(agent::userTurn(s.screen, m_options.task, m_steps.empty()));
    s.request = m_history;

    AgentRequest req;
    req.messages = m_history;
    req.temperature = m_options.temperature;
    req.topP = m_options.topP;
    req.frequencyPenalty = m_options.frequencyPenalty;
    req.maxTokens = m_options.maxTokens;
    s.reply = m_target.complete(req, m_options.cancel);
    if (!s.reply.error.empty() || s.reply.finishReason == "cancelled") {
        // No answer to parse: the step says why, and its screenshot gets the error's badge.
        s.parse.error = s.reply.error.empty() ? "no answer: the request was cancelled" : "no answer: " + s.reply.error;
        s.marks = agentMarks(s.parse, s.screen.width, s.screen.height);
        s.executed = "nothing (no answer)";
    }
    if (!s.reply.error.empty()) {
        m_steps.push_back(std::move(s));
        const bool cancelled = m_steps.back().reply.finishReason == "cancelled";
        return stop(cancelled ? AgentStopReason::Cancelled : AgentStopReason::TargetError, m_steps.back().reply.error);
    }
    if (s.reply.finishReason == "cancelled") {
        m_steps.push_back(std::move(s));
        return stop(AgentStopReason::Cancelled, "stopped by the user");
    }
    s.parse = parseAgentAnswer(agent::parserInput(s.reply));
    s.marks = agentMarks(s.parse, s.screen.width, s.screen.height);
    m_history.push_back(agent::assistantTurn(s.reply));
    if (!s.parse.ok()) {
        s.executed = "nothing (the answer does not parse)";
        const std::string err = s.parse.error;
        m_steps.push_back(std::move(s));
        if (m_options.onParseError == AgentParseErrorPolicy::Stop)
            return stop(AgentStopReason::ParseError, "step " + std::to_string(m_steps.size()) + ": " + err);
        return true;
    }
    if (s.parse.action.kind == AgentActionKind::Finish) {
        s.executed = "nothing (finish)";
        const std::string msg = s.parse.action.message;
        m_steps.push_back(std::move(s));
        return stop(AgentStopReason::Finished, msg);
    }
    // On a device that executes, the user decides first (the reference agent's confirmation and takeover).
    const AgentAction action = s.parse.action;  // a copy: s moves into m_steps below
    std::string asked;
    if (m_source.executes()) {
        const bool handOver = action.kind == AgentActionKind::TakeOver || action.kind == AgentActionKind::Interact;
        if (action.sensitive() || handOver) {
            const AgentAsk what = handOver ? AgentAsk::TakeOver : AgentAsk::ConfirmSensitive;
            s.executed = "waiting for the user";
            const bool goOn = m_options.ask && m_options.ask(what, s);
            if (m_options.cancel && m_options.cancel->load()) {
                s.executed = "nothing (stopped by the user)";
                m_steps.push_back(std::move(s));
                return stop(AgentStopReason::Cancelled, "stopped by the user");
            }
            if (!goOn && !handOver) {
                s.executed = "not tapped: the user declined";
                m_steps.push_back(std::move(s));
                return stop(AgentStopReason::Declined, "the user declined the sensitive tap: " + action.message);
            }
            if (!goOn) {
                s.executed = "nothing (the user did not take over)";
                m_steps.push_back(std::move(s));
                return stop(AgentStopReason::Cancelled,
                            std::string(agentActionName(action.kind)) + " not done by the user: " + action.message);
            }
            asked = handOver ? "the user took over and went on; " : "the user confirmed; ";
        }
    }
    auto done = m_source.perform(action, s.screen);
    s.executed = done ? asked + *done : "failed: " + done.error().message;
    m_steps.push_back(std::move(s));
    if (!done) return stop(AgentStopReason::ScreenError, done.error().message);
    return true;
}

void AgentSession::run(const std::function<void(const AgentStep&)>& onStep) {
    while (true) {
        const size_t before = m_steps.size();
        const bool more = step();
        if (onStep && m_steps.size() > before) onStep(m_steps.back());
        if (!more) break;
    }
}

}  // namespace wb
