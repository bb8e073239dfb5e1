// The HF Transformers comparison target (issue #18): tools/hf-serve/hf_serve.py starts on the stories260K HF
// folder, answers a streamed chat request through the engine's own SSE client with Transformers' greedy text and
// the server's usage, serves a load test through the "transformers" plugin (reporting its own peak RSS) and
// `wb bench --preset article`, turns bad requests into 400s, and stops cleanly on SIGTERM. One workload counts the
// same prompt tokens here as in this engine: token ids (stories260K), and the image workload on a tiny GLM-4.1V
// (made by wb-make-model), whose random ids once became 58.5 prompt tokens in process and 97.5 at Transformers.
//
// Needs Python with torch + transformers: WB_HF_PYTHON (default /usr/bin/python3, Debian's, which sees Debian's
// torch) and WB_HF_PYTHONPATH (default ~/.cache/hf-reference/site when present, from ../shared/hf-reference/
// setup.sh). Without them the suite is skipped with that message; WB_REQUIRE_HF_KIT=1 (set by .ci/run, which sets
// the kit up) makes that a failure instead.
#include <QDir>
#include <QFileInfo>
#include <QProcess>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include "api/bench_report.h"
#include "api/engine.h"
#include "api/http_target.h"
#include "api/load_test.h"
#include "api/target_plugins.h"
#include "api/tokenizer.h"
#include "fixtures.h"
#include "serve/sse_client.h"

namespace {
const char* kModel = "models/stories260K/hf";

QString python() {
    const QString p = qEnvironmentVariable("WB_HF_PYTHON");
    if (!p.isEmpty()) return p;
    return QFileInfo::exists("/usr/bin/python3") ? QStringLiteral("/usr/bin/python3") : QStringLiteral("python3");
}

QProcessEnvironment pythonEnv() {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    QString site = qEnvironmentVariable("WB_HF_PYTHONPATH");
    if (site.isEmpty()) {
        const QString kit = QDir::homePath() + "/.cache/hf-reference/site";
        if (QFileInfo::exists(kit)) site = kit;
    }
    if (!site.isEmpty()) {
        const QString old = env.value("PYTHONPATH");
        env.insert("PYTHONPATH", old.isEmpty() ? site : site + ":" + old);
    }
    return env;
}
}  // namespace

/// Starts hf_serve.py on a model folder; the base URL it announced, or empty (with its output in `out`).
QString startHfServe(QProcess& proc, const QString& model, const QString& name, QString& out) {
    proc.setProcessEnvironment(pythonEnv());
    proc.setProcessChannelMode(QProcess::MergedChannels);
    proc.start(python(), {QStringLiteral(WB_SOURCE_DIR "/tools/hf-serve/hf_serve.py"), "--model", model, "--port", "0",
                          "--threads", "1", "--max-batch", "4", "--name", name});
    if (!proc.waitForStarted(10000)) return {};
    static const QRegularExpression re("listening on (http://(\\S+))/v1");
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < 180000 && proc.state() == QProcess::Running) {
        proc.waitForReadyRead(200);
        out += QString::fromUtf8(proc.readAll());
        const auto m = re.match(out);
        if (m.hasMatch()) return m.captured(1) + "/v1";
    }
    return {};
}

/// Mean prompt tokens per request, as the target reported them (-1: not every finished request reported one).
/// A request whose few random-model tokens held no visible text ends as an error over HTTP (no first token to
/// time); the others still carry the prompt's count.
double promptPerRequest(const wb::LoadTestResult& r) {
    if (r.promptTokensReported != r.requests - r.errors || r.promptTokensReported == 0) return -1;
    return double(r.promptTokens) / double(r.promptTokensReported);
}

/// The warnings a comparison of these two runs of one workload would carry.
std::vector<std::string> warningsOf(const wb::LoadTestResult& a, const wb::LoadTestResult& b, const wb::LoadTestOptions& o) {
    auto run = [&](const char* label, const wb::LoadTestResult& r) {
        return nlohmann::json{{"label", label}, {"input_tokens", o.inputTokens}, {"output_tokens", o.outputTokens},
                              {"seed", o.seed}, {"results", {wb::loadTestJson(r, true)}}};
    };
    return wb::promptTokenWarnings({{"runs", {run("workbench", a), run("HF Transformers", b)}}});
}

