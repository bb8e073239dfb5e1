// The HTTP layer of wb serve, spoken to over raw sockets: what real clients never send (garbage request lines,
// huge headers, bodies that stop half way) must get an answer or a closed connection, never a stuck server,
// and a client that disappears mid-stream must give its KV blocks back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QtTest>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "api/engine.h"
#include "fixtures.h"
#include "serve/openai_protocol.h"
#include "api/server.h"

namespace {

const std::string kGguf = "models/stories260K/stories260K.gguf";
using Clock = std::chrono::steady_clock;

int connectTo(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool sendAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += size_t(n);
    }
    return true;
}

// The body of the last response in `r` (after its blank line), parsed; discarded when not JSON or not UTF-8.
nlohmann::json jsonBody(const std::string& r) {
    const size_t b = r.rfind("\r\n\r\n");
    if (b == std::string::npos) return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(r.substr(b + 4), nullptr, false);
}

int countOf(const std::string& s, const std::string& what) {
    int n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
    return n;
}

// Reads until `until` appears, the peer closes, or the deadline passes. `closed` tells which.
std::string recvUntil(int fd, const std::string& until, int timeoutMs, bool* closed = nullptr) {
    std::string out;
    const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
    if (closed) *closed = false;
    while (Clock::now() < end) {
        if (!until.empty() && out.find(until) != std::string::npos) break;
        pollfd p{fd, POLLIN, 0};
        const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
        if (::poll(&p, 1, std::max(1, left)) <= 0) continue;
        char buf[65536];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            if (closed) *closed = true;
            break;
        }
        out.append(buf, size_t(n));
    }
    return out;
}

std::string request(const std::string& method, const std::string& path, const std::string& body = {}) {
    std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!body.empty() || method == "POST")
        r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

// Runs a server on its own thread and stops and joins it when the scope ends, also when a QVERIFY returns early
// (a joinable std::thread's destructor would abort the whole suite, losing the other tests' results).
struct ServerThread {
    explicit ServerThread(wb::OpenAiServer& s) : server(s), thread([this] { (void)server.run(); }) {}
    ~ServerThread() { join(); }
    void join() {
        if (!thread.joinable()) return;
        server.stop();
        thread.join();
    }
    wb::OpenAiServer& server;
    std::thread thread;
};

