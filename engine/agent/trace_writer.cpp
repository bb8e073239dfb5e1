// A run as a folder (api/agent.h, AgentTraceWriter): trace.json, screens/ as sent, annotated/ with the action
// drawn. The JSON names images by file, never inlines them.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/agent.h"
#include "api/image_format.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace wb {

namespace {

std::string stepFile(const char* folder, const AgentStep& s) {
    char buf[64];
    const bool jpeg = s.screen.bytes && detectImageFormat(*s.screen.bytes) == ImageFormat::Jpeg;
    std::snprintf(buf, sizeof buf, "%s/step_%03d.%s", folder, s.index, jpeg ? "jpg" : "png");
    return buf;
}

std::string annotatedFile(const AgentStep& s) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "annotated/step_%03d.png", s.index);
    return buf;
}

json pointJson(const std::optional<AgentPoint>& p) {
    return p ? json::array({p->x, p->y}) : json(nullptr);
}

json msOrNull(double ms) {
    return ms < 0 ? json(nullptr) : json(ms);
}

json actionJson(const AgentParse& p, const AgentScreen& screen) {
    json j;
    j["ok"] = p.ok();
    j["raw"] = p.raw;
    if (!p.ok()) {
        j["error"] = p.error;
        return j;
    }
    const AgentAction& a = p.action;
    j["name"] = a.name;
    j["kind"] = agentActionName(a.kind);
    j["known"] = a.kind != AgentActionKind::Unknown;
    j["line"] = a.line;
    if (!p.warning.empty()) j["warning"] = p.warning;
    if (a.point) {
        j["element"] = pointJson(a.point);
        const AgentPixel px = agentPointToPixel(*a.point, screen.width, screen.height);
        j["element_px"] = {px.x, px.y};
    }
    if (a.start) {
        j["start"] = pointJson(a.start);
        const AgentPixel px = agentPointToPixel(*a.start, screen.width, screen.height);
        j["start_px"] = {px.x, px.y};
    }
    if (a.end) {
        j["end"] = pointJson(a.end);
        const AgentPixel px = agentPointToPixel(*a.end, screen.width, screen.height);
        j["end_px"] = {px.x, px.y};
    }
    if (!a.text.empty()) j["text"] = a.text;
    if (!a.app.empty()) j["app"] = a.app;
    if (!a.message.empty()) j["message"] = a.message;
    if (!a.instruction.empty()) j["instruction"] = a.instruction;
    if (a.durationSeconds) j["duration_s"] = *a.durationSeconds;
    if (a.sensitive()) j["sensitive"] = true;
    j["args"] = a.args;
    return j;
}

json markJson(const AgentMark& m) {
    json j{{"shape", agentMarkShapeName(m.shape)}, {"color", m.color}, {"label", m.label}};
    switch (m.shape) {
        case AgentMark::Shape::Ring:
            j.update({{"x", m.x}, {"y", m.y}, {"radius", m.radius}, {"thickness", m.thickness}});
            break;
        case AgentMark::Shape::Disc:
            j.update({{"x", m.x}, {"y", m.y}, {"radius", m.radius}});
            break;
        case AgentMark::Shape::Arrow:
            j.update({{"x1", m.x}, {"y1", m.y}, {"x2", m.x2}, {"y2", m.y2}, {"thickness", m.thickness}});
            break;
        case AgentMark::Shape::Badge:
            j.update({{"x", m.x}, {"y", m.y}, {"width", m.width}, {"height", m.height}});
            break;
    }
    return j;
}

json messagesJson(const std::vector<ChatMessage>& messages, const AgentStep& step) {
    json arr = json::array();
    for (const ChatMessage& m : messages) {
        if (m.parts.empty()) {
            arr.push_back({{"role", m.role}, {"content", m.content}});
            continue;
        }
        json parts = json::array();
        for (const ContentPart& p : m.parts) {
            if (p.kind == ContentPart::Kind::Text) {
                parts.push_back({{"type", "text"}, {"text", p.text}});
            } else {
                json img{{"type", "image"}};
                if (p.image && p.image == step.screen.bytes)
                    img["file"] = stepFile("screens", step);
                else
                    img["file"] = nullptr;  // not this step's screenshot (earlier turns' images are stripped)
                parts.push_back(img);
            }
        }
        arr.push_back({{"role", m.role}, {"content", std::move(parts)}});
    }
    return arr;
}

