// /v1/chat/completions with a GLM-4.1V checkpoint (tiny, random weights, written here): image_url parts reach
// the vision tower, the usage counts the expanded image tokens, streaming works, and bad images, too many of
// them, and over-long requests are 400s naming the part, before anything streams.
#include <QtTest>

#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api/engine.h"
#include "api/load_test.h"
#include "fixtures.h"
#include "models/glm/glm_tiny.h"
#include "media/image.h"
#include "api/http_target.h"
#include "serve/openai_protocol.h"
#include "api/server.h"

using nlohmann::json;

namespace {

std::vector<uint8_t> pngBytes(int w, int h, int variant) {
    wb::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t((i * 31 + size_t(variant) * 7) % 256);
    auto png = wb::encodePng(img);
    return png ? *png : std::vector<uint8_t>();
}

std::string pngDataUrl(int w, int h, int variant) { return "data:image/png;base64," + wb::encodeBase64(pngBytes(w, h, variant)); }

json imageMessage(const std::vector<std::string>& urls, const std::string& text) {
    json content = json::array();
    for (const auto& u : urls) content.push_back({{"type", "image_url"}, {"image_url", {{"url", u}}}});
    content.push_back({{"type", "text"}, {"text", text}});
    return json::array({{{"role", "user"}, {"content", content}}});
}

}  // namespace

class TestGlmServe : public QObject {
    Q_OBJECT
    std::unique_ptr<wb::Engine> m_engine;
    std::unique_ptr<wb::OpenAiServer> m_server;
    std::thread m_thread;
    int m_port = 0;

    httplib::Result post(const json& body) {
        httplib::Client c("127.0.0.1", m_port);
        c.set_read_timeout(120, 0);
        return c.Post("/v1/chat/completions", body.dump(), "application/json");
    }

private slots:
    void initTestCase() {
        const std::string dir = wbtest::tempDir() + "/glm-serve/glm4v";
        QVERIFY(wb::writeTinyGlmCheckpoint(dir).ok());
        wb::EngineOptions eo;
        eo.modelPath = dir;
        eo.load.numThreads = 2;
        eo.kvCacheBytes = int64_t(32) << 20;
        auto e = wb::Engine::create(eo);
        QVERIFY2(e.ok(), e.ok() ? "" : e.error().message.c_str());
        m_engine = std::move(*e);
        wb::ServeOptions so;
        so.port = 0;
        so.maxConnections = 64;
        auto s = wb::OpenAiServer::create(*m_engine, so);
        QVERIFY(s.ok());
        m_server = std::move(*s);
        auto p = m_server->bind();
        QVERIFY(p.ok());
        m_port = *p;
        m_thread = std::thread([this] { (void)m_server->run(); });
    }

    void cleanupTestCase() {
        if (m_server) m_server->stop();
        if (m_thread.joinable()) m_thread.join();
        m_server.reset();
        m_engine.reset();
    }

    void imageQuestionAnswers() {
        json body = {{"messages", imageMessage({pngDataUrl(84, 56, 0)}, "What is in the picture?")},
                     {"max_tokens", 8},
                     {"temperature", 0},
                     {"return_reasoning", true}};
        auto r = post(body);
        QVERIFY(r);
        QVERIFY2(r->status == 200, r->body.c_str());
        const json j = json::parse(r->body);
        // [gMASK] <sop> <|user|> \n, begin, 2 x 3 merged image tokens, end, 23 text bytes, <|assistant|> \n.
        QCOMPARE(j["usage"]["prompt_tokens"].get<int64_t>(), int64_t(4 + 1 + 6 + 1 + 23 + 2));
        QVERIFY(j["usage"]["completion_tokens"].get<int64_t>() >= 1);
        QVERIFY(j["choices"][0]["message"].contains("content"));
        // The same request twice gives the same greedy answer (the prefix cache keyed by image content).
        auto r2 = post(body);
        QVERIFY(r2 && r2->status == 200);
        QCOMPARE(json::parse(r2->body)["choices"][0]["message"], j["choices"][0]["message"]);
    }

