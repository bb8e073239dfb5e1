// An OpenAI-compatible HTTP server over one Engine: /v1/models, /v1/chat/completions, /v1/completions (SSE
// streaming and not), /health, /metrics. The HTTP layer (Boost.Beast) is http_server.h.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "api/engine.h"
#include "api/speech.h"
#include "core/result.h"

namespace wb {

/// Media a request may carry.
struct MediaLimits {
    size_t maxImages = 10;  // per request; vLLM's --limit-mm-per-prompt
    size_t maxAudios = 10;
};

struct ServeOptions {
    std::string host = "127.0.0.1";  // loopback unless the user opens it up
    int port = 8000;                  // 0: any free port (see OpenAiServer::port())
    std::string servedModelName;      // empty: the model file's stem
    std::string apiKey;               // empty: no authentication
    size_t maxBodyBytes = size_t(64) << 20;
    MediaLimits media;
    int maxQueued = 256;              // requests beyond the engine's batch before 429
    int maxConnections = 512;         // open connections; beyond: 503 and close
    int handlerThreads = 4;           // request parsing, tokenization, image decoding (generation is the engine's)
    int listenBacklog = 1024;
    size_t maxHeaderBytes = size_t(16) << 10;  // request line and headers together; beyond: 431
    size_t maxHeaderCount = 100;      // header lines; beyond: 431
    int headerTimeoutSeconds = 10;    // to send a request's header (slow-loris clients get dropped)
    int readTimeoutSeconds = 30;      // to send its body; also the limit on one stalled write of the answer
    int keepAliveSeconds = 10;        // idle between requests on one connection
    int drainSeconds = 30;            // on stop(): time running requests get to finish before streams are ended
    int64_t maxImagePixelsInFlight = 100'000'000;  // images being decoded at once, summed; beyond: 503 + Retry-After
    bool logRequests = false;         // one stderr line per request
    /// Speech recognition beside the chat model (`wb serve --asr-model`): POST /v1/audio/transcriptions, and
    /// input_audio parts of chat requests transcribed into the prompt for a model without audio input.
    std::shared_ptr<const SpeechRecognizer> asr;
    std::shared_ptr<const SpeechDetector> vad;  // optional: trims silence, cuts long audio at pauses
    double maxAudioSeconds = 3 * 3600.0;        // longer uploads are refused (400)
};

/// Applies `wb serve`'s limit options (the keys without "--") to `o`; an error names the bad option.
/// Used by the CLI so the option names, defaults and help live beside the server.
Result<void> applyServeLimitOptions(const std::map<std::string, std::string>& opts, ServeOptions& o);
/// The help lines of those options.
const char* serveLimitOptionsHelp();

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
    /// Serves until stop() (blocking; call bind() first). After stop() it stops accepting, lets running requests
    /// finish for up to drainSeconds, then ends the streams still open with an error event and [DONE], answers
    /// the other requests still waiting with 503, and returns.
    Result<void> run();
    /// Thread-safe, async-signal-unsafe (call it from a thread, not a handler); makes run() drain and return.
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