// Sends `text` on a new connection and reads until `until`; a 503 "too many connections" (the server has not yet
// seen the previous clients' closes: it counts a connection until it reads its end) is retried after 50 ms for up
// to 3 s, as a client honouring Retry-After would.
std::string askPastConnectionLimit(int port, const std::string& text, const std::string& until) {
    const auto end = Clock::now() + std::chrono::seconds(3);
    for (;;) {
        const int fd = connectTo(port);
        sendAll(fd, text);
        std::string r = recvUntil(fd, until, 3000);
        ::close(fd);
        if (r.find("too_many_connections") == std::string::npos || Clock::now() > end) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

class TestModelServe : public QObject {
    Q_OBJECT
    std::unique_ptr<wb::Engine> m_engine;
    std::unique_ptr<wb::OpenAiServer> m_server;
    std::thread m_thread;
    int m_port = 0;

    // A fresh connection gets a 200 from /health within a second: the server is not stuck.
    void expectAlive() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        QVERIFY(sendAll(fd, request("GET", "/health")));
        const std::string r = recvUntil(fd, "\"ok\"", 2000);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.c_str());
    }

private slots:
    void initTestCase() {
        WB_REQUIRE_FIXTURE(kGguf);
        wb::EngineOptions eo;
        eo.modelPath = wbtest::fixture(kGguf);
        eo.load.numThreads = 1;
        auto e = wb::Engine::create(eo);
        QVERIFY2(e.ok(), e.ok() ? "" : e.error().message.c_str());
        m_engine = std::move(*e);
        wb::ServeOptions so;
        so.port = 0;
        so.readTimeoutSeconds = 2;  // short, so the slow-client case ends quickly
        so.headerTimeoutSeconds = 2;
        so.maxConnections = 64;
        so.maxBodyBytes = 1 << 20;
        auto s = wb::OpenAiServer::create(*m_engine, so);
        QVERIFY(s.ok());
        m_server = std::move(*s);
        auto p = m_server->bind();
        QVERIFY(p.ok());
        m_port = *p;
        m_thread = std::thread([this] { (void)m_server->run(); });
        QVERIFY(!m_server->startupSummary().empty());
    }

    void cleanupTestCase() {
        if (m_server) m_server->stop();
        if (m_thread.joinable()) m_thread.join();
        m_server.reset();
        m_engine.reset();
    }

    void base64AndSignatures() {
        std::string out;
        QVERIFY(wb::decodeBase64Strict("aGVsbG8=", out) && out == "hello");
        QVERIFY(wb::decodeBase64Strict("", out) && out.empty());
        QVERIFY(!wb::decodeBase64Strict("aGVsbG8", out));     // length not a multiple of 4
        QVERIFY(!wb::decodeBase64Strict("aGVs bG8=", out));   // whitespace
        QVERIFY(!wb::decodeBase64Strict("aGVsbG9=", out));    // non-zero bits under the padding
        QVERIFY(!wb::decodeBase64Strict("aG=sbG8=", out));    // padding in the middle
        QVERIFY(!wb::decodeBase64Strict("aGVsbG8-", out));    // URL-safe alphabet is not base64
        // The encoder (the bench's image data URLs) writes what the decoder accepts, every tail length.
        const std::vector<std::string> samples{"", "h", "he", "hel", "hello", std::string("\xff\x00\xfe", 3)};
        for (const std::string& s : samples) {
            const std::string e = wb::encodeBase64(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
            QVERIFY2(wb::decodeBase64Strict(e, out) && out == s, e.c_str());
        }
        QCOMPARE(wb::encodeBase64(std::span(reinterpret_cast<const uint8_t*>("hello"), 5)), std::string("aGVsbG8="));
        const std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10", 24);
        QCOMPARE(wb::sniffImage(png), std::string("png"));
        QCOMPARE(wb::sniffImage(std::string("\xFF\xD8\xFF\xE0", 4)), std::string("jpeg"));
        QVERIFY(wb::sniffImage("GIF89a....").empty());
        QVERIFY(wb::sniffImage(png.substr(0, 20)).empty());  // truncated IHDR
    }

    void keepAliveServesSeveralRequests() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        for (int i = 0; i < 3; ++i) {
            QVERIFY(sendAll(fd, request("GET", "/v1/models")));
            const std::string r = recvUntil(fd, "\"object\":\"list\"}", 3000);
            QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.c_str());
        }
        ::close(fd);
    }

    void malformedRequestLine() {
        for (const std::string& junk : {std::string("GARBAGE\r\n\r\n"), std::string("GET\r\n\r\n"),
                                       std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                                       std::string("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: x\r\n\r\n")}) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            sendAll(fd, junk);
            bool closed = false;
            const std::string r = recvUntil(fd, "\r\n\r\n", 5000, &closed);
            ::close(fd);
            QVERIFY2(closed || r.rfind("HTTP/1.1 4", 0) == 0, r.c_str());
        }
        expectAlive();
    }

    void hugeHeadersAreRefused() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(200000, 'a') + "\r\n\r\n";
        sendAll(fd, req);  // may fail half way when the server gives up first
        bool closed = false;
        const std::string r = recvUntil(fd, "\r\n\r\n", 5000, &closed);
        ::close(fd);
        QVERIFY2(closed || r.rfind("HTTP/1.1 4", 0) == 0, r.substr(0, 200).c_str());
        QVERIFY(r.find("\"ok\"") == std::string::npos);
        expectAlive();
    }

    void slowPartialBodiesDoNotHang() {
        // Several clients announce a body and send a few bytes of it, then stall.
        std::vector<int> slow;
        for (int i = 0; i < 4; ++i) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            sendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: 5000\r\n\r\n{\"messages\":");
            slow.push_back(fd);
        }
        const auto t0 = Clock::now();
        expectAlive();  // others are served meanwhile
        QVERIFY(Clock::now() - t0 < std::chrono::seconds(2));
        // The stalled ones are dropped after the read timeout (2 s here), with at most a 400.
        for (int fd : slow) {
            bool closed = false;
            const std::string r = recvUntil(fd, "}}", 8000, &closed);
            ::close(fd);
            QVERIFY2(closed || r.rfind("HTTP/1.1 4", 0) == 0, ("a stalled client was neither answered nor "
                                                              "disconnected: " + r).c_str());
            QVERIFY2(r.empty() || r.rfind("HTTP/1.1 4", 0) == 0, r.c_str());
        }
        expectAlive();
    }

    void oversizedBodyIs413() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        sendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5000000\r\n\r\n{");
        const std::string r = recvUntil(fd, "}}", 5000);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 413", 0) == 0, r.c_str());
        QVERIFY(r.find("\"request_too_large\"") != std::string::npos);
        expectAlive();
    }

    void disconnectMidStreamFreesKvBlocks() {
        const uint64_t finishedBefore = m_engine->stats().totalFinished;
        std::vector<int> fds;
        for (int i = 0; i < 4; ++i) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            const std::string body = R"({"messages":[{"role":"user","content":"Tell a long story"}],"stream":true,)"
                                     R"("max_tokens":1800,"ignore_eos":true,"temperature":0.8})";
            QVERIFY(sendAll(fd, request("POST", "/v1/chat/completions", body)));
            // Wait for real tokens, not just the role chunk.
            const std::string r = recvUntil(fd, "\"content\":\" ", 5000);
            QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.substr(0, 300).c_str());
            fds.push_back(fd);
        }
        QVERIFY(m_engine->stats().kvBlocksUsed > 0 || m_engine->stats().numRunning > 0);
        for (int fd : fds) ::close(fd);
        const auto end = Clock::now() + std::chrono::seconds(15);
        wb::StatsSnapshot s;
        do {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            s = m_engine->stats();
        } while ((s.kvBlocksUsed != 0 || s.numRunning != 0 || s.totalFinished < finishedBefore + 4) &&
                 Clock::now() < end);
        QCOMPARE(s.kvBlocksUsed, int64_t(0));
        QCOMPARE(s.numRunning, 0);
        QVERIFY(s.totalFinished >= finishedBefore + 4);
        // They were cancelled, not run to their 1800 tokens.
        QVERIFY(s.totalGeneratedTokens < 4 * 1800);
        expectAlive();
    }

    // Issue 13 (1): a path that decodes to invalid UTF-8 used to abort the whole process before any auth check
    // (the 404 body's JSON serialiser threw outside httplib's try block). Each such path is now a 404 whose
    // body is valid JSON, and the server keeps answering.
    void invalidUtf8PathIs404() {
        for (const std::string& path : {std::string("/%FF"), std::string("/v1/%C3%28"), std::string("/%ED%A0%80x"),
                                       std::string("/%F4%90%80%80"), std::string("/\xff\xfe")}) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, request("GET", path)));
            const std::string r = recvUntil(fd, "}}", 3000);
            ::close(fd);
            QVERIFY2(r.rfind("HTTP/1.1 404", 0) == 0 || r.rfind("HTTP/1.1 400", 0) == 0, r.c_str());
            const size_t b = r.find("\r\n\r\n");
            QVERIFY(b != std::string::npos);
            const auto j = nlohmann::json::parse(r.substr(b + 4), nullptr, false);  // discarded on bad UTF-8
            QVERIFY2(!j.is_discarded() && j.contains("error"), r.c_str());
            expectAlive();
        }
    }

    // Invalid UTF-8 inside a JSON string is the client's error: 400 with a valid JSON body, not a 500.
    void invalidUtf8InBodyIs400() {
        for (const std::string& body : {std::string("{\"messages\":[{\"role\":\"user\",\"content\":\"a\xff\"}]}"),
                                       std::string("{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}"),
                                       std::string("{\"\xed\xa0\x80\":1}")}) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, request("POST", "/v1/chat/completions", body)));
            const std::string r = recvUntil(fd, "}}", 3000);
            ::close(fd);
            QVERIFY2(r.rfind("HTTP/1.1 400", 0) == 0, r.c_str());
            const size_t b = r.find("\r\n\r\n");
            QVERIFY(b != std::string::npos);
            const auto j = nlohmann::json::parse(r.substr(b + 4), nullptr, false);
            QVERIFY2(!j.is_discarded() && j["error"].value("code", "") == "invalid_json", r.c_str());
        }
        expectAlive();
    }

    void sanitizeUtf8KeepsValidText() {
        QCOMPARE(wb::sanitizeUtf8("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
                 std::string("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
        QCOMPARE(wb::sanitizeUtf8("a\xff" "b"), std::string("a\xef\xbf\xbd" "b"));
        QCOMPARE(wb::sanitizeUtf8("\xed\xa0\x80"), std::string("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));  // surrogate
        QCOMPARE(wb::sanitizeUtf8("\xc0\xaf"), std::string("\xef\xbf\xbd\xef\xbf\xbd"));  // overlong
        QCOMPARE(wb::sanitizeUtf8("\xe2\x82"), std::string("\xef\xbf\xbd\xef\xbf\xbd"));  // truncated
        QCOMPARE(wb::dumpJson(nlohmann::json("x\xff")), std::string("\"x\xef\xbf\xbd\""));
    }

    // ---- issue 13: each probe of the review is a test here.

    // (2) A chunked body counts against the body limit (1 MiB here): 2 MiB in 64 KiB chunks is refused with 413
    // before it is all read, instead of being buffered.
    void chunkedBodyOverLimitIs413() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        QVERIFY(sendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"));
        const std::string piece(64 << 10, ' ');
        char len[16];
        std::snprintf(len, sizeof len, "%zx\r\n", piece.size());
        for (int i = 0; i < 32; ++i)
            if (!sendAll(fd, len + piece + "\r\n")) break;  // the server may close before the end
        sendAll(fd, "0\r\n\r\n");
        const std::string r = recvUntil(fd, "}}", 5000);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 413", 0) == 0, r.substr(0, 300).c_str());
        QCOMPARE(jsonBody(r)["error"].value("code", ""), std::string("request_too_large"));
        expectAlive();
    }

    // (2) No transparent decompression: a compressed body is refused, never inflated.
    void compressedBodyIs415() {
        for (const std::string& enc : {std::string("gzip"), std::string("deflate"), std::string("br")}) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            const std::string body(100, 'x');
            QVERIFY(sendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Encoding: " + enc +
                                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
            const std::string r = recvUntil(fd, "}}", 3000);
            ::close(fd);
            QVERIFY2(r.rfind("HTTP/1.1 415", 0) == 0, r.c_str());
            QCOMPARE(jsonBody(r)["error"].value("code", ""), std::string("unsupported_content_encoding"));
        }
        expectAlive();
    }

    // (2) The number of header lines is bounded (100 by default), not only their bytes.
    void tooManyHeadersIs431() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 300; ++i) req += "X-" + std::to_string(i) + ": y\r\n";
        QVERIFY(sendAll(fd, req + "\r\n"));
        bool closed = false;
        const std::string r = recvUntil(fd, "}}", 3000, &closed);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 431", 0) == 0, r.c_str());
        QCOMPARE(jsonBody(r)["error"].value("code", ""), std::string("too_many_headers"));
        expectAlive();
    }

    // (5) Pipelined requests on one connection are all answered, in order.
    void pipelinedRequestsAnsweredInOrder() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        const std::string body = R"({"prompt":"Once","max_tokens":2,"temperature":0})";
        QVERIFY(sendAll(fd, request("GET", "/health") + request("GET", "/v1/models") +
                                request("POST", "/v1/completions", body) + request("GET", "/nowhere") +
                                request("GET", "/health")));
        std::string r;
        const auto end = Clock::now() + std::chrono::seconds(5);
        while (countOf(r, "HTTP/1.1 ") < 5 || r.size() < 10 || r.substr(r.size() - 15).find("\"ok\"}") ==
                                                                     std::string::npos) {
            if (Clock::now() > end) break;
            r += recvUntil(fd, "", 200);
        }
        ::close(fd);
        QCOMPARE(countOf(r, "HTTP/1.1 "), 5);
        const size_t a = r.find("HTTP/1.1 200"), b = r.find("\"object\":\"list\""), c = r.find("\"text_completion\""),
                     d = r.find("HTTP/1.1 404"), e = r.rfind("{\"status\":\"ok\"}");
        QVERIFY2(a < b && b < c && c < d && d < e && e != std::string::npos, r.c_str());
    }

    // HEAD gets the headers without the body, so the connection stays in step for the next request.
    void headHasNoBody() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        QVERIFY(sendAll(fd, request("HEAD", "/health") + request("GET", "/health")));
        const std::string r = recvUntil(fd, "{\"status\":\"ok\"}", 3000);
        ::close(fd);
        QCOMPARE(countOf(r, "HTTP/1.1 200"), 2);
        QCOMPARE(countOf(r, "{\"status\":\"ok\"}"), 1);
    }

    // (7) Both Content-Length and Transfer-Encoding, or two different Content-Lengths: 400 (RFC 9112 6.3).
    void conflictingFramingIs400() {
        for (const std::string& h : {std::string("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
                                    std::string("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
                                    std::string("Content-Length: 4\r\nContent-Length: 5\r\n"),
                                    std::string("Transfer-Encoding: gzip\r\n")}) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + h + "\r\n4\r\n{}\r\n0\r\n\r\n"));
            bool closed = false;
            const std::string r = recvUntil(fd, "}}", 3000, &closed);
            ::close(fd);
            QVERIFY2(r.rfind("HTTP/1.1 400", 0) == 0, (h + " -> " + r).c_str());
        }
        expectAlive();
    }

    // (6) A deadline for the whole header, not per read: a client dripping a header byte every 300 ms is
    // dropped after the header timeout (2 s here) although it never stalls for long.
    void slowHeaderDripIsDropped() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        QVERIFY(sendAll(fd, "GET /health HTTP/1.1\r\nHost: x\r\n"));
        const auto t0 = Clock::now();
        bool closed = false;
        while (Clock::now() - t0 < std::chrono::seconds(8)) {
            if (!sendAll(fd, "X")) {
                closed = true;
                break;
            }
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 300) > 0) {
                char c[256];
                if (::recv(fd, c, sizeof c, 0) <= 0) {
                    closed = true;
                    break;
                }
            }
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        ::close(fd);
        QVERIFY2(closed, "a client dripping its header was never dropped");
        QVERIFY2(s < 5.0, std::to_string(s).c_str());
        expectAlive();
    }

    // (6) A burst of connections is taken at once (the backlog of 5 made 64 connects wait a second for SYN
    // retries), and connections stalled half way through their headers do not hold up anyone else.
    void connectBurstAndStalledHeaders() {
        std::vector<int> stalled;
        for (int i = 0; i < 40; ++i) {
            const int fd = connectTo(m_port);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, "GET /health HTTP/1.1\r\nHost: x\r\nX-a: "));
            stalled.push_back(fd);
        }
        std::vector<std::thread> burst;
        std::atomic<int> answered{0};
        std::atomic<int64_t> slowestMs{0};
        for (int i = 0; i < 20; ++i)
            burst.emplace_back([&] {
                const auto t0 = Clock::now();
                const int fd = connectTo(m_port);
                if (fd < 0) return;
                sendAll(fd, request("GET", "/health"));
                const std::string r = recvUntil(fd, "\"ok\"", 3000);
                ::close(fd);
                const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
                int64_t cur = slowestMs.load();
                while (ms > cur && !slowestMs.compare_exchange_weak(cur, ms)) {
                }
                if (r.rfind("HTTP/1.1 200", 0) == 0) ++answered;
            });
        for (auto& t : burst) t.join();
        for (int fd : stalled) ::close(fd);
        QCOMPARE(answered.load(), 20);
        QVERIFY2(slowestMs.load() < 900, std::to_string(slowestMs.load()).c_str());
    }

    // A stream that waits (here: scheduling held) gets an SSE comment every few seconds, so idle timeouts of
    // clients and proxies do not drop it; it then ends normally.
    void silentStreamGetsHeartbeat() {
        m_engine->holdScheduling(true);
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        const std::string body = R"({"messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":3})";
        QVERIFY(sendAll(fd, request("POST", "/v1/chat/completions", body)));
        std::string r = recvUntil(fd, ": keep-alive", 8000);
        m_engine->holdScheduling(false);
        QVERIFY2(r.find("\"role\":\"assistant\"") != std::string::npos, r.c_str());
        QVERIFY2(r.find("\r\n: keep-alive\n\n\r\n") != std::string::npos, r.c_str());
        r += recvUntil(fd, "0\r\n\r\n", 5000);
        ::close(fd);
        QVERIFY2(r.find("data: [DONE]") != std::string::npos, r.c_str());
    }

    // (4) A non-streaming request whose client goes away is cancelled: it does not generate to its end.
    void nonStreamingCancelledOnDisconnect() {
        const wb::StatsSnapshot before = m_engine->stats();
        m_engine->holdScheduling(true);  // so that nothing is generated before the client leaves
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        const std::string body = R"({"messages":[{"role":"user","content":"Tell a long story"}],)"
                                 R"("max_tokens":400,"ignore_eos":true,"temperature":0.8})";
        QVERIFY(sendAll(fd, request("POST", "/v1/chat/completions", body)));
        // Wait until the request is in the engine, then leave.
        auto end = Clock::now() + std::chrono::seconds(5);
        while (m_engine->stats().numWaiting + m_engine->stats().numRunning == 0 && Clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ::close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        m_engine->holdScheduling(false);
        end = Clock::now() + std::chrono::seconds(10);
        wb::StatsSnapshot s;
        do {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            s = m_engine->stats();
        } while ((s.totalFinished < before.totalFinished + 1 || s.kvBlocksUsed != 0) && Clock::now() < end);
        QVERIFY(s.totalFinished >= before.totalFinished + 1);
        QCOMPARE(s.kvBlocksUsed, int64_t(0));
        QVERIFY2(s.totalGeneratedTokens - before.totalGeneratedTokens < 400,
                 std::to_string(s.totalGeneratedTokens - before.totalGeneratedTokens).c_str());
        expectAlive();
    }

    // (7) Token ids are checked before narrowing; unsupported fields are named; /v1/models shows no path.
    void smallerProbes() {
        auto post = [&](const std::string& path, const std::string& body) {
            const int fd = connectTo(m_port);
            sendAll(fd, request("POST", path, body));
            const std::string r = recvUntil(fd, "}}", 3000);
            ::close(fd);
            return r;
        };
        std::string r = post("/v1/completions", R"({"prompt":[1,4294967301],"max_tokens":1})");
        QVERIFY2(r.rfind("HTTP/1.1 400", 0) == 0, r.c_str());
        QCOMPARE(jsonBody(r)["error"].value("param", ""), std::string("prompt"));
        r = post("/v1/completions", R"({"prompt":[1,-4294967291],"max_tokens":1})");
        QVERIFY2(r.rfind("HTTP/1.1 400", 0) == 0, r.c_str());
        for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
                 {"logprobs", "true"},
                 {"top_logprobs", "3"},
                 {"tools", R"([{"type":"function","function":{"name":"f"}}])"},
                 {"tool_choice", R"("required")"},
                 {"response_format", R"({"type":"json_object"})"}}) {
            r = post("/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1,\"" + field + "\":" + value + "}");
            QVERIFY2(r.rfind("HTTP/1.1 400", 0) == 0, (field + ": " + r).c_str());
            QCOMPARE(jsonBody(r)["error"].value("param", ""), field);
        }
        // What clients send by default still passes.
        r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1,)"
                                         R"("logprobs":false,"tools":[],"response_format":{"type":"text"}})");
        QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.c_str());
        const int fd = connectTo(m_port);
        sendAll(fd, request("GET", "/v1/models"));
        r = recvUntil(fd, "}]}", 3000);
        ::close(fd);
        QVERIFY2(r.find(wbtest::fixture(kGguf)) == std::string::npos, r.c_str());
        QVERIFY2(r.find("\"root\":\"stories260K\"") != std::string::npos, r.c_str());
    }

    // Limits and refusals are visible on /metrics.
    void metricsShowLimitsAndRefusals() {
        const int fd = connectTo(m_port);
        sendAll(fd, request("GET", "/metrics"));
        const std::string r = recvUntil(fd, "wb_kv_cache_blocks_total", 3000);
        ::close(fd);
        for (const char* s : {"wb_limit_max_header_count 100", "wb_limit_listen_backlog 1024",
                              "wb_limit_max_body_bytes 1048576", "wb_http_refused_total{reason=\"body_too_large\"}",
                              "wb_http_refused_total{reason=\"too_many_headers\"}",
                              "wb_http_refused_total{reason=\"content_encoding\"}"})
            QVERIFY2(r.find(s) != std::string::npos, s);
    }

    // (6) Connections beyond the limit get a 503 at once; the API key is checked (constant-time compare).
    void connectionLimitAndApiKey() {
        wb::ServeOptions so;
        so.port = 0;
        so.maxConnections = 3;
        so.apiKey = "sk-test-key";
        auto s = wb::OpenAiServer::create(*m_engine, so);
        QVERIFY(s.ok());
        auto server = std::move(*s);
        auto p = server->bind();
        QVERIFY(p.ok());
        ServerThread running(*server);
        std::vector<int> idle;
        for (int i = 0; i < 3; ++i) idle.push_back(connectTo(*p));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        int fd = connectTo(*p);
        QVERIFY(fd >= 0);
        sendAll(fd, request("GET", "/health"));
        std::string r = recvUntil(fd, "}}", 3000);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 503", 0) == 0, r.c_str());
        QVERIFY(r.find("Retry-After") != std::string::npos);
        for (int f : idle) ::close(f);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        for (const std::string& auth : {std::string(""), std::string("Bearer sk-test-kex"), std::string("Bearer "),
                                       std::string("Bearer sk-test-key2"), std::string("sk-test-key")}) {
            r = askPastConnectionLimit(*p, "GET /v1/models HTTP/1.1\r\nHost: x\r\n" +
                                               (auth.empty() ? std::string() : "Authorization: " + auth + "\r\n") +
                                               "\r\n",
                                       "}}");
            QVERIFY2(r.rfind("HTTP/1.1 401", 0) == 0, (auth + " -> " + r).c_str());
        }
        const std::string withKey = "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test-key\r\n\r\n";
        r = askPastConnectionLimit(*p, withKey, "}]}");
        QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.c_str());
        running.join();
        // (7) Listening beyond loopback without a key is said at start.
        wb::ServeOptions open;
        open.host = "0.0.0.0";
        auto o = wb::OpenAiServer::create(*m_engine, open);
        QVERIFY(o.ok());
        QVERIFY((*o)->startupSummary().find("WARNING: listening on 0.0.0.0 without an API key") != std::string::npos);
        QVERIFY(server->startupSummary().find("WARNING") == std::string::npos);
    }

    // (5) stop() drains: running streams get drainSeconds to finish, then each ends with an error event,
    // [DONE] and the terminating chunk; run() returns.
    void stopEndsStreamsWithDone() {
        wb::ServeOptions so;
        so.port = 0;
        so.drainSeconds = 1;
        auto s = wb::OpenAiServer::create(*m_engine, so);
        QVERIFY(s.ok());
        auto server = std::move(*s);
        auto p = server->bind();
        QVERIFY(p.ok());
        ServerThread running(*server);
        struct Release {  // the engine must schedule again for the next tests, also when a check fails here
            wb::Engine& engine;
            ~Release() { engine.holdScheduling(false); }
        } release{*m_engine};
        std::vector<int> fds;
        const std::string body = R"({"messages":[{"role":"user","content":"Tell a long story"}],"stream":true,)"
                                 R"("max_tokens":1800,"ignore_eos":true,"temperature":0.8})";
        m_engine->holdScheduling(true);  // they cannot finish within the drain time
        for (int i = 0; i < 4; ++i) {
            const int fd = connectTo(*p);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, request("POST", "/v1/chat/completions", body)));
            const std::string r = recvUntil(fd, "\"role\":\"assistant\"", 5000);
            QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, r.c_str());
            fds.push_back(fd);
        }
        const auto t0 = Clock::now();
        server->stop();
        for (int fd : fds) {
            bool closed = false;
            const std::string r = recvUntil(fd, "0\r\n\r\n", 8000, &closed);
            ::close(fd);
            QVERIFY2(r.find("\"code\":\"shutting_down\"") != std::string::npos, r.c_str());
            QVERIFY2(r.find("data: [DONE]") != std::string::npos, r.c_str());
            QVERIFY2(r.size() >= 5 && r.substr(r.size() - 5) == "0\r\n\r\n", r.c_str());
        }
        running.join();
        m_engine->holdScheduling(false);
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        QVERIFY2(secs >= 0.9 && secs < 6.0, std::to_string(secs).c_str());
        m_engine->waitIdle();
        QCOMPARE(m_engine->stats().kvBlocksUsed, int64_t(0));
    }

    void unknownRouteAndMethod() {
        const int fd = connectTo(m_port);
        QVERIFY(fd >= 0);
        QVERIFY(sendAll(fd, request("DELETE", "/v1/models")));
        const std::string r = recvUntil(fd, "}}", 3000);
        ::close(fd);
        QVERIFY2(r.rfind("HTTP/1.1 404", 0) == 0 || r.rfind("HTTP/1.1 405", 0) == 0, r.c_str());
        QVERIFY(r.find("{\"error\":") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestModelServe)
#include "tst_model_serve.moc"