    void twoImagesStreamed() {
        json body = {{"messages", imageMessage({pngDataUrl(56, 112, 1), pngDataUrl(140, 84, 2)}, "Compare.")},
                     {"max_tokens", 6},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
        auto r = post(body);
        QVERIFY(r);
        QVERIFY2(r->status == 200, r->body.c_str());
        QVERIFY2(r->body.find("data: [DONE]") != std::string::npos, r->body.c_str());
        // 56 x 112 -> 2 x 4 merged = 8; 140 x 84 -> 5 x 3 = 15.
        const std::string want = "\"prompt_tokens\":" + std::to_string(4 + (1 + 8 + 1) + (1 + 15 + 1) + 8 + 2);
        QVERIFY2(r->body.find(want) != std::string::npos, r->body.c_str());
    }

    // The multimodal benchmark workload (wb bench --image): each request one chat message of a picture then the
    // prompt, through the HTTP chat endpoint and in process. By default each request's picture has new pixels, so
    // every request runs the vision tower (none answers from the feature cache); --same-image sends the same bytes.
    void imageWorkloadBench() {
        auto w = wb::ImageWorkload::create({pngBytes(140, 84, 3)});
        QVERIFY2(w.ok(), w.ok() ? "" : w.error().message.c_str());
        wb::ImageWorkload& images = **w;
        QCOMPARE(images.info()[0].width, 140);
        {
            auto sets = images.take(2);
            QVERIFY(sets.ok() && sets->size() == 2 && (*sets)[0].size() == 1);
            QVERIFY(*(*sets)[0][0] != *(*sets)[1][0]);  // new pixels each
            auto a = wb::decodeImage(*(*sets)[0][0], "a"), b = wb::decodeImage(*(*sets)[1][0], "b");
            QVERIFY(a.ok() && b.ok());
            QCOMPARE(a->width, 140);
            int differing = 0;
            for (size_t i = 0; i < a->rgb.size(); ++i) differing += a->rgb[i] != b->rgb[i];
            QVERIFY(differing >= 1 && differing <= 8);  // a few pixels of the red channel
        }
        wb::HttpTargetOptions ho;
        ho.baseUrl = "http://127.0.0.1:" + std::to_string(m_port) + "/v1";
        ho.chat = true;
        auto http = wb::HttpTarget::create(ho);
        QVERIFY2(http.ok(), http.ok() ? "" : http.error().message.c_str());
        wb::EngineTarget local(*m_engine);
        for (wb::BenchTarget* target : {static_cast<wb::BenchTarget*>(http->get()), static_cast<wb::BenchTarget*>(&local)}) {
            QVERIFY(target->acceptsImages());
            wb::LoadTestOptions lo;
            lo.concurrency = 2;
            lo.numRequests = 4;
            lo.inputTokens = 12;
            lo.outputTokens = 3;
            lo.vocabSize = int(m_engine->modelConfig().vocabSize);
            lo.images = &images;
            const uint64_t before = m_engine->stats().totalImagesEncoded;
            const wb::LoadTestResult r = wb::runLoadTest(*target, lo);
            QVERIFY2(r.errors == 0, r.firstError.c_str());
            QCOMPARE(r.requests, 4);
            QCOMPARE(r.outputTokens, int64_t(4 * 3));
            // 140 x 84 is 5 x 3 merged image tokens with their begin/end markers, beside the text.
            QVERIFY2(r.promptTokens >= 4 * (1 + 15 + 1 + 6), qPrintable(QString::number(r.promptTokens)));
            // Every request (and the warm-up) ran the tower: no image came from the cache.
            QCOMPARE(m_engine->stats().totalImagesEncoded - before, uint64_t(1 + 4));
        }
        // The same bytes each time: encoded once at most, then the feature cache answers.
        auto same = wb::ImageWorkload::create({pngBytes(140, 84, 4)}, false);
        QVERIFY(same.ok());
        wb::LoadTestOptions lo;
        lo.concurrency = 1;
        lo.numRequests = 3;
        lo.inputTokens = 8;
        lo.outputTokens = 2;
        lo.vocabSize = int(m_engine->modelConfig().vocabSize);
        lo.images = same->get();
        const uint64_t before = m_engine->stats().totalImagesEncoded;
        const wb::LoadTestResult r = wb::runLoadTest(**http, lo);
        QVERIFY2(r.errors == 0, r.firstError.c_str());
        QCOMPARE(m_engine->stats().totalImagesEncoded - before, uint64_t(1));
        // A target that cannot send images refuses the workload rather than measuring the text alone.
        wb::HttpTargetOptions completions = ho;
        completions.chat = false;
        auto text = wb::HttpTarget::create(completions);
        QVERIFY(text.ok());
        const wb::LoadTestResult refused = wb::runLoadTest(**text, lo);
        QCOMPARE(refused.errors, refused.requests);
        QVERIFY2(refused.firstError.find("cannot send images") != std::string::npos, refused.firstError.c_str());
    }

    // The server counts a request's tokens with the engine's own preparation before it submits it; the count's
    // decoded pixels wait for the submit, so a new screenshot is decoded once per request, not twice.
    void imageDecodedOncePerRequest() {
        m_engine->waitIdle();
        const uint64_t before = m_engine->stats().totalImagesDecoded;
        json body = {{"messages", imageMessage({pngDataUrl(168, 112, 9)}, "Once?")}, {"max_tokens", 2}};
        auto r = post(body);
        QVERIFY(r);
        QVERIFY2(r->status == 200, r->body.c_str());
        m_engine->waitIdle();
        QTRY_COMPARE(m_engine->stats().totalImagesDecoded - before, uint64_t(1));
        // Two new images in one streamed request: two decodes.
        body = {{"messages", imageMessage({pngDataUrl(56, 56, 10), pngDataUrl(84, 56, 11)}, "Two?")},
                {"max_tokens", 2},
                {"stream", true}};
        r = post(body);
        QVERIFY(r && r->status == 200);
        m_engine->waitIdle();
        QTRY_COMPARE(m_engine->stats().totalImagesDecoded - before, uint64_t(3));
        // Operators see both counters on /metrics.
        httplib::Client c("127.0.0.1", m_port);
        auto m = c.Get("/metrics");
        QVERIFY(m && m->status == 200);
        const std::string want = "wb_images_decoded_total{model_name=";
        const size_t at = m->body.find(want);
        QVERIFY2(at != std::string::npos, m->body.c_str());
        const size_t sp = m->body.find(' ', at);
        QCOMPARE(std::stoull(m->body.substr(sp + 1)), m_engine->stats().totalImagesDecoded);
        QVERIFY(m->body.find("wb_images_encoded_total{model_name=") != std::string::npos);
    }

    void badImagesAre400() {
        json body = {{"messages", imageMessage({"data:image/png;base64,bm9wZQ=="}, "?")}, {"max_tokens", 4}};
        auto r = post(body);
        QVERIFY(r);
        QCOMPARE(r->status, 400);
        QVERIFY2(r->body.find("messages[0].content[0].image_url.url") != std::string::npos, r->body.c_str());
        // A PNG signature with a truncated body passes the sniff; decoding names the image.
        std::string url = pngDataUrl(84, 56, 0);
        const std::string prefix = "data:image/png;base64,";
        std::string b64 = url.substr(prefix.size());
        b64 = b64.substr(0, (b64.size() / 2) / 4 * 4);
        body["messages"] = imageMessage({pngDataUrl(84, 56, 0), prefix + b64}, "?");
        r = post(body);
        QVERIFY(r);
        QCOMPARE(r->status, 400);
        QVERIFY2(r->body.find("image 2") != std::string::npos, r->body.c_str());
        // A screenshot (sized to the checkpoint's 50,176-pixel budget) whose tokens and max_tokens overflow the context
        // of 8192: a 400 before anything streams.
        body = {{"messages", imageMessage({pngDataUrl(1080, 2400, 3)}, "Tap")}, {"max_tokens", 8180}, {"stream", true}};
        r = post(body);
        QVERIFY(r);
        QCOMPARE(r->status, 400);
        QVERIFY2(r->body.find("context_length_exceeded") != std::string::npos, r->body.c_str());
        // Still serving.
        body = {{"messages", imageMessage({pngDataUrl(84, 56, 0)}, "ok")}, {"max_tokens", 2}};
        r = post(body);
        QVERIFY(r && r->status == 200);
    }
    // Issue 13 (3): the pixels of images being decoded, summed over all requests, stay within a budget. A request
    // whose images alone exceed it is a 400; concurrent requests beyond what is free get 503 + Retry-After; the
    // budget is all given back afterwards.
    void imagePixelBudget() {
        QCOMPARE(wb::imagePixels(std::string_view(reinterpret_cast<const char*>(pngBytes(84, 56, 0).data()),
                                                  pngBytes(84, 56, 0).size())),
                 uint64_t(84 * 56));
        // A JPEG header: SOI, an APP0 segment, then SOF0 with height 600 and width 800.
        const std::string jpeg("\xFF\xD8\xFF\xE0\x00\x04\x00\x00\xFF\xC0\x00\x11\x08\x02\x58\x03\x20\x03", 18);
        QCOMPARE(wb::imagePixels(jpeg), uint64_t(800 * 600));
        QCOMPARE(wb::imagePixels("not an image"), uint64_t(0));

        wb::ServeOptions so;
        so.port = 0;
        so.maxImagePixelsInFlight = 3'000'000;
        so.handlerThreads = 8;
        auto s = wb::OpenAiServer::create(*m_engine, so);
        QVERIFY(s.ok());
        auto server = std::move(*s);
        auto p = server->bind();
        QVERIFY(p.ok());
        std::thread t([&] { (void)server->run(); });
        auto postTo = [&](const json& body) {
            httplib::Client c("127.0.0.1", *p);
            c.set_read_timeout(120, 0);
            return c.Post("/v1/chat/completions", body.dump(), "application/json");
        };
        // Two 1300 x 1300 images: more than the whole budget.
        auto r = postTo({{"messages", imageMessage({pngDataUrl(1300, 1300, 1), pngDataUrl(1300, 1300, 2)}, "x")},
                         {"max_tokens", 1}});
        QVERIFY(r);
        QVERIFY2(r->status == 400, r->body.c_str());
        QCOMPARE(json::parse(r->body)["error"]["code"].get<std::string>(), std::string("images_too_large"));
        // Twelve at once, each a different 1600 x 1600 image (2.56 Mpx: one fits the budget at a time, and each
        // takes long enough to decode that the others arrive meanwhile).
        std::vector<json> bodies;
        for (int i = 0; i < 12; ++i)
            bodies.push_back({{"messages", imageMessage({pngDataUrl(1600, 1600, 10 + i)}, "x")}, {"max_tokens", 1}});
        std::vector<std::thread> clients;
        std::mutex mu;
        int ok = 0, busy = 0, other = 0;
        for (int i = 0; i < 12; ++i)
            clients.emplace_back([&, i] {
                auto rr = postTo(bodies[size_t(i)]);
                std::lock_guard l(mu);
                if (rr && rr->status == 200) {
                    ++ok;
                } else if (rr && rr->status == 503 && rr->get_header_value("Retry-After") == "1" &&
                           rr->body.find("image_budget_exhausted") != std::string::npos) {
                    ++busy;
                } else {
                    ++other;
                }
            });
        for (auto& c : clients) c.join();
        qInfo("12 concurrent image requests: %d answered, %d refused with 503", ok, busy);
        QCOMPARE(other, 0);
        QVERIFY(ok >= 1);
        QVERIFY(busy >= 1);
        httplib::Client c("127.0.0.1", *p);
        auto m = c.Get("/metrics");
        QVERIFY(m && m->body.find("wb_image_pixels_in_flight 0\n") != std::string::npos);
        QVERIFY(m->body.find("wb_http_refused_total{reason=\"image_budget\"}") != std::string::npos);
        server->stop();
        t.join();
    }
};

QTEST_GUILESS_MAIN(TestGlmServe)
#include "tst_glm_serve.moc"
