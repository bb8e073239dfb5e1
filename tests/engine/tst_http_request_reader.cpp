// The server's request reading without a socket (serve/http_request_reader.h): what parseHttpRequests makes of
// bytes is what a connection's session makes of them, since both call the same header checks, refusals and
// request mapping. The libFuzzer target tests/fuzz/fuzz_http_request drives it; these are its fixed points.
#include <QtTest>

#include <string>

#include "serve/http_request_reader.h"

class TestHttpRequestReader : public QObject {
    Q_OBJECT

    static wb::HttpParseResult parse(const std::string& bytes, wb::HttpLimits limits = {}) {
        return wb::parseHttpRequests(bytes, limits);
    }

private slots:
    void pipelinedRequestsInOrder() {
        const std::string body = R"({"prompt":"hi"})";
        auto r = parse("GET /health HTTP/1.1\r\nHost: h\r\n\r\n"
                       "POST /v1/completions?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body +
                       "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        QCOMPARE(r.requests.size(), size_t(3));
        QVERIFY(!r.refusal && !r.incomplete && !r.closed);
        QCOMPARE(r.requests[0].method, std::string("GET"));
        QCOMPARE(r.requests[1].path, std::string("/v1/completions"));
        QCOMPARE(r.requests[1].target, std::string("/v1/completions?x=1"));
        QCOMPARE(r.requests[1].body, body);
        QCOMPARE(r.requests[1].header("content-length"), std::to_string(body.size()));
        QCOMPARE(r.requests[2].body, std::string("abcde"));
    }

    void pathIsPercentDecoded() {
        auto r = parse("GET /v1/%63hat/x%FF%zz%4 HTTP/1.1\r\n\r\n");
        QCOMPARE(r.requests.size(), size_t(1));
        QCOMPARE(r.requests[0].path, std::string("/v1/chat/x\xff%zz%4"));
    }

    // Found by fuzz_http_request in the reader's first version (before it was committed): a body shorter than its
    // Content-Length made put() return 0 bytes used with no error once the input was used up, and the loop spun
    // for ever. The input is tests/fuzz/regressions/fuzz_http_request/body-shorter-than-content-length.http.
    void bodyShorterThanContentLengthIsIncomplete() {
        auto r = parse("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 83\r\n\r\n{\"model\": \"m\"}");
        QVERIFY(r.incomplete);
        QVERIFY(r.requests.empty());
        QVERIFY(!r.refusal);
        auto header = parse("GET / HTTP/1.1\r\nHost: h\r\n");
        QVERIFY(header.incomplete);
    }

    void refusalsAsTheServerAnswersThem() {
        struct Case {
            std::string bytes;
            int status;
            std::string code;
        } cases[] = {
            {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_framing"},
            {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "bad_framing"},
            {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad_framing"},
            {"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}", 415,
             "unsupported_content_encoding"},
            {"GET / HTTP/1.1\r\nX-Long: " + std::string(20000, 'a') + "\r\n\r\n", 431, "header_too_large"},
            {"G\x01T / HTTP/1.1\r\n\r\n", 400, "bad_request"},
        };
        for (const auto& c : cases) {
            auto r = parse(c.bytes);
            QVERIFY2(r.refusal.has_value(), c.bytes.substr(0, 60).c_str());
            QCOMPARE(r.refusal->status, c.status);
            QCOMPARE(r.refusal->code, c.code);
        }
        std::string many = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
        auto r = parse(many + "\r\n");
        QVERIFY(r.refusal.has_value());
        QCOMPARE(r.refusal->status, 431);
        QCOMPARE(r.refusal->code, std::string("too_many_headers"));

        wb::HttpLimits small;
        small.maxBodyBytes = 10;
        r = parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", small);
        QVERIFY(r.refusal.has_value());
        QCOMPARE(r.refusal->status, 413);
        r = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", small);
        QVERIFY(r.refusal.has_value());
        QCOMPARE(r.refusal->status, 413);
    }

    // A refusal ends the connection: nothing after it is read, what came before it is kept.
    void refusalStopsTheConnection() {
        auto r = parse("GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Encoding: br\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        QCOMPARE(r.requests.size(), size_t(1));
        QCOMPARE(r.requests[0].path, std::string("/a"));
        QVERIFY(r.refusal.has_value());
        QCOMPARE(r.refusal->status, 415);
    }
};

QTEST_APPLESS_MAIN(TestHttpRequestReader)
#include "tst_http_request_reader.moc"
