#include "serve/http_server.h"
#include "serve/http_request_reader.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <optional>
#include <set>
#include <thread>

namespace wb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string statusLine(int status) {
    const auto reason = http::obsolete_reason(http::int_to_status(unsigned(status)));
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

std::string head(int status, std::string_view contentType, const HttpResponder::Headers& extra, bool keepAlive,
                 std::optional<size_t> contentLength) {
    std::string h = statusLine(status);
    h += "Content-Type: ";
    h += contentType;
    h += "\r\n";
    for (const auto& [k, v] : extra) h += k + ": " + v + "\r\n";
    if (contentLength)
        h += "Content-Length: " + std::to_string(*contentLength) + "\r\n";
    else
        h += "Transfer-Encoding: chunked\r\n";
    if (!keepAlive) h += "Connection: close\r\n";
    h += "\r\n";
    return h;
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return {};
}

struct HttpServer::Impl {
    HttpLimits limits;
    HttpHandler handler;
    std::function<std::string(int, const std::string&, const std::string&)> errorBody;
    HttpRefusalHook onRefused;
    std::function<void(const std::string&, int)> onResponse;

    // Declared before the io_context: sessions still queued in it touch these as it destroys them.
    std::atomic<bool> accepting{true};
    std::atomic<bool> stopped{false};
    std::atomic<int> numConnections{0};
    std::atomic<int> numBusy{0};
    std::mutex sessionsMutex;
    std::set<std::weak_ptr<HttpSession>, std::owner_less<std::weak_ptr<HttpSession>>> sessions;

    asio::io_context ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    // The acceptor is used from the io threads (its accept loop) and from stopAccepting()/stop() (its close): all
    // of it runs on one strand, since an acceptor is not safe to use from two threads at once (a close racing the
    // accept handler, or two closes, crashed in the reactor's deregistration).
    asio::strand<asio::io_context::executor_type> acceptStrand{asio::make_strand(ioc)};
    tcp::acceptor acceptor{acceptStrand};
    std::unique_ptr<asio::thread_pool> handlers;
    std::vector<std::thread> ioThreads;

    void refuse(const char* reason) {
        if (onRefused) onRefused(reason);
    }
    void accept();
};

// One connection. Everything but the responder's entry points runs on the connection's strand (the socket's
// executor), so its state needs no lock.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(HttpServer::Impl& server, tcp::socket socket)
        : m_srv(server), m_sock(std::move(socket)), m_readTimer(m_sock.get_executor()),
          m_writeTimer(m_sock.get_executor()), m_heartbeatTimer(m_sock.get_executor()) {
        error_code ec;
        const auto ep = m_sock.remote_endpoint(ec);
        if (!ec) m_remote = ep.address().to_string() + ":" + std::to_string(ep.port());
        m_sock.set_option(tcp::no_delay(true), ec);  // SSE chunks are small and must leave at once
    }
    ~HttpSession() {
        --m_srv.numConnections;
        if (m_busy) --m_srv.numBusy;
    }

    void start() { readRequest(true); }

    // From any thread.
    void postHeartbeat(std::string bytes) {
        asio::post(m_sock.get_executor(), [self = shared_from_this(), b = std::move(bytes)]() mutable {
            self->m_heartbeat = std::move(b);
            self->armHeartbeat();
        });
    }
    void postBytes(std::string bytes, bool last) {
        asio::post(m_sock.get_executor(), [self = shared_from_this(), b = std::move(bytes), last]() mutable {
            self->queueWrite(std::move(b), last);
        });
    }
    // From any thread: close if no answer is in progress, else after it.
    void closeWhenIdle() {
        asio::post(m_sock.get_executor(), [self = shared_from_this()] {
            self->m_closeAfterResponse = true;
            if (!self->m_busy) self->close();
        });
    }
    void closeNow() {
        asio::post(m_sock.get_executor(), [self = shared_from_this()] { self->close(); });
    }

private:
    HttpServer::Impl& m_srv;
    tcp::socket m_sock;
    asio::steady_timer m_readTimer, m_writeTimer, m_heartbeatTimer;
    std::string m_heartbeat;  // chunk sent on a silent stream; empty: none
    std::chrono::steady_clock::time_point m_lastQueued;
    beast::flat_buffer m_buf;
    std::optional<http::request_parser<http::string_body>> m_parser;
    std::string m_remote;
    std::shared_ptr<HttpResponder> m_responder;  // the answer in progress
    std::deque<std::pair<std::string, bool>> m_out;  // bytes, last of the answer
    bool m_writing = false;
    bool m_busy = false;        // a request was dispatched and its answer has not been written in full
    bool m_watching = false;    // a read that watches for the client going away (or pipelined bytes)
    bool m_responseDone = false;
    bool m_closed = false;
    bool m_closeAfterResponse = false;
    bool m_timedOut = false;
    bool m_lingering = false;
    static constexpr int kLingerMs = 2000;

