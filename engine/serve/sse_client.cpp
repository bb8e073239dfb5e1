#include "serve/sse_client.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

namespace wb::http {

namespace {

httplib::Headers headersFor(const std::string& apiKey) {
    httplib::Headers h{{"Accept", "text/event-stream, application/json"}};
    if (!apiKey.empty()) h.emplace("Authorization", "Bearer " + apiKey);
    return h;
}

}  // namespace

bool splitBaseUrl(const std::string& url, std::string& hostPort, std::string& prefix) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return false;
    const std::string s = url.substr(0, scheme);
    if (s != "http" && s != "https") return false;
    const size_t slash = url.find('/', scheme + 3);
    hostPort = url.substr(0, slash);
    prefix = slash == std::string::npos ? "" : url.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return hostPort.size() > scheme + 3;
}

Result<std::vector<std::string>> listModels(const std::string& baseUrl, const std::string& apiKey) {
    std::signal(SIGPIPE, SIG_IGN);  // a server that drops the connection must fail that request only
    std::string hostPort, prefix;
    if (!splitBaseUrl(baseUrl, hostPort, prefix))
        return makeError("not an http(s) base URL: " + baseUrl + " (e.g. http://127.0.0.1:8000/v1)");
    httplib::Client c(hostPort);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(30, 0);
    auto r = c.Get(prefix + "/models", headersFor(apiKey));
    if (!r) return makeError(baseUrl + " cannot be reached (" + httplib::to_string(r.error()) + " error)");
    if (r->status != 200)
        return makeError(baseUrl + "/models answered HTTP " + std::to_string(r->status) + ": " +
                         r->body.substr(0, 300));
    std::vector<std::string> models;
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_object() && j.contains("data") && j["data"].is_array())
        for (const auto& m : j["data"])
            if (m.is_object() && m.contains("id") && m["id"].is_string()) models.push_back(m["id"]);
    return models;
}

SseOutcome postStreaming(const std::string& hostPort, const std::string& path, const std::string& apiKey,
                         std::string body, const std::function<void(const std::string&)>& onData,
                         int readTimeoutSeconds, const std::function<bool()>& keepGoing) {
    SseOutcome out;
    std::string buffer;
    httplib::Client client(hostPort);
    client.set_connection_timeout(10, 0);
    client.set_read_timeout(readTimeoutSeconds, 0);
    client.set_write_timeout(60, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = headersFor(apiKey);
    req.headers.emplace("Content-Type", "application/json");
    req.body = std::move(body);
    req.response_handler = [&](const httplib::Response& r) {
        out.status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (out.status != 200) {
            out.errorBody.append(data, std::min<size_t>(n, 4096));
            return true;
        }
        buffer.append(data, n);
        // SSE events end with a blank line; lines may end with \r\n.
        size_t pos;
        while ((pos = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, pos);
            buffer.erase(0, pos + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.rfind("data:", 0) != 0) continue;
            std::string payload = line.substr(5);
            if (!payload.empty() && payload.front() == ' ') payload.erase(0, 1);
            onData(payload);
        }
        return !keepGoing || keepGoing();
    };
    // A cancel must also end a request that is still waiting for its first byte (a server busy with a long
    // prefill, or hung): a watcher asks keepGoing every 50 ms and shuts the socket down (Client::stop, the one
    // call httplib allows from another thread) until send() returns.
    std::mutex mutex;
    std::condition_variable done;
    bool finished = false;
    std::thread watcher;
    if (keepGoing)
        watcher = std::thread([&] {
            std::unique_lock lock(mutex);
            while (!done.wait_for(lock, std::chrono::milliseconds(50), [&] { return finished; }))
                if (!keepGoing()) client.stop();
        });
    auto res = client.send(req);
    {
        std::lock_guard lock(mutex);
        finished = true;
    }
    done.notify_all();
    if (watcher.joinable()) watcher.join();
    if (!res) out.transportError = httplib::to_string(res.error());
    return out;
}

StreamChunk readStreamChunk(const std::string& payload) {
    StreamChunk c;
    if (payload == "[DONE]") {
        c.kind = StreamChunk::Kind::Done;
        return c;
    }
    nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (!j.is_object()) return c;
    if (j.contains("error")) {
        const nlohmann::json& e = j["error"];
        c.kind = StreamChunk::Kind::Error;
        c.error = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                                                     : e.dump();
        return c;
    }
    c.kind = StreamChunk::Kind::Object;
    c.object = std::move(j);
    return c;
}

}  // namespace wb::http
