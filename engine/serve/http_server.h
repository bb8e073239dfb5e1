// The server's HTTP/1.1 layer on Boost.Beast (parser) and Boost.Asio (asynchronous sockets), without any OpenAI
// knowledge: bounded requests in, whole or chunked responses out. What a client can make it hold is bounded:
// header bytes and lines, the body (chunked included; no Content-Encoding is ever inflated), the time to send a
// request's header and its body, the time a write may stall, the number of connections. Requests on one
// connection are answered in order (pipelining), and a client that goes away while its answer is being prepared
// is noticed at once (the socket is read while the handler runs), so the handler can cancel the work.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace wb {

struct HttpLimits {
    size_t maxHeaderBytes = size_t(16) << 10;  // request line and header lines together
    size_t maxHeaderCount = 100;               // header lines
    size_t maxBodyBytes = size_t(64) << 20;    // after de-chunking; compressed bodies are refused, not inflated
    int headerTimeoutMs = 10000;               // from waiting for a request to the end of its header
    int bodyTimeoutMs = 30000;                 // the whole body
    int writeTimeoutMs = 30000;                // one write of the answer (a client that stops reading)
    int keepAliveMs = 10000;                   // idle between two requests on a connection
    int heartbeatMs = 5000;                    // silence on a stream before its heartbeat chunk
    int maxConnections = 512;                  // beyond: 503 and close at once
    int listenBacklog = 1024;
    int ioThreads = 2;                         // socket I/O only; handlers run on their own threads
    int handlerThreads = 4;                    // request handlers (JSON parsing, tokenization, image decoding)
};

struct HttpRequest {
    std::string method;
    std::string target;  // as sent
    std::string path;    // target before '?', percent-decoded (may hold any bytes)
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string remote;  // address:port
    /// The first header of that name (case-insensitive), or empty.
    std::string header(std::string_view name) const;
};

class HttpSession;

/// One request's answer. Thread-safe: any thread may call it, in order; calls after the client went away, or
/// after the answer ended, do nothing.
class HttpResponder {
public:
    using Headers = std::vector<std::pair<std::string, std::string>>;
    /// A whole response with Content-Length.
    void send(int status, std::string_view contentType, std::string body, const Headers& extra = {});
    /// Starts a chunked response; then write() any number of times and end(). A non-empty `heartbeat` is sent
    /// as a chunk whenever the stream has been silent for a few seconds (an SSE comment keeps proxies and
    /// clients with idle timeouts from dropping a stream that waits in the queue or in a long prefill).
    void beginStream(int status, std::string_view contentType, const Headers& extra = {},
                     std::string heartbeat = {});
    /// One chunk. False once the client is known to be gone.
    bool write(std::string data);
    /// The terminating chunk; the connection then serves its next request (or closes).
    void end();
    /// Called once, on an I/O thread, if the client goes away before the answer has ended; at once if it is gone
    /// already. Must not block.
    void onClientGone(std::function<void()> callback);
    bool clientGone() const;
    bool started() const;
    bool ended() const;

    /// headOnly: the request was HEAD, so the headers go out without the body.
    HttpResponder(std::weak_ptr<HttpSession> session, bool keepAlive, bool headOnly, std::function<void(int)> onStatus);
    ~HttpResponder();

private:
    friend class HttpSession;
    void markGone();  // from the session when its socket fails
    void post(std::string bytes, bool last);
    mutable std::mutex m_mutex;
    std::weak_ptr<HttpSession> m_session;
    bool m_keepAlive;
    bool m_headOnly;
    bool m_started = false, m_ended = false, m_gone = false, m_chunked = false;
    std::function<void()> m_onGone;
    std::function<void(int)> m_onStatus;
};

using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpResponder>)>;

/// Why a request was refused before any handler saw it (metrics label).
using HttpRefusalHook = std::function<void(const char* reason)>;

class HttpServer {
public:
    /// `handler` runs on the handler threads; it must answer through the responder (now or later).
    /// `errorBody(status, message, code)` is the JSON body of the layer's own refusals.
    HttpServer(HttpLimits limits, HttpHandler handler,
               std::function<std::string(int, const std::string&, const std::string&)> errorBody,
               HttpRefusalHook onRefused, std::function<void(const std::string& path, int status)> onResponse);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// Resolves and binds host:port (0: any free port) and listens with the configured backlog.
    Result<int> bind(const std::string& host, int port);
    /// Starts the I/O and handler threads; returns at once.
    void start();
    /// No new connections; connections that wait for a request are closed, the others close after their
    /// current answer. Thread-safe.
    void stopAccepting();
    /// Stops all I/O at once and joins the threads (answers still being written are cut). Thread-safe, idempotent.
    void stop();
    /// Connections open, and those with an answer in progress.
    int connections() const;
    int busyConnections() const;

    struct Impl;

private:
    std::unique_ptr<Impl> m;
};

}  // namespace wb
