// The phone agent (AutoGLM-Phone-9B's way of operating a phone, issue #15): the answer's action language parsed
// into typed actions, and (agent_session) the agent's loop over a screen source against a chat target.
// Qt-free; the CLI (`wb agent`) and the GUI include this header only, the implementation is in engine/agent/.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/engine.h"
#include "core/result.h"

namespace wb {

/// The actions of the model's own agent (Open-AutoGLM), plus finish and a name the parser does not know.
enum class AgentActionKind {
    Tap,
    DoubleTap,
    LongPress,
    Swipe,
    Type,
    TypeName,
    Launch,
    Back,
    Home,
    Wait,
    TakeOver,
    Note,
    CallApi,
    Interact,
    Finish,
    Unknown
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
    std::string name;                       // as written: "Tap", "Long Press", "finish", or the unknown name
    std::optional<AgentPoint> point;        // element=[x,y]: Tap, Double Tap, Long Press
    std::optional<AgentPoint> start;        // Swipe
    std::optional<AgentPoint> end;          // Swipe
    std::string text;                       // Type, Type_Name
    std::string app;                        // Launch
    std::string message;                    // finish; Tap's sensitive-step note; Take_over; Note
    std::string instruction;                // Call_API
    std::optional<double> durationSeconds;  // Wait: "3 seconds" or a bare number
    /// Every keyword argument as written (its Python literal source), known or not.
    std::map<std::string, std::string> args;
    std::string line;  // the call itself, e.g. do(action="Tap", element=[500,300])
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

// ---- Where an action lands, drawn ----

/// One mark of an action on its screenshot, in pixels: what the exported PNGs show, and what a view can draw.
struct AgentMark {
    enum class Shape { Ring, Disc, Arrow, Badge };
    Shape shape = Shape::Ring;
    int x = 0, y = 0;           // Ring / Disc: centre; Arrow: start; Badge: top-left corner
    int x2 = 0, y2 = 0;         // Arrow: the end (the head)
    int radius = 0;             // Ring (outer radius), Disc
    int thickness = 0;          // Ring, Arrow
    int width = 0, height = 0;  // Badge
    std::array<uint8_t, 3> color{};
    std::string label;  // the action's name (a badge's meaning; a view writes it, the PNG has no font)
};
const char* agentMarkShapeName(AgentMark::Shape s);
/// The marks of a parse on a screen of this size: tap a ring at the point; double tap two rings; long press a
/// ring with a disc inside; swipe an arrow from start to end; every other action (and a parse error) a badge at
/// the top, coloured by kind.
std::vector<AgentMark> agentMarks(const AgentParse& parse, int screenWidth, int screenHeight);
/// Decodes a PNG/JPEG screenshot, draws the marks (a small raster routine, no Qt), encodes PNG.
Result<std::vector<uint8_t>> annotateAgentScreenshot(const std::vector<uint8_t>& encoded,
                                                     const std::vector<AgentMark>& marks);

// ---- The agent's loop ----

/// One screenshot of the phone: PNG (or JPEG) bytes, its size, and the app in front when the source knows it.
struct AgentScreen {
    std::shared_ptr<const std::vector<uint8_t>> bytes;
    int width = 0, height = 0;
    std::string name;        // the file's name (replay), or "screencap N"
    std::string currentApp;  // empty: unknown
};

/// Where screenshots come from and where actions go. A replay (a folder of screenshots) only draws the actions;
/// a live phone (adb) carries them out once the user arms it.
class AgentScreenSource {
public:
    virtual ~AgentScreenSource() = default;
    virtual std::string describe() const = 0;
    /// The screen now. A replay hands out its next file; when none is left, hasMore() is false.
    virtual Result<AgentScreen> capture() = 0;
    virtual bool hasMore() const { return true; }
    /// Carries out an action on the device and says what was sent; a replay sends nothing ("not executed").
    virtual Result<std::string> perform(const AgentAction& action, const AgentScreen& screen) = 0;
    /// Whether perform() sends actions to a device now (an armed phone): then a sensitive tap and Take_over ask
    /// the user first (AgentOptions::ask). A replay, or a phone not armed, never does.
    virtual bool executes() const { return false; }
};
/// The PNG/JPEG files of a folder in name order (byte order of the names: zero-pad numbers), one per step; each
/// next screenshot stands for the phone's answer to the previous action. An empty or missing folder is an error.
Result<std::unique_ptr<AgentScreenSource>> makeReplayScreenSource(const std::string& dir);

/// A live Android phone through Android's `adb` (Debian's adb package, or the SDK's platform tools).
struct AgentAdbOptions {
    std::string serial;        // `-s SERIAL` on every command; empty: the one device attached
    std::string adb = "adb";   // the executable: a path, or a name looked up on PATH
    /// Armed (true): actions are sent to the phone; false or null (the default): drawn and recorded, not sent.
    /// Read at every step, so a view may arm or disarm a running session from any thread.
    std::shared_ptr<std::atomic<bool>> execute;
    /// Launch's app name -> package table (names match without regard to case); empty: defaultAgentApps().
    std::map<std::string, std::string> apps;
    int commandTimeoutMs = 20000;               // one adb command; a screenshot over USB takes about a second
    const std::atomic<bool>* cancel = nullptr;  // cuts a Wait short
};
/// The built-in app table (Settings, Chrome, WeChat 微信, ...), the names the model writes in Launch.
const std::map<std::string, std::string>& defaultAgentApps();
/// Checks that adb runs and the device is attached and authorized (`adb devices`), and reads its screen size
/// (`adb shell wm size`); each problem (adb not on PATH, no device, several without a serial, unauthorized,
/// offline) is an error that says what to do. Blocks for the adb commands: call it off a GUI thread.
/// Screenshots: `adb exec-out screencap -p` (anything but a PNG is an error), the app in front from `adb shell
/// dumpsys window` (its name in the app table, else its package). Actions: `adb shell input tap X Y`,
/// `input swipe X1 Y1 X2 Y2 MS` (Long Press: a swipe at one point over 3 s; Double Tap: two taps),
/// `input keyevent 4` (Back) / `3` (Home), `input text` (adbInputTextArgument; a newline is keyevent 66),
/// Launch through `monkey -p PKG -c android.intent.category.LAUNCHER 1`, Wait sleeps.
Result<std::unique_ptr<AgentScreenSource>> makeAdbScreenSource(AgentAdbOptions options);
/// The argument of `adb shell input text` for one line of text: spaces as %s, the whole single-quoted for the
/// device's shell (a ' as '\''). Non-ASCII text is an error (`input text` types ASCII only).
Result<std::string> adbInputTextArgument(const std::string& line);

/// What a run asks the user before an action is carried out on a device (AgentOptions::ask).
enum class AgentAsk {
    ConfirmSensitive,  // a Tap with a message (a payment, sending something): tap it?
    TakeOver           // Take_over / Interact: the user acts on the phone, then says to go on
};

/// One request of the agent: the messages and the agent's sampling (the reference agent's values by default).
struct AgentRequest {
    std::vector<ChatMessage> messages;
    float temperature = 0.0f;
    float topP = 0.85f;
    float frequencyPenalty = 0.2f;
    int64_t maxTokens = 3000;
};

/// What a model answered, split, timed (client-side, from the request's start) and counted.
struct AgentReply {
    std::string reasoning;     // the thinking
    std::string answer;        // after the thinking, <answer> tags dropped
    std::string error;         // the request failed (transport, HTTP status, engine error); empty otherwise
    std::string finishReason;  // stop | length | cancelled | error
    double ttftMs = -1;        // first token (thinking or answer)
    double thinkEndMs = -1;    // the thinking ended (first answer text after it); -1: no thinking seen
    double totalMs = 0;
    int64_t promptTokens = 0;
    int64_t completionTokens = 0;
};

/// The model the agent asks. Implementations block in complete() and may be called from any one thread at a time.
class AgentChatTarget {
public:
    virtual ~AgentChatTarget() = default;
    virtual std::string name() const = 0;
    /// `cancel` (optional): set from any thread to cut the request short (finishReason "cancelled").
    virtual AgentReply complete(const AgentRequest& request, const std::atomic<bool>* cancel) = 0;
};
/// The engine in this process (its reasoning arrives as ReasoningDelta events). The engine must outlive it.
std::unique_ptr<AgentChatTarget> makeEngineAgentTarget(Engine& engine, std::string label = {});
/// Any OpenAI-compatible server (vLLM serving autoglm-phone-9b, wb serve...): streamed /chat/completions, images
/// as base64 data URLs; reasoning from reasoning_content or from <think> tags in the content. Checks GET /models;
/// an empty `model` takes the first one listed.
Result<std::unique_ptr<AgentChatTarget>> makeOpenAiAgentTarget(const std::string& baseUrl, const std::string& model,
                                                               const std::string& apiKey = {},
                                                               int timeoutSeconds = 600);

/// The system prompt preset: the action language of the model's agent, in the workbench's own words, with
/// "{date}" where the date goes.
const std::string& defaultAgentSystemPrompt();
/// "{date}" replaced by `date`, or by today's date ("2026-12-05, Saturday") when `date` is empty.
std::string fillAgentSystemPrompt(const std::string& prompt, const std::string& date = {});

enum class AgentParseErrorPolicy { Stop, Continue };

struct AgentStep;

struct AgentOptions {
    std::string task;
    std::string systemPrompt;  // empty: defaultAgentSystemPrompt(); "{date}" is filled in either way
    std::string date;          // empty: today
    int maxSteps = 20;
    float temperature = 0.0f;
    float topP = 0.85f;
    float frequencyPenalty = 0.2f;
    int64_t maxTokens = 3000;
    /// An answer that does not parse ends the run (Stop), or is recorded and the next screen is asked (Continue).
    AgentParseErrorPolicy onParseError = AgentParseErrorPolicy::Stop;
    const std::atomic<bool>* cancel = nullptr;  // set from any thread: the run stops after the request in flight
    /// Asked on the loop's thread, only when the source executes (an armed phone): a sensitive Tap (true taps,
    /// false ends the run as "declined") and Take_over / Interact (blocks while the user acts; true goes on,
    /// false ends the run as cancelled). Unset: sensitive taps are declined and Take_over ends the run. `pending`
    /// is the step being decided (its screenshot, answer, parse and marks: what a view shows with the question);
    /// its action is pending.parse.action.
    std::function<bool(AgentAsk, const AgentStep& pending)> ask;
};

struct AgentStep {
    int index = 0;  // from 1
    AgentScreen screen;
    std::vector<ChatMessage> request;  // the messages sent (earlier turns' images already stripped)
    AgentReply reply;
    AgentParse parse;
    std::vector<AgentMark> marks;
    std::string executed;  // what the source did with the action ("not executed (replay)", an adb line...)
};

enum class AgentStopReason {
    Running,
    Finished,
    MaxSteps,
    ScreensExhausted,
    ParseError,
    TargetError,
    ScreenError,
    Cancelled,
    Declined  // the user declined a sensitive tap
};
const char* agentStopReasonName(AgentStopReason r);

/// The loop: each step takes a screenshot, sends the conversation (system prompt; the task with the first
/// screenshot; then one screenshot + screen info per turn, earlier images stripped, the model's turns as
/// <think>…</think><answer>…</answer>), parses the answer, lets the source perform it. Not thread-safe: drive
/// it from one thread (cancel through AgentOptions::cancel).
class AgentSession {
public:
    AgentSession(AgentChatTarget& target, AgentScreenSource& source, AgentOptions options);
    /// Runs one step; false when the run is over (then stopReason() and stopDetail() say why).
    bool step();
    /// Steps until the run is over; onStep after each.
    void run(const std::function<void(const AgentStep&)>& onStep = {});
    const std::vector<AgentStep>& steps() const { return m_steps; }
    AgentStopReason stopReason() const { return m_stop; }
    const std::string& stopDetail() const { return m_stopDetail; }
    const std::string& systemPrompt() const { return m_systemPrompt; }
    const AgentOptions& options() const { return m_options; }
    std::string targetName() const { return m_target.name(); }
    std::string sourceName() const { return m_source.describe(); }

private:
    bool stop(AgentStopReason r, std::string detail);
    AgentChatTarget& m_target;
    AgentScreenSource& m_source;
    AgentOptions m_options;
    std::string m_systemPrompt;
    std::vector<ChatMessage> m_history;  // system, then user/assistant turns
    std::vector<AgentStep> m_steps;
    AgentStopReason m_stop = AgentStopReason::Running;
    std::string m_stopDetail;
};

/// A run as a folder: trace.json (the task, the system prompt, every request's messages with images as file
/// references, the answers, parsed actions, marks and timings), screens/step_NNN.png (as sent) and
/// annotated/step_NNN.png (the action drawn). write() may be called after each step: it adds the new steps'
/// images and rewrites trace.json, so an interrupted run leaves a readable trace.
class AgentTraceWriter {
public:
    explicit AgentTraceWriter(std::string dir) : m_dir(std::move(dir)) {}
    Result<void> write(const AgentSession& session);
    const std::string& dir() const { return m_dir; }

private:
    std::string m_dir;
    size_t m_written = 0;
};
/// One step as a JSON object (text), the shape trace.json's "steps" entries have (`wb agent --json` prints these).
std::string agentStepJson(const AgentStep& step);

/// A run read back from its folder (what a view shows when it reloads an exported run).
struct AgentRunRecord {
    std::string task, systemPrompt, target, source;
    std::string status, statusDetail;  // agentStopReasonName() values, and finish's message or the error
    /// Each step as written: the screenshot's bytes from screens/, the request's messages (image parts name their
    /// file: ContentPart::imagePath), the reply, the parse (re-read from the raw answer, so it is what this build's
    /// parser makes of it) and the marks recomputed from it.
    std::vector<AgentStep> steps;
};
/// Reads RUN_DIR/trace.json and the screenshots it names; a missing or damaged file is an error naming it.
Result<AgentRunRecord> readAgentTrace(const std::string& dir);

}  // namespace wb