    void close() {
        if (m_closed) return;
        m_closed = true;
        error_code ec;
        m_readTimer.cancel();
        m_writeTimer.cancel();
        m_heartbeatTimer.cancel();
        m_sock.shutdown(tcp::socket::shutdown_both, ec);
        m_sock.close(ec);
        if (m_responder) m_responder->markGone();
    }

    void setBusy(bool b) {
        if (b == m_busy) return;
        m_busy = b;
        if (b)
            ++m_srv.numBusy;
        else
            --m_srv.numBusy;
    }

    // Answers a request the layer refuses itself and closes the connection after it.
    void refuse(const HttpRefusal& r) {
        m_srv.refuse(r.reason);
        m_readTimer.cancel();
        const int status = r.status;
        if (m_srv.onResponse) m_srv.onResponse("refused", status);
        const std::string body = m_srv.errorBody(status, r.message, r.code);
        setBusy(true);
        queueWrite(head(status, "application/json", {}, false, body.size()) + body, true);
        m_closeAfterResponse = true;
    }

    void armReadTimer(int ms) {
        m_timedOut = false;
        m_readTimer.expires_after(std::chrono::milliseconds(ms));
        m_readTimer.async_wait([self = shared_from_this()](error_code ec) {
            if (ec) return;  // cancelled
            self->m_timedOut = true;
            error_code ignored;
            self->m_sock.cancel(ignored);
        });
    }

    void readRequest(bool first) {
        if (m_closed) return;
        if (!m_srv.accepting && m_buf.size() == 0) return close();
        m_responseDone = false;
        m_responder.reset();
        m_parser.emplace();
        applyHttpLimits(*m_parser, m_srv.limits);
        // A fresh connection gets the header deadline; a kept-alive one may first idle for the keep-alive time.
        const int ms = first || m_buf.size() > 0 ? m_srv.limits.headerTimeoutMs
                                                 : std::max(m_srv.limits.keepAliveMs, m_srv.limits.headerTimeoutMs);
        armReadTimer(ms);
        const size_t before = m_buf.size();
        http::async_read_header(m_sock, m_buf, *m_parser,
                                [self = shared_from_this(), before](error_code ec, size_t n) {
                                    self->onHeader(ec, n + before);
                                });
    }

    void onHeader(error_code ec, size_t bytesSeen) {
        if (m_closed) return;
        if (ec) return onReadError(ec, bytesSeen > 0 || m_buf.size() > 0, true);
        if (auto r = checkRequestHeader(*m_parser, m_srv.limits)) return refuse(*r);
        auto& req = m_parser->get();
        if (m_parser->is_done()) return dispatch();
        const auto expect = req.find(http::field::expect);
        if (expect != req.end() && iequals(std::string_view(expect->value().data(), expect->value().size()),
                                           "100-continue"))
            queueWrite("HTTP/1.1 100 Continue\r\n\r\n", false);
        armReadTimer(m_srv.limits.bodyTimeoutMs);
        http::async_read(m_sock, m_buf, *m_parser, [self = shared_from_this()](error_code e, size_t) {
            if (self->m_closed) return;
            if (e) return self->onReadError(e, true, false);
            self->dispatch();
        });
    }

