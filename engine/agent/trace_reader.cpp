// A run folder read back (api/agent.h, readAgentTrace): trace.json and the screenshots it names. The parse and
// the marks are recomputed from the raw answer and the screen size, so a reloaded run is drawn by the same code.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/agent_session.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace wb {

namespace {

std::string str(const json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}
double num(const json& j, const char* key, double def) {
    return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : def;
}

Result<std::shared_ptr<const std::vector<uint8_t>>> readBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return makeError("cannot read " + p.string());
    return std::make_shared<const std::vector<uint8_t>>(std::istreambuf_iterator<char>(in),
                                                        std::istreambuf_iterator<char>());
}

}  // namespace

Result<AgentRunRecord> readAgentTrace(const std::string& dir) {
    const fs::path root(dir);
    const fs::path tracePath = root / "trace.json";
    std::ifstream in(tracePath);
    if (!in) return makeError("no trace.json in " + dir);
    const json t = json::parse(in, nullptr, false);
    if (!t.is_object() || str(t, "format") != "workbench-agent-trace")
        return makeError(tracePath.string() + " is not a workbench agent trace");
    if (num(t, "version", 0) != 1)
        return makeError(tracePath.string() + ": trace version " + t.value("version", json()).dump() +
                         " is not one this build reads (1)");
    AgentRunRecord r;
    r.task = str(t, "task");
    r.systemPrompt = str(t, "system_prompt");
    r.target = str(t, "target");
    r.source = str(t, "source");
    r.status = str(t, "status");
    r.statusDetail = str(t, "status_detail");
    if (!t.contains("steps") || !t["steps"].is_array()) return makeError(tracePath.string() + ": no steps array");
    for (const json& js : t["steps"]) {
        if (!js.is_object()) return makeError(tracePath.string() + ": a step is not an object");
        AgentStep s;
        s.index = int(num(js, "step", double(r.steps.size() + 1)));
        const std::string where = tracePath.string() + ", step " + std::to_string(s.index);
        const json& screen = js.value("screen", json::object());
        s.screen.name = str(screen, "name");
        s.screen.width = int(num(screen, "width", 0));
        s.screen.height = int(num(screen, "height", 0));
        s.screen.currentApp = str(screen, "current_app");
        const std::string file = str(screen, "file");
        if (file.empty() || file.find("..") != std::string::npos) return makeError(where + ": no screenshot file");
        auto bytes = readBytes(root / file);
        if (!bytes) return makeError(where + ": " + bytes.error().message);
        s.screen.bytes = *bytes;
        if (js.contains("request") && js["request"].is_object() && js["request"].contains("messages"))
            for (const json& m : js["request"]["messages"]) {
                ChatMessage msg;
                msg.role = str(m, "role");
                if (m.contains("content") && m["content"].is_string()) {
                    msg.content = m["content"].get<std::string>();
                } else if (m.contains("content") && m["content"].is_array()) {
                    for (const json& p : m["content"]) {
                        if (str(p, "type") == "text") {
                            msg.parts.push_back(ContentPart::makeText(str(p, "text")));
                        } else {
                            const std::string f = str(p, "file");
                            // The step's own screenshot shares the bytes; other images are named by file.
                            ContentPart img = f == file
                                                  ? ContentPart{ContentPart::Kind::Image, {}, s.screen.bytes, {}}
                                                  : ContentPart::makeImageFile(f.empty() ? f : (root / f).string());
                            msg.parts.push_back(std::move(img));
                        }
                    }
                }
                s.request.push_back(std::move(msg));
            }
        const json& reply = js.value("reply", json::object());
        s.reply.reasoning = str(reply, "reasoning");
        s.reply.answer = str(reply, "answer");
        s.reply.finishReason = str(reply, "finish_reason");
        s.reply.error = str(reply, "error");
        const json& tm = js.value("timings", json::object());
        s.reply.ttftMs = num(tm, "ttft_ms", -1);
        s.reply.thinkEndMs = num(tm, "think_end_ms", -1);
        s.reply.totalMs = num(tm, "total_ms", 0);
        const json& usage = js.value("usage", json::object());
        s.reply.promptTokens = int64_t(num(usage, "prompt_tokens", 0));
        s.reply.completionTokens = int64_t(num(usage, "completion_tokens", 0));
        if (s.reply.error.empty() && s.reply.finishReason != "cancelled") {
            s.parse = parseAgentAnswer(agent::parserInput(s.reply));
        } else {
            s.parse.error =
                s.reply.error.empty() ? "no answer: the request was cancelled" : "no answer: " + s.reply.error;
        }
        s.marks = agentMarks(s.parse, s.screen.width, s.screen.height);
        s.executed = str(js, "executed");
        r.steps.push_back(std::move(s));
    }
    return r;
}

}  // namespace wb
