// The agent's two kinds of model: the engine in this process and any OpenAI-compatible server. Both get the same
// messages and sampling, and both are timed here, client-side, from the moment the request is handed over: time
// to the first token (thinking or answer), to the end of the thinking, and to the end.
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/agent_session.h"
#include "api/image_format.h"
#include "serve/openai_protocol.h"
#include "serve/sse_client.h"

using nlohmann::json;

namespace wb {

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

class EngineAgentTarget : public AgentChatTarget {
public:
    EngineAgentTarget(Engine& engine, std::string label) : m_engine(engine), m_label(std::move(label)) {}
    std::string name() const override { return m_label.empty() ? "workbench engine (in process)" : m_label; }

    AgentReply complete(const AgentRequest& request, const std::atomic<bool>* cancel) override {
        Request r;
        r.messages = request.messages;
        r.sampling.temperature = request.temperature;
        r.sampling.topP = request.topP;
        r.sampling.frequencyPenalty = request.frequencyPenalty;
        r.maxTokens = request.maxTokens;
        r.enableThinking = true;
        AgentReply out;
        std::mutex mu;
        std::condition_variable cv;
        bool done = false, sawReasoning = false;
        Event last;
        const auto t0 = Clock::now();
        const RequestId id = m_engine.submit(std::move(r), [&](const Event& e) {
            std::lock_guard lock(mu);
            if (e.type == EventType::ReasoningDelta || e.type == EventType::TextDelta) {
                if (out.ttftMs < 0) out.ttftMs = msSince(t0);
                if (e.type == EventType::ReasoningDelta) {
                    sawReasoning = true;
                    out.reasoning += e.text;
                } else {
                    if (sawReasoning && out.thinkEndMs < 0 && !e.text.empty()) out.thinkEndMs = msSince(t0);
                    out.answer += e.text;
                }
                return;
            }
            last = e;
            done = true;
            cv.notify_all();
        });
        {
            std::unique_lock lock(mu);
            while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; }))
                if (cancel && cancel->load()) {
                    lock.unlock();
                    m_engine.cancel(id);
                    lock.lock();
                }
        }
        out.totalMs = msSince(t0);
        out.promptTokens = last.usage.promptTokens;
        out.completionTokens = last.usage.completionTokens;
        out.finishReason = last.type == EventType::Error ? "error" : stopReasonName(last.reason);
        if (last.type == EventType::Error) out.error = last.text;
        return out;
    }

private:
    Engine& m_engine;
    std::string m_label;
};

// 0.85f as 0.85 in the body, not 0.8500000238418579.
double tidy(float v) {
    return std::round(double(v) * 1e6) / 1e6;
}

json messagesJson(const std::vector<ChatMessage>& messages) {
    json arr = json::array();
    for (const ChatMessage& m : messages) {
        if (m.parts.empty()) {
            arr.push_back({{"role", m.role}, {"content", m.content}});
            continue;
        }
        json content = json::array();
        for (const ContentPart& p : m.parts) {
            if (p.kind == ContentPart::Kind::Text) {
                content.push_back({{"type", "text"}, {"text", p.text}});
            } else if (p.image) {
                const char* mime = detectImageFormat(*p.image) == ImageFormat::Jpeg ? "image/jpeg" : "image/png";
                content.push_back(
                    {{"type", "image_url"},
                     {"image_url", {{"url", std::string("data:") + mime + ";base64," + encodeBase64(*p.image)}}}});
            }
        }
        arr.push_back({{"role", m.role}, {"content", std::move(content)}});
    }
    return arr;
}

class OpenAiAgentTarget : public AgentChatTarget {
public:
    OpenAiAgentTarget(std::string baseUrl, std::string model, std::string apiKey, int timeoutSeconds)
        : m_baseUrl(std::move(baseUrl)),
          m_model(std::move(model)),
          m_apiKey(std::move(apiKey)),
          m_timeoutSeconds(timeoutSeconds) {
        http::splitBaseUrl(m_baseUrl, m_hostPort, m_prefix);
    }
    std::string name() const override { return m_model + " @ " + m_baseUrl; }