    void onReadError(error_code ec, bool partial, bool inHeader) {
        if (m_timedOut) {
            if (partial) m_srv.refuse(inHeader ? "header_timeout" : "body_timeout");
            return close();
        }
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
            ec == asio::error::operation_aborted) {
            if (partial && ec != asio::error::operation_aborted) m_srv.refuse(inHeader ? "incomplete_header"
                                                                                      : "incomplete_body");
            return close();
        }
        if (auto r = refusalForParseError(ec, m_srv.limits)) return refuse(*r);
        close();  // a socket error: nobody to answer
    }

    void dispatch() {
        m_readTimer.cancel();
        auto msg = m_parser->release();
        m_parser.reset();
        const bool keepAlive = msg.keep_alive() && !m_closeAfterResponse && m_srv.accepting;
        HttpRequest req = toHttpRequest(msg);
        req.remote = m_remote;
        setBusy(true);
        std::string path = req.path;
        auto onStatus = [srv = &m_srv, path](int status) {
            if (srv->onResponse) srv->onResponse(path, status);
        };
        m_responder = std::make_shared<HttpResponder>(weak_from_this(), keepAlive, req.method == "HEAD",
                                                      std::move(onStatus));
        if (!keepAlive) m_closeAfterResponse = true;
        watch();
        auto responder = m_responder;
        asio::post(*m_srv.handlers, [srv = &m_srv, r = std::move(req), responder]() {
            try {
                srv->handler(r, responder);
            } catch (...) {
                if (!responder->started())
                    responder->send(500, "application/json",
                                    srv->errorBody(500, "internal server error", "internal_error"));
            }
        });
    }

    // While a handler works, read on: a closed socket means the client is gone (cancel the work), bytes are
    // the next pipelined request (kept in the buffer, up to a header's worth).
    void watch() {
        if (m_watching || m_closed || m_responseDone) return;
        if (m_buf.size() >= m_srv.limits.maxHeaderBytes + 4096) return;  // enough buffered: wait for the answer
        m_watching = true;
        m_sock.async_read_some(m_buf.prepare(4096), [self = shared_from_this()](error_code ec, size_t n) {
            self->m_watching = false;
            if (self->m_closed) return;
            if (self->m_lingering) {
                if (ec && ec != asio::error::operation_aborted) return self->close();
                return self->lingerRead();
            }
            if (ec && ec != asio::error::operation_aborted) {
                if (!self->m_responseDone) {
                    self->close();  // gone: marks the responder, which tells the handler
                    return;
                }
                return self->close();
            }
            self->m_buf.commit(n);
            if (self->m_responseDone)
                self->afterResponse();
            else
                self->watch();
        });
    }

    void armHeartbeat() {
        if (m_heartbeat.empty() || m_closed || m_responseDone) return;
        m_heartbeatTimer.expires_after(std::chrono::milliseconds(m_srv.limits.heartbeatMs));
        m_heartbeatTimer.async_wait([self = shared_from_this()](error_code ec) {
            if (ec || self->m_heartbeat.empty() || self->m_closed || self->m_responseDone) return;
            const auto silent = std::chrono::steady_clock::now() - self->m_lastQueued;
            if (silent >= std::chrono::milliseconds(self->m_srv.limits.heartbeatMs) && self->m_out.empty())
                self->queueWrite(self->m_heartbeat, false);
            self->armHeartbeat();
        });
    }

    void queueWrite(std::string bytes, bool last) {
        if (m_closed) return;
        m_lastQueued = std::chrono::steady_clock::now();
        if (last) {  // nothing may follow the answer's last bytes
            m_heartbeat.clear();
            m_heartbeatTimer.cancel();
        }
        m_out.emplace_back(std::move(bytes), last);
        if (!m_writing) writeNext();
    }

    void writeNext() {
        if (m_out.empty() || m_closed) {
            m_writing = false;
            return;
        }
        m_writing = true;
        m_writeTimer.expires_after(std::chrono::milliseconds(m_srv.limits.writeTimeoutMs));
        m_writeTimer.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) {
                self->m_srv.refuse("write_timeout");
                self->close();
            }
        });
        asio::async_write(m_sock, asio::buffer(m_out.front().first),
                          [self = shared_from_this()](error_code ec, size_t) {
                              self->m_writeTimer.cancel();
                              if (self->m_closed) return;
                              if (ec) return self->close();
                              const bool last = self->m_out.front().second;
                              self->m_out.pop_front();
                              if (last) {
                                  self->m_writing = false;
                                  self->responseDone();
                                  return;
                              }
                              self->writeNext();
                          });
    }

    void responseDone() {
        m_responseDone = true;
        setBusy(false);
        m_responder.reset();
        if (m_closeAfterResponse) {
            // Lingering close (as nginx does): shut our side and read what the client still sends for a moment,
            // so that closing with unread bytes does not reset the connection before it has read the answer
            // (a 413 sent while the client is still uploading the body).
            error_code ec;
            m_sock.shutdown(tcp::socket::shutdown_send, ec);
            m_lingering = true;
            m_timedOut = false;
            m_readTimer.expires_after(std::chrono::milliseconds(kLingerMs));
            m_readTimer.async_wait([self = shared_from_this()](error_code e) {
                if (!e) self->close();
            });
            if (!m_watching) lingerRead();
            return;
        }
        if (m_watching) {
            error_code ec;
            m_sock.cancel(ec);  // the watch ends with operation_aborted and calls afterResponse
            return;
        }
        afterResponse();
    }

    void lingerRead() {
        m_buf.consume(m_buf.size());
        m_watching = true;
        m_sock.async_read_some(m_buf.prepare(16384), [self = shared_from_this()](error_code ec, size_t) {
            self->m_watching = false;
            if (self->m_closed) return;
            if (ec) return self->close();
            self->lingerRead();
        });
    }

    void afterResponse() {
        if (!m_out.empty()) {  // a new answer cannot start before its request was read
            writeNext();
            return;
        }
        readRequest(false);
    }

    friend class HttpResponder;
};

