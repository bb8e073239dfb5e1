#include "api/http_target.h"

#include <httplib.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/image_format.h"
#include "serve/openai_protocol.h"
#include "serve/sse_client.h"
#include <sstream>

using nlohmann::json;

namespace wb {

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

httplib::Headers headersFor(const std::string& apiKey) {
    httplib::Headers h{{"Accept", "text/event-stream, application/json"}};
    if (!apiKey.empty()) h.emplace("Authorization", "Bearer " + apiKey);
    return h;
}

std::string wordSalad(const std::vector<int32_t>& ids) {
    static const char* words[] = {"the", "river", "light", "stone", "quiet", "market", "window", "yellow", "garden",
                                  "number", "after", "people", "machine", "small", "north", "paper", "music",
                                  "winter", "table", "simple", "bridge", "silver", "open", "story", "field",
                                  "cloud", "engine", "morning", "letter", "green", "house", "travel"};
    std::string s;
    for (int32_t id : ids) {
        if (!s.empty()) s += ' ';
        s += words[uint32_t(id) % (sizeof words / sizeof *words)];
    }
    return s;
}

}  // namespace

Result<std::unique_ptr<HttpTarget>> HttpTarget::create(HttpTargetOptions options) {
    std::unique_ptr<HttpTarget> t(new HttpTarget(std::move(options)));
    if (!http::splitBaseUrl(t->m_options.baseUrl, t->m_hostPort, t->m_prefix))
        return makeError("not an http(s) base URL: " + t->m_options.baseUrl + " (e.g. http://127.0.0.1:8000/v1)");
    auto models = http::listModels(t->m_options.baseUrl, t->m_options.apiKey);
    if (!models) return models.error();
    t->m_models = std::move(*models);
    if (t->m_options.modelName.empty()) {
        if (t->m_models.empty()) return makeError("the server lists no model; give --model-name");
        t->m_options.modelName = t->m_models.front();
    }
    return t;
}

HttpTarget::~HttpTarget() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(m_mutex);
        threads.swap(m_threads);
    }
    for (auto& t : threads) t.join();
}

std::string HttpTarget::name() const { return m_options.modelName + " @ " + m_options.baseUrl; }

void HttpTarget::start(const BenchRequest& request, std::function<void(const Event&)> onEvent) {
    std::lock_guard lock(m_mutex);
    m_threads.emplace_back(&HttpTarget::runOne, this, request, std::move(onEvent), json(nullptr));
}

void HttpTarget::startChat(json messages, int64_t maxTokens, std::function<void(const Event&)> onEvent) {
    BenchRequest b;
    b.maxTokens = maxTokens;
    std::lock_guard lock(m_mutex);
    m_threads.emplace_back(&HttpTarget::runOne, this, std::move(b), std::move(onEvent), std::move(messages));
}