    AgentReply complete(const AgentRequest& request, const std::atomic<bool>* cancel) override {
        // The reference agent's request: the openai client, stream=True, its sampling.
        json body{{"model", m_model},
                  {"messages", messagesJson(request.messages)},
                  {"max_tokens", request.maxTokens},
                  {"temperature", tidy(request.temperature)},
                  {"top_p", tidy(request.topP)},
                  {"frequency_penalty", tidy(request.frequencyPenalty)},
                  {"stream", true},
                  {"stream_options", {{"include_usage", true}}}};
        AgentReply out;
        std::string content, reasoningField, streamError;
        bool sawDone = false, thinkOpen = false;
        const auto t0 = Clock::now();
        auto onData = [&](const std::string& payload) {
            http::StreamChunk chunk = http::readStreamChunk(payload);
            if (chunk.kind == http::StreamChunk::Kind::Done) sawDone = true;
            if (chunk.kind == http::StreamChunk::Kind::Error) streamError = chunk.error;
            if (chunk.kind != http::StreamChunk::Kind::Object) return;
            const json& j = chunk.object;
            if (j.contains("usage") && j["usage"].is_object()) {
                const json& u = j["usage"];
                if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
                    out.promptTokens = u["prompt_tokens"].get<int64_t>();
                if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
                    out.completionTokens = u["completion_tokens"].get<int64_t>();
            }
            if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
            const json& c = j["choices"][0];
            if (c.contains("finish_reason") && c["finish_reason"].is_string())
                out.finishReason = c["finish_reason"].get<std::string>();
            if (!c.contains("delta") || !c["delta"].is_object()) return;
            const json& d = c["delta"];
            std::string r, t;
            for (const char* k : {"reasoning_content", "reasoning"})
                if (d.contains(k) && d[k].is_string()) r += d[k].get<std::string>();
            if (d.contains("content") && d["content"].is_string()) t = d["content"].get<std::string>();
            if (r.empty() && t.empty()) return;
            if (out.ttftMs < 0) out.ttftMs = msSince(t0);
            reasoningField += r;
            if (!t.empty()) {
                const size_t before = content.size();
                content += t;
                if (content.find("<think>") != std::string::npos) thinkOpen = true;
                // The thinking ends at </think> in the content, or at the first content after reasoning_content.
                if (out.thinkEndMs < 0) {
                    const size_t close = content.find("</think>", before >= 8 ? before - 8 : 0);
                    if (close != std::string::npos || (!reasoningField.empty() && !thinkOpen))
                        out.thinkEndMs = msSince(t0);
                }
            }
        };
        const http::SseOutcome res =
            http::postStreaming(m_hostPort, m_prefix + "/chat/completions", m_apiKey,
                                body.dump(-1, ' ', false, json::error_handler_t::replace), onData, m_timeoutSeconds,
                                [cancel] { return !(cancel && cancel->load()); });
        out.totalMs = msSince(t0);
        out.reasoning = reasoningField;
        agent::splitThinking(content, out.reasoning, out.answer);
        if (cancel && cancel->load()) {
            out.finishReason = "cancelled";
        } else if (!res.transportError.empty()) {
            out.error = "request to " + m_baseUrl + " failed: " + res.transportError;
        } else if (res.status != 200) {
            out.error =
                "HTTP " + std::to_string(res.status) + " from " + m_baseUrl + ": " + res.errorBody.substr(0, 300);
        } else if (!streamError.empty()) {
            out.error = "server error in stream: " + streamError;
        } else if (out.ttftMs < 0) {
            out.error = sawDone ? "the stream carried no text" : "the stream ended without text or [DONE]";
        }
        if (!out.error.empty()) out.finishReason = "error";
        if (out.finishReason.empty()) out.finishReason = "stop";
        return out;
    }

private:
    std::string m_baseUrl, m_model, m_apiKey, m_hostPort, m_prefix;
    int m_timeoutSeconds;
};

}  // namespace

std::unique_ptr<AgentChatTarget> makeEngineAgentTarget(Engine& engine, std::string label) {
    return std::make_unique<EngineAgentTarget>(engine, std::move(label));
}

Result<std::unique_ptr<AgentChatTarget>> makeOpenAiAgentTarget(const std::string& baseUrl, const std::string& model,
                                                               const std::string& apiKey, int timeoutSeconds) {
    auto models = http::listModels(baseUrl, apiKey);
    if (!models) return models.error();
    std::string m = model;
    if (m.empty()) {
        if (models->empty()) return makeError(baseUrl + " lists no model; name one (--model-name)");
        m = models->front();
    }
    return std::unique_ptr<AgentChatTarget>(std::make_unique<OpenAiAgentTarget>(baseUrl, m, apiKey, timeoutSeconds));
}

}  // namespace wb