// ---- HttpResponder

HttpResponder::HttpResponder(std::weak_ptr<HttpSession> session, bool keepAlive, bool headOnly,
                             std::function<void(int)> onStatus)
    : m_session(std::move(session)), m_keepAlive(keepAlive), m_headOnly(headOnly), m_onStatus(std::move(onStatus)) {}

HttpResponder::~HttpResponder() = default;

void HttpResponder::post(std::string bytes, bool last) {
    if (auto s = m_session.lock()) s->postBytes(std::move(bytes), last);
}

void HttpResponder::send(int status, std::string_view contentType, std::string body, const Headers& extra) {
    std::function<void(int)> onStatus;
    {
        std::lock_guard lock(m_mutex);
        if (m_started || m_ended) return;
        m_started = m_ended = true;
        onStatus = m_onStatus;
        if (!m_gone)
            post(head(status, contentType, extra, m_keepAlive, body.size()) + (m_headOnly ? std::string() : body), true);
    }
    if (onStatus) onStatus(status);
}

void HttpResponder::beginStream(int status, std::string_view contentType, const Headers& extra,
                                std::string heartbeat) {
    std::function<void(int)> onStatus;
    {
        std::lock_guard lock(m_mutex);
        if (m_started || m_ended) return;
        m_started = m_chunked = true;
        onStatus = m_onStatus;
        if (!m_gone) {
            post(head(status, contentType, extra, m_keepAlive, std::nullopt), false);
            if (!heartbeat.empty() && !m_headOnly) {
                char len[32];
                std::snprintf(len, sizeof len, "%zx\r\n", heartbeat.size());
                if (auto session = m_session.lock()) session->postHeartbeat(len + heartbeat + "\r\n");
            }
        }
    }
    if (onStatus) onStatus(status);
}

bool HttpResponder::write(std::string data) {
    std::lock_guard lock(m_mutex);
    if (m_gone) return false;
    if (!m_chunked || m_ended || data.empty()) return !m_ended;
    char len[32];
    std::snprintf(len, sizeof len, "%zx\r\n", data.size());
    post(len + std::move(data) + "\r\n", false);
    return true;
}

void HttpResponder::end() {
    std::lock_guard lock(m_mutex);
    if (!m_chunked || m_ended) return;
    m_ended = true;
    if (!m_gone) post("0\r\n\r\n", true);
}

void HttpResponder::onClientGone(std::function<void()> callback) {
    bool now = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_gone)
            now = true;
        else
            m_onGone = std::move(callback);
    }
    if (now && callback) callback();
}

void HttpResponder::markGone() {
    std::function<void()> cb;
    {
        std::lock_guard lock(m_mutex);
        if (m_gone) return;
        m_gone = true;
        if (!m_ended) cb = std::move(m_onGone);
        m_onGone = nullptr;
    }
    if (cb) cb();
}

bool HttpResponder::clientGone() const {
    std::lock_guard lock(m_mutex);
    return m_gone;
}
bool HttpResponder::started() const {
    std::lock_guard lock(m_mutex);
    return m_started;
}
bool HttpResponder::ended() const {
    std::lock_guard lock(m_mutex);
    return m_ended;
}