void HttpTarget::runOne(BenchRequest request, std::function<void(const Event&)> onEvent, json messages) {
    const HttpTargetOptions& o = m_options;
    const bool ownChat = !messages.is_null();
    const std::vector<int32_t>& prompt = request.promptTokens;
    const int64_t maxTokens = request.maxTokens;
    json body{{"model", o.modelName},
              {"max_tokens", maxTokens},
              {"temperature", 0},
              {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
    if (o.ignoreEos) body["ignore_eos"] = true;
    if (ownChat) {
        body["messages"] = std::move(messages);
    } else if (o.chat && !request.images.empty()) {
        // The images as data URLs, then the prompt: the layout of the model's own examples and of the phone agent.
        json content = json::array();
        for (const ImageBytes& img : request.images) {
            const char* mime = detectImageFormat(*img) == ImageFormat::Jpeg ? "image/jpeg" : "image/png";
            content.push_back({{"type", "image_url"},
                               {"image_url", {{"url", std::string("data:") + mime + ";base64," + encodeBase64(*img)}}}});
        }
        content.push_back({{"type", "text"}, {"text", o.detokenize ? o.detokenize(prompt) : wordSalad(prompt)}});
        body["messages"] = json::array({{{"role", "user"}, {"content", std::move(content)}}});
    } else if (o.chat) {
        body["messages"] = json::array({{{"role", "user"}, {"content", o.detokenize ? o.detokenize(prompt)
                                                                                     : wordSalad(prompt)}}});
    } else if (o.detokenize) {
        body["prompt"] = o.detokenize(prompt);
    } else if (o.sendTokenIds) {
        body["prompt"] = prompt;
    } else {
        body["prompt"] = wordSalad(prompt);
    }

    Event fin;
    fin.type = EventType::Finished;
    fin.reason = StopReason::Stop;
    // The server's own count (usage.prompt_tokens) or none: the ids sent are not what a chat request costs (its
    // template, its images), and a text prompt's count is the server tokenizer's business.
    fin.usage.promptTokens = -1;
    int64_t chunks = 0, reportedTokens = -1;
    std::string streamError;
    bool sawDone = false;
    Clock::time_point last;
    const auto t0 = Clock::now();
    fin.timings.ttftMs = -1;

    auto onData = [&](const std::string& payload) {
        http::StreamChunk chunk = http::readStreamChunk(payload);
        if (chunk.kind == http::StreamChunk::Kind::Done) sawDone = true;
        if (chunk.kind == http::StreamChunk::Kind::Error) streamError = chunk.error;
        if (chunk.kind != http::StreamChunk::Kind::Object) return;
        const json& j = chunk.object;
        if (j.contains("usage") && j["usage"].is_object()) {
            reportedTokens = j["usage"].value("completion_tokens", int64_t(-1));
            if (j["usage"].contains("prompt_tokens") && j["usage"]["prompt_tokens"].is_number_integer())
                fin.usage.promptTokens = j["usage"]["prompt_tokens"].get<int64_t>();
        }
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
        const json& c = j["choices"][0];
        std::string text;
        if (c.contains("text") && c["text"].is_string()) text = c["text"];
        if (c.contains("delta") && c["delta"].is_object()) {
            const json& d = c["delta"];
            for (const char* k : {"content", "reasoning_content", "reasoning"})
                if (d.contains(k) && d[k].is_string()) text += d[k].get<std::string>();
        }
        if (c.contains("finish_reason") && c["finish_reason"] == "length") fin.reason = StopReason::Length;
        if (text.empty()) return;
        const auto now = Clock::now();
        if (chunks == 0)
            fin.timings.ttftMs = msSince(t0, now);
        else
            fin.timings.interTokenMs.push_back(msSince(last, now));
        last = now;
        ++chunks;
    };

    // A detokenized prompt of random ids can hold bytes that are not UTF-8 (a byte-level BPE's partial characters):
    // they go as U+FFFD rather than throwing out of the request thread and taking the process down. (The bench's
    // text prompts are printable ASCII, RoundTripPrompts; a caller's own ids may not be.)
    const http::SseOutcome res = http::postStreaming(m_hostPort, m_prefix + (o.chat || ownChat ? "/chat/completions" : "/completions"),
                                                     o.apiKey, body.dump(-1, ' ', false, json::error_handler_t::replace),
                                                     onData, o.timeoutSeconds);
    const int status = res.status;
    const std::string& errorBody = res.errorBody;
    fin.timings.e2eMs = msSince(t0, Clock::now());
    if (!res.transportError.empty()) {
        fin.type = EventType::Error;
        fin.reason = StopReason::Error;
        fin.text = "request failed: " + res.transportError;
    } else if (status != 200) {
        fin.type = EventType::Error;
        fin.reason = StopReason::Error;
        fin.text = "HTTP " + std::to_string(status) + ": " + errorBody.substr(0, 300);
    } else if (!streamError.empty()) {
        fin.type = EventType::Error;
        fin.reason = StopReason::Error;
        fin.text = "server error in stream: " + streamError;
    } else if (chunks == 0) {
        fin.type = EventType::Error;
        fin.reason = StopReason::Error;
        // A server that generated tokens none of which is text (special ids, bytes of an unfinished character)
        // streams nothing to time a first token by.
        fin.text = reportedTokens > 0 ? "the stream carried no text (the server reported " +
                                            std::to_string(reportedTokens) +
                                            " completion tokens, none of them visible text: no first token to time)"
                   : sawDone ? "the stream carried no tokens"
                             : "the stream ended without tokens or [DONE]";
    }
    // The server's own count when it reports usage; else one token per content chunk (what the client saw).
    fin.usage.completionTokens = reportedTokens >= 0 ? reportedTokens : chunks;
    onEvent(fin);
}

RemoteMemory fetchRemoteMemory(const std::string& baseUrl, const std::string& apiKey) {
    RemoteMemory out;
    std::string hostPort, prefix;
    if (!http::splitBaseUrl(baseUrl, hostPort, prefix)) {
        out.source = "bad URL";
        return out;
    }
    httplib::Client c(hostPort);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(10, 0);
    auto r = c.Get("/metrics", headersFor(apiKey));
    if (!r || r->status != 200) {
        out.source = "no /metrics endpoint";
        return out;
    }
    // Series that are a server's peak (or device) memory in bytes. Host RSS of a GPU server is not its VRAM, so
    // process_resident_memory_bytes is deliberately not used.
    static const char* names[] = {"wb_peak_memory_bytes", "gpu_memory_peak_bytes", "nv_gpu_memory_used_bytes"};
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        for (const char* n : names) {
            const size_t len = std::strlen(n);
            if (line.compare(0, len, n) != 0 || (line.size() > len && line[len] != ' ' && line[len] != '{')) continue;
            const size_t sp = line.rfind(' ');
            try {
                const double v = std::stod(line.substr(sp + 1));
                if (v > 0 && (!out.peakBytes || v > *out.peakBytes)) {
                    out.peakBytes = v;
                    out.source = n;
                }
            } catch (...) {
            }
        }
    }
    if (!out.peakBytes) out.source = "not reported by the server's /metrics";
    return out;
}

}  // namespace wb