class TstModelHfServe : public QObject {
    Q_OBJECT
private:
    QProcess m_proc;
    QString m_baseUrl, m_hostPort, m_out;

    std::unique_ptr<wb::PluginTarget> openPlugin(wb::TargetPluginRegistry& reg, const wb::RemoteTargetConfig& rc) {
        reg.scan({WB_PLUGIN_BUILD_DIR});
        auto plugin = reg.find("transformers");
        if (!plugin) return nullptr;
        auto t = plugin->open(rc);
        if (!t) qWarning("%s", t.error().message.c_str());
        return t ? std::move(*t) : nullptr;
    }

    nlohmann::json postJson(const std::string& path, const std::string& body, int* status) {
        // A non-streamed answer: the SSE client hands back the start of a non-200 body; a 200 JSON body has no
        // data: lines, so the bad-request checks below read errorBody only.
        const wb::http::SseOutcome r =
            wb::http::postStreaming(m_hostPort.toStdString(), path, "", body, [](const std::string&) {}, 30);
        *status = r.status;
        return nlohmann::json::parse(r.errorBody, nullptr, false);
    }

private slots:
    void initTestCase() {
        WB_REQUIRE_FIXTURE(kModel);
        const bool required = qEnvironmentVariable("WB_REQUIRE_HF_KIT") == "1";
        QProcess probe;
        probe.setProcessEnvironment(pythonEnv());
        probe.setProcessChannelMode(QProcess::MergedChannels);
        probe.start(python(), {"-c", "import torch, transformers; print(transformers.__version__)"});
        const bool ok = probe.waitForFinished(60000) && probe.exitStatus() == QProcess::NormalExit &&
                        probe.exitCode() == 0;
        if (!ok) {
            const QString why = QStringLiteral("HF Transformers kit not set up (%1: 'import torch, transformers' "
                                               "failed: %2); run bash ../shared/hf-reference/setup.sh, or set "
                                               "WB_HF_PYTHON / WB_HF_PYTHONPATH")
                                    .arg(python(), QString::fromUtf8(probe.readAll()).trimmed().right(200));
            if (required) QFAIL(qPrintable(why));
            QSKIP(qPrintable(why));
        }

        m_baseUrl = startHfServe(m_proc, QString::fromStdString(wbtest::fixture(kModel)), "stories260K-hf", m_out);
        QVERIFY2(!m_baseUrl.isEmpty(), qPrintable("hf_serve.py did not start:\n" + m_out));
        m_hostPort = m_baseUrl.chopped(3);
    }

