// An OpenAI-compatible HTTP server over one Engine: /v1/models, /v1/chat/completions, /v1/completions (SSE
// streaming and not), /health, /metrics. HTTP details (cpp-httplib) stay inside server.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "api/engine.h"
#include "core/result.h"
#include "serve/openai_protocol.h"

namespace wb {

struct ServeOptions {
    std::string host = "127.0.0.1";  // loopback unless the user opens it up
    int port = 8000;                  // 0: any free port (see OpenAiServer::port())
    std::string servedModelName;      // empty: the model file's stem
    std::string apiKey;               // empty: no authentication
    size_t maxBodyBytes = size_t(64) << 20;
    MediaLimits media;
    int maxQueued = 256;              // requests beyond the engine's batch before 429
    int workerThreads = 128;          // concurrent connections served (a stream holds one)
    int readTimeoutSeconds = 10;      // per read: a stalled client gets dropped, never holds the server
    int keepAliveSeconds = 10;
    bool logRequests = false;         // one stderr line per request
};

class OpenAiServer {
public:
    /// The engine must outlive the server. Ignores SIGPIPE process-wide: a client that goes away mid-stream
    /// must end that stream, not the process.
    static Result<std::unique_ptr<OpenAiServer>> create(Engine& engine, ServeOptions options);
    ~OpenAiServer();  // stops, cancels what is still live and waits for the engine to drop it
    OpenAiServer(const OpenAiServer&) = delete;
    OpenAiServer& operator=(const OpenAiServer&) = delete;

    /// Binds host:port; returns the bound port.
    Result<int> bind();
    /// Serves until stop() (blocking; call bind() first).
    Result<void> run();
    /// Thread-safe; makes run() return.
    void stop();
    int port() const;
    const std::string& modelName() const;
    /// What the server logs at start: model, precision, device, KV cache size, limits.
    std::string startupSummary() const;

private:
    OpenAiServer() = default;
    struct Impl;
    std::unique_ptr<Impl> m;
};

}  // namespace wb