json stepJson(const AgentStep& s) {
    json j;
    j["step"] = s.index;
    j["screen"] = {{"name", s.screen.name},
                   {"file", stepFile("screens", s)},
                   {"width", s.screen.width},
                   {"height", s.screen.height}};
    if (!s.screen.currentApp.empty()) j["screen"]["current_app"] = s.screen.currentApp;
    j["annotated"] = annotatedFile(s);
    j["request"] = {{"messages", messagesJson(s.request, s)}};
    j["reply"] = {
        {"reasoning", s.reply.reasoning}, {"answer", s.reply.answer}, {"finish_reason", s.reply.finishReason}};
    if (!s.reply.error.empty()) j["reply"]["error"] = s.reply.error;
    j["action"] = actionJson(s.parse, s.screen);
    j["marks"] = json::array();
    for (const AgentMark& m : s.marks) j["marks"].push_back(markJson(m));
    j["executed"] = s.executed;
    j["timings"] = {{"ttft_ms", msOrNull(s.reply.ttftMs)},
                    {"think_end_ms", msOrNull(s.reply.thinkEndMs)},
                    {"total_ms", s.reply.totalMs}};
    j["usage"] = {{"prompt_tokens", s.reply.promptTokens}, {"completion_tokens", s.reply.completionTokens}};
    return j;
}

Result<void> writeFile(const fs::path& p, const void* data, size_t n) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    if (!out) return makeError("cannot write " + p.string());
    out.write(static_cast<const char*>(data), std::streamsize(n));
    if (!out) return makeError("cannot write " + p.string());
    return {};
}

}  // namespace

std::string agentStepJson(const AgentStep& step) {
    return stepJson(step).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<void> AgentTraceWriter::write(const AgentSession& session) {
    std::error_code ec;
    const fs::path root(m_dir);
    fs::create_directories(root / "screens", ec);
    fs::create_directories(root / "annotated", ec);
    if (ec || !fs::is_directory(root / "annotated")) return makeError("cannot create the run folder " + m_dir);
    const auto& steps = session.steps();
    for (; m_written < steps.size(); ++m_written) {
        const AgentStep& s = steps[m_written];
        if (!s.screen.bytes) continue;
        WB_TRY(writeFile(root / stepFile("screens", s), s.screen.bytes->data(), s.screen.bytes->size()));
        auto png = annotateAgentScreenshot(*s.screen.bytes, s.marks);
        if (!png) return makeError("step " + std::to_string(s.index) + ": " + png.error().message);
        WB_TRY(writeFile(root / annotatedFile(s), png->data(), png->size()));
    }
    json t;
    t["format"] = "workbench-agent-trace";
    t["version"] = 1;
    t["task"] = session.options().task;
    t["system_prompt"] = session.systemPrompt();
    t["target"] = session.targetName();
    t["source"] = session.sourceName();
    const AgentOptions& o = session.options();
    auto tidy = [](float v) { return std::round(double(v) * 1e6) / 1e6; };
    t["sampling"] = {{"temperature", tidy(o.temperature)},
                     {"top_p", tidy(o.topP)},
                     {"frequency_penalty", tidy(o.frequencyPenalty)},
                     {"max_tokens", o.maxTokens}};
    t["max_steps"] = o.maxSteps;
    t["on_parse_error"] = o.onParseError == AgentParseErrorPolicy::Stop ? "stop" : "continue";
    t["status"] = agentStopReasonName(session.stopReason());
    t["status_detail"] = session.stopDetail();
    t["steps"] = json::array();
    for (const AgentStep& s : steps) t["steps"].push_back(stepJson(s));
    const std::string text = t.dump(2, ' ', false, json::error_handler_t::replace);
    // Written beside and renamed, so a reader never sees half a trace.
    const fs::path tmp = root / "trace.json.tmp";
    WB_TRY(writeFile(tmp, text.data(), text.size()));
    fs::rename(tmp, root / "trace.json", ec);
    if (ec) return makeError("cannot write " + (root / "trace.json").string() + ": " + ec.message());
    return {};
}

}  // namespace wb
