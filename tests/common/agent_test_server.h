// A scripted OpenAI-compatible server for the phone agent's tests: cpp-httplib on loopback, answering each POST
// /v1/chat/completions with the next scripted SSE stream (AutoGLM-Phone-9B's real answer format, written by the
// test) and keeping every request body; GET /v1/models lists "autoglm-phone-9b". It stands in for the model,
// which no machine here runs. An optional gate holds streams back (the model thinking on) until the test opens
// it, to catch a run mid-step.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace wbtest {

using nlohmann::json;

// One scripted answer: the SSE payloads, sent 15 ms apart (so the timings are ordered and non-zero).
using Script = std::vector<std::vector<json>>;

inline json chunk(const char* field, const std::string& text) {
    return {{"object", "chat.completion.chunk"}, {"choices", {{{"index", 0}, {"delta", {{field, text}}}}}}};
}
inline json finalChunk(int prompt, int completion) {
    return {{"object", "chat.completion.chunk"},
            {"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}},
            {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}}}};
}
// The answer streamed in pieces through `content`, <think> tags included (vLLM without a reasoning parser), the
// way the model's own agent receives it; tags are cut across chunks on purpose.
inline std::vector<json> contentStream(const std::string& text, int prompt, int completion) {
    std::vector<json> out;
    for (size_t i = 0; i < text.size(); i += 7) out.push_back(chunk("content", text.substr(i, 7)));
    out.push_back(finalChunk(prompt, completion));
    return out;
}
// Thinking in reasoning_content (a server with a reasoning parser, wb serve), then the answer in content.
inline std::vector<json> reasoningStream(const std::string& thinking, const std::string& answer, int prompt,
                                         int completion) {
    std::vector<json> out;
    for (size_t i = 0; i < thinking.size(); i += 9) out.push_back(chunk("reasoning_content", thinking.substr(i, 9)));
    out.push_back(chunk("content", answer));
    out.push_back(finalChunk(prompt, completion));
    return out;
}

class ScriptedServer {
public:
    explicit ScriptedServer(Script script) : m_script(std::move(script)) {
        m_server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(R"({"object":"list","data":[{"id":"autoglm-phone-9b","object":"model"}]})",
                            "application/json");
        });
        m_server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
            size_t n;
            {
                std::unique_lock lock(m_mutex);
                m_bodies.push_back(json::parse(req.body, nullptr, false));
                n = m_next++;
            }
            // A held request in "before headers" mode: nothing at all is sent until the gate opens (a server busy
            // with a long prefill, or hung), then the answer streams.
            while (m_holdHeaders && held(n)) std::this_thread::sleep_for(std::chrono::milliseconds(30));
            if (n >= m_script.size()) {
                res.status = 500;
                res.set_content(R"({"error":{"message":"script exhausted"}})", "application/json");
                return;
            }
            auto payloads = std::make_shared<std::vector<json>>(m_script[n]);
            res.set_chunked_content_provider("text/event-stream", [this, payloads, n](size_t, httplib::DataSink& sink) {
                // Held back by the gate: the model "thinks" on, a chunk every 30 ms, until the gate opens, the
                // client hangs up (a cancel) or the server stops.
                while (held(n)) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(30));
                    const std::string line = "data: " + chunk("reasoning_content", ".").dump() + "\n\n";
                    if (!sink.write(line.data(), line.size())) return false;
                }
                for (const json& p : *payloads) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(15));
                    const std::string line = "data: " + p.dump() + "\n\n";
                    if (!sink.write(line.data(), line.size())) return false;
                }
                const std::string done = "data: [DONE]\n\n";
                sink.write(done.data(), done.size());
                sink.done();
                return true;
            });
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
        // The socket is bound and listening already: a client that connects before the loop runs waits in the backlog.
    }
    ~ScriptedServer() {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        m_server.stop();
        m_thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/v1"; }
    std::vector<json> bodies() {
        std::lock_guard lock(m_mutex);
        return m_bodies;
    }
    /// Held requests send nothing, not even headers, until the gate opens (instead of streaming thinking).
    void setHoldHeaders(bool on) { m_holdHeaders = on; }
    /// Only the first `n` answers are sent whole; later ones stream thinking until the gate opens (n < 0: none
    /// waits).
    void setGate(int n) {
        std::lock_guard lock(m_mutex);
        m_gate = n;
    }

private:
    bool held(size_t n) {
        std::lock_guard lock(m_mutex);
        return !m_stopping && m_gate >= 0 && int(n) >= m_gate;
    }
    Script m_script;
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
    std::mutex m_mutex;
    std::vector<json> m_bodies;
    size_t m_next = 0;
    int m_gate = -1;
    std::atomic<bool> m_holdHeaders{false};
    bool m_stopping = false;
};

}  // namespace wbtest
