// The HTTP layer of wb serve, spoken to over raw sockets: what real clients never send (garbage request lines,
// huge headers, bodies that stop half way) must get an answer or a closed connection, never a stuck server,
// and a client that disappears mid-stream must give its KV blocks back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QtTest>
#include <chrono>
#include <thread>

#include "api/engine.h"
#include "fixtures.h"
#include "serve/openai_protocol.h"
#include "serve/server.h"

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
        so.workerThreads = 16;
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
        for (const std::string junk : {std::string("GARBAGE\r\n\r\n"), std::string("GET\r\n\r\n"),
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
        for (const std::string path : {std::string("/%FF"), std::string("/v1/%C3%28"), std::string("/%ED%A0%80x"),
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
        for (const std::string body : {std::string("{\"messages\":[{\"role\":\"user\",\"content\":\"a\xff\"}]}"),
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