    void streamedChatThroughTheEngineClient() {
        // Greedy stories260K from BOS + "Once upon a time" (../shared/fixtures/README.md: llama2.c, llama.cpp and
        // a reference forward agree): 11 tokens are ", there was a little girl named Lily."
        const nlohmann::json body{{"model", "stories260K-hf"},
                                  {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                  {"max_tokens", 11},
                                  {"temperature", 0},
                                  {"stream", true},
                                  {"stream_options", {{"include_usage", true}}}};
        std::string content, finish;
        int contentChunks = 0;
        nlohmann::json usage;
        bool done = false;
        const wb::http::SseOutcome r = wb::http::postStreaming(
            m_hostPort.toStdString(), "/v1/chat/completions", "", body.dump(),
            [&](const std::string& payload) {
                const wb::http::StreamChunk c = wb::http::readStreamChunk(payload);
                if (c.kind == wb::http::StreamChunk::Kind::Done) done = true;
                if (c.kind != wb::http::StreamChunk::Kind::Object) return;
                const nlohmann::json& j = c.object;
                QCOMPARE(QString::fromStdString(j.value("object", "")), QStringLiteral("chat.completion.chunk"));
                if (j.contains("usage")) usage = j["usage"];
                if (!j["choices"].empty()) {
                    const auto& ch = j["choices"][0];
                    if (ch["delta"].contains("content") && !ch["delta"]["content"].get<std::string>().empty()) {
                        content += ch["delta"]["content"].get<std::string>();
                        ++contentChunks;
                    }
                    if (ch["finish_reason"].is_string()) finish = ch["finish_reason"];
                }
            },
            60);
        QVERIFY2(r.transportError.empty(), r.transportError.c_str());
        QCOMPARE(r.status, 200);
        QVERIFY(done);
        QCOMPARE(QString::fromStdString(content), QStringLiteral(", there was a little girl named Lily."));
        QVERIFY2(contentChunks >= 8, "the text must arrive as it is generated, not in one piece");
        QCOMPARE(QString::fromStdString(finish), QStringLiteral("length"));
        QVERIFY(usage.is_object());
        QCOMPARE(usage.value("prompt_tokens", -1), 5);  // BOS + 4 pieces
        QCOMPARE(usage.value("completion_tokens", -1), 11);
        QCOMPARE(usage.value("total_tokens", -1), 16);
    }

    void loadTestThroughThePlugin() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        auto plugin = reg.find("transformers");
        QVERIFY(plugin);
        wb::RemoteTargetConfig rc;
        rc.url = m_baseUrl.toStdString();
        auto t = plugin->open(rc);
        QVERIFY2(t, t ? "" : t.error().message.c_str());
        wb::PluginTarget& target = **t;
        QCOMPARE(QString::fromStdString(target.modelName()), QStringLiteral("stories260K-hf"));
        std::string detail;
        QVERIFY2(target.healthy(&detail), detail.c_str());

        wb::ServerSampler sampler(target, 50);
        wb::LoadTestOptions lo;
        lo.concurrency = 2;
        lo.numRequests = 4;
        lo.inputTokens = 16;  // token-id prompts (/v1/completions), ignore_eos: exactly 8 tokens each
        lo.outputTokens = 8;
        lo.vocabSize = 512;
        const wb::LoadTestResult r = wb::runLoadTest(target, lo);
        const wb::ServerSample peak = sampler.stop();
        QCOMPARE(r.errors, 0);
        QCOMPARE(r.requests, 4);
        QCOMPARE(r.outputTokens, int64_t(32));
        QVERIFY(r.ttftMs.mean > 0);
        // The server's own peak RSS, read from its /metrics by name: a Python + torch process is > 50 MB.
        QVERIFY2(peak.memoryBytes.has_value(), peak.memorySource.c_str());
        QCOMPARE(QString::fromStdString(peak.memorySource), QStringLiteral("hf_serve_peak_rss_bytes"));
        QVERIFY(*peak.memoryBytes > 50e6);
        QVERIFY(!peak.kvUsage.has_value());  // n/a, never estimated

        QCOMPARE(QString::fromStdString(plugin->launchLine({{"model", "/m"}, {"dtype", "bfloat16"},
                                                            {"max_batch", "8"}, {"port", "8001"}})),
                 QStringLiteral("python3 tools/hf-serve/hf_serve.py --model /m --dtype bfloat16 --max-batch 8 "
                                "--port 8001"));
    }