// ---- HttpServer

void HttpServer::Impl::accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket sock) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (!ec) {
            if (numConnections.load() >= limits.maxConnections) {
                refuse("too_many_connections");
                const std::string body =
                    errorBody(503, "the server has too many open connections; retry later", "too_many_connections");
                const std::string r = head(503, "application/json", {{"Retry-After", "1"}}, false, body.size()) + body;
                error_code e;
                sock.non_blocking(true, e);
                sock.write_some(asio::buffer(r), e);  // best effort: never wait for this client
                sock.shutdown(tcp::socket::shutdown_both, e);
                sock.close(e);
            } else {
                ++numConnections;
                auto s = std::make_shared<HttpSession>(*this, std::move(sock));
                {
                    std::lock_guard lock(sessionsMutex);
                    for (auto it = sessions.begin(); it != sessions.end();)  // drop the dead
                        it = it->expired() ? sessions.erase(it) : std::next(it);
                    sessions.insert(s);
                }
                s->start();
            }
        }
        if (accepting) accept();
    });
}

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler,
                       std::function<std::string(int, const std::string&, const std::string&)> errorBody,
                       HttpRefusalHook onRefused, std::function<void(const std::string&, int)> onResponse)
    : m(std::make_unique<Impl>()) {
    m->limits = limits;
    if (m->limits.ioThreads < 1) m->limits.ioThreads = 1;
    if (m->limits.handlerThreads < 1) m->limits.handlerThreads = 1;
    m->handler = std::move(handler);
    m->errorBody = std::move(errorBody);
    m->onRefused = std::move(onRefused);
    m->onResponse = std::move(onResponse);
}

HttpServer::~HttpServer() { stop(); }

Result<int> HttpServer::bind(const std::string& host, int port) {
    error_code ec;
    tcp::resolver resolver(m->ioc);
    const auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec || results.empty())
        return makeError("cannot resolve '" + host + "' as an address to listen on: " + ec.message());
    const tcp::endpoint ep = results.begin()->endpoint();
    m->acceptor.open(ep.protocol(), ec);
    if (!ec) m->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) m->acceptor.bind(ep, ec);
    if (!ec) m->acceptor.listen(std::max(1, m->limits.listenBacklog), ec);
    if (ec)
        return makeError("cannot listen on " + host + ":" + std::to_string(port) + " (" + ec.message() +
                         "; in use, or not an address of this machine)");
    return int(m->acceptor.local_endpoint().port());
}

void HttpServer::start() {
    m->handlers = std::make_unique<asio::thread_pool>(size_t(m->limits.handlerThreads));
    m->work.emplace(m->ioc.get_executor());
    asio::post(m->acceptStrand, [this] { m->accept(); });
    for (int i = 0; i < m->limits.ioThreads; ++i) m->ioThreads.emplace_back([this] { m->ioc.run(); });
}

void HttpServer::stopAccepting() {
    if (!m->accepting.exchange(false)) return;
    // The port closes first, then the idle connections: a client that sees its idle connection closed must find the
    // port refusing, not a listen backlog nobody accepts from (the idle closes used to overtake the queued close).
    asio::post(m->acceptStrand, [this] {
        error_code ec;
        m->acceptor.close(ec);
        std::lock_guard lock(m->sessionsMutex);
        for (const auto& w : m->sessions)
            if (auto s = w.lock()) s->closeWhenIdle();
    });
}

void HttpServer::stop() {
    if (m->stopped.exchange(true)) return;
    m->accepting = false;
    {
        std::lock_guard lock(m->sessionsMutex);
        for (const auto& w : m->sessions)
            if (auto s = w.lock()) s->closeNow();
    }
    asio::post(m->acceptStrand, [this] {
        error_code ec;
        m->acceptor.close(ec);
    });
    // Handlers first: they may still post answers; then the sockets.
    if (m->handlers) m->handlers->join();
    m->work.reset();
    // Give the closes a moment to run, then stop whatever is left.
    for (int i = 0; i < 50 && m->numConnections.load() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    m->ioc.stop();
    for (auto& t : m->ioThreads)
        if (t.joinable()) t.join();
    m->ioThreads.clear();
}

int HttpServer::connections() const { return m->numConnections.load(); }
int HttpServer::busyConnections() const { return m->numBusy.load(); }

}  // namespace wb