    void cliPresetThroughThePlugin() {
        // `wb bench --preset article` against this server: the preset's concurrency levels (1, 4, 8; the token
        // counts made small here), the transformers plugin, its memory source, one comparison file.
        QTemporaryDir dir;
        const QString file = dir.filePath("article.json");
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(WB_EXE, {"bench", "--preset", "article", "--url", m_baseUrl, "--target", "transformers", "-m",
                         QString::fromStdString(wbtest::fixture("models/stories260K/stories260K.gguf")), "--input",
                         "8", "--output", "4", "--requests", "4", "--warmup", "0", "--precision", "fp32", "--label",
                         "HF Transformers (fp32)", "--append-to", file});
        QVERIFY(p.waitForFinished(180000));
        const QByteArray out = p.readAll();
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, out.constData());
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const nlohmann::json doc = nlohmann::json::parse(f.readAll().toStdString());
        QCOMPARE(int(doc["runs"].size()), 1);
        const nlohmann::json& run = doc["runs"][0];
        QCOMPARE(QString::fromStdString(run["preset"]), QStringLiteral("article"));
        QCOMPARE(QString::fromStdString(run["plugin"]), QStringLiteral("transformers"));
        QCOMPARE(int(run["results"].size()), 3);
        const int levels[] = {1, 4, 8};
        for (int i = 0; i < 3; ++i) {
            QCOMPARE(run["results"][i].value("concurrency", 0), levels[i]);
            QCOMPARE(run["results"][i].value("errors", -1), 0);
        }
        QCOMPARE(QString::fromStdString(run["memory"]["source"]), QStringLiteral("hf_serve_peak_rss_bytes"));
        QVERIFY(run["memory"]["peak_bytes"].get<double>() > 50e6);
    }

    // The article's workload shape (token ids) on stories260K: this engine in process and Transformers through the
    // plugin get the same ids and each reports its own count of them: the same.
    void tokenIdWorkloadCountsTheSamePromptTokens() {
        wb::EngineOptions eo;
        eo.modelPath = wbtest::fixture("models/stories260K/stories260K.gguf");
        eo.load.numThreads = 1;
        eo.kvCacheBytes = 16 << 20;
        auto engine = wb::Engine::create(eo);
        QVERIFY2(engine, engine ? "" : engine.error().message.c_str());
        wb::LoadTestOptions lo;
        lo.numRequests = 3;
        lo.inputTokens = 24;
        lo.outputTokens = 2;
        lo.warmupRequests = 0;
        lo.vocabSize = 512;
        wb::EngineTarget local(**engine);
        const wb::LoadTestResult a = wb::runLoadTest(local, lo);
        wb::TargetPluginRegistry reg;
        wb::RemoteTargetConfig rc;
        rc.url = m_baseUrl.toStdString();
        auto remote = openPlugin(reg, rc);
        QVERIFY(remote);
        const wb::LoadTestResult b = wb::runLoadTest(*remote, lo);
        QCOMPARE(a.errors, 0);
        QCOMPARE(b.errors, 0);
        QCOMPARE(promptPerRequest(a), 24.0);
        QCOMPARE(promptPerRequest(b), 24.0);  // the server's usage, not the ids' count standing in for it
        QVERIFY(warningsOf(a, b, lo).empty());
    }

    // The image workload of docs/BENCHMARKS.md on a tiny GLM-4.1V: this engine in process and Glm4v behind hf_serve
    // get one chat (the image, then 32 tokens of text) and count the same prompt tokens, chat template and image
    // included. Random ids decoded to text, as the bench once drew them, do not: that pair is warned about.
    void imageWorkloadCountsTheSamePromptTokens() {
        WB_REQUIRE_FIXTURE("images/llama_cute.jpg");
        const QString glm = QString::fromStdString(wbtest::tempDir()) + "/glm4v";
        QProcess make;
        make.setProcessChannelMode(QProcess::MergedChannels);
        make.start(WB_MAKE_MODEL, {"--arch", "glm4v", "--out", glm});
        QVERIFY(make.waitForFinished(120000));
        QVERIFY2(make.exitStatus() == QProcess::NormalExit && make.exitCode() == 0, make.readAll().constData());

        QProcess server;
        QString out;
        const QString url = startHfServe(server, glm, "glm4v-tiny", out);
        struct Stop {
            QProcess& p;
            ~Stop() {
                p.terminate();
                if (!p.waitForFinished(15000)) {
                    p.kill();
                    p.waitForFinished(5000);
                }
            }
        } stop{server};
        QVERIFY2(!url.isEmpty(), qPrintable("hf_serve.py did not start on the GLM folder:\n" + out));

        wb::EngineOptions eo;
        eo.modelPath = glm.toStdString();
        eo.load.numThreads = 1;
        eo.kvCacheBytes = 16 << 20;
        auto engine = wb::Engine::create(eo);
        QVERIFY2(engine, engine ? "" : engine.error().message.c_str());
        auto tok = wb::Tokenizer::fromModelPath(glm.toStdString());  // as `wb bench -m GLM_DIR` loads it
        QVERIFY2(tok, tok ? "" : tok.error().message.c_str());
        const wb::Tokenizer* remoteTok = tok->get();
        auto images = wb::ImageWorkload::fromFiles({wbtest::fixture("images/llama_cute.jpg")});
        QVERIFY2(images, images ? "" : images.error().message.c_str());

        wb::TargetPluginRegistry reg;
        wb::RemoteTargetConfig rc;
        rc.url = url.toStdString();
        rc.endpoint = "chat";
        rc.detokenize = [remoteTok](const std::vector<int32_t>& ids) { return remoteTok->decode(ids); };
        auto remote = openPlugin(reg, rc);
        QVERIFY(remote);
        QVERIFY(remote->acceptsImages());
        wb::EngineTarget local(**engine);

        wb::LoadTestOptions lo;
        lo.numRequests = 2;
        lo.inputTokens = 32;
        lo.outputTokens = 2;
        lo.warmupRequests = 0;
        lo.vocabSize = int(remoteTok->vocabSize());
        lo.images = images->get();
        lo.textPrompts = &(*engine)->tokenizer();
        const wb::LoadTestResult a = wb::runLoadTest(local, lo);
        lo.textPrompts = remoteTok;
        const wb::LoadTestResult b = wb::runLoadTest(*remote, lo);
        QVERIFY2(a.errors == 0 && b.errors < b.requests, (a.firstError + b.firstError).c_str());
        QVERIFY(a.textPrompts && b.textPrompts);
        const double pa = promptPerRequest(a), pb = promptPerRequest(b);
        QVERIFY2(pa > 32 && pa == pb, qPrintable(QString("in process %1, Transformers %2").arg(pa).arg(pb)));
        QCOMPARE(a.promptTokensMin, b.promptTokensMin);
        QCOMPARE(a.promptTokensMax, b.promptTokensMax);
        QVERIFY(warningsOf(a, b, lo).empty());

        // The old prompts: random ids [100, vocab), decoded. In process their bytes stay bytes; in JSON each byte
        // that is not UTF-8 becomes U+FFFD, three tokens of this vocabulary. The counts part, and the comparison
        // says so.
        lo.textPrompts = nullptr;
        const wb::LoadTestResult c = wb::runLoadTest(local, lo);
        const wb::LoadTestResult d = wb::runLoadTest(*remote, lo);
        QVERIFY2(c.errors == 0 && d.errors < d.requests, (c.firstError + d.firstError).c_str());
        const double pc = promptPerRequest(c), pd = promptPerRequest(d);
        QVERIFY2(pd - pc > wb::kPromptTokenTolerance,
                 qPrintable(QString("random ids: in process %1, Transformers %2").arg(pc).arg(pd)));
        const std::vector<std::string> w = warningsOf(c, d, lo);
        QCOMPARE(w.size(), size_t(1));
        qInfo("prompt tokens per request: round-trip text %.1f in process, %.1f at Transformers; random ids %.1f "
              "in process, %.1f at Transformers",
              pa, pb, pc, pd);
    }

    void badRequestsAreClearErrors() {
        int status = 0;
        nlohmann::json j = postJson("/v1/completions", R"({"prompt": [1, 99999], "max_tokens": 2})", &status);
        QCOMPARE(status, 400);
        QVERIFY(QString::fromStdString(j["error"]["message"]).contains("outside the vocabulary"));
        j = postJson("/v1/completions", "{not json", &status);
        QCOMPARE(status, 400);
        QVERIFY(QString::fromStdString(j["error"]["message"]).contains("not JSON"));
        j = postJson("/v1/completions", R"({"prompt": [1, 2], "max_tokens": 5000})", &status);
        QCOMPARE(status, 400);
        QVERIFY(QString::fromStdString(j["error"]["message"]).contains("context of 2048"));
        j = postJson("/v1/chat/completions", R"({"messages": "hi"})", &status);
        QCOMPARE(status, 400);
    }

    void cleanupTestCase() {
        if (m_proc.state() == QProcess::NotRunning) return;
        m_proc.terminate();
        const bool stopped = m_proc.waitForFinished(15000);
        if (!stopped) {
            m_proc.kill();
            m_proc.waitForFinished(5000);
        }
        m_out += QString::fromUtf8(m_proc.readAll());
        QVERIFY2(stopped, "hf_serve.py did not stop within 15 s of SIGTERM");
        QCOMPARE(m_proc.exitStatus(), QProcess::NormalExit);
        QCOMPARE(m_proc.exitCode(), 0);
        QVERIFY2(m_out.contains("hf-serve: stopped"), qPrintable(m_out.right(2000)));
    }
};

QTEST_GUILESS_MAIN(TstModelHfServe)
#include "tst_model_hf_serve.moc"
