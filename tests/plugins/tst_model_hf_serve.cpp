// The HF Transformers comparison target (issue #18): tools/hf-serve/hf_serve.py starts on the stories260K HF
// folder, answers a streamed chat request through the engine's own SSE client with Transformers' greedy text and
// the server's usage, serves a load test through the "transformers" plugin (reporting its own peak RSS) and
// `wb bench --preset article`, turns bad requests into 400s, and stops cleanly on SIGTERM.
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

#include "api/http_target.h"
#include "api/load_test.h"
#include "api/target_plugins.h"
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

class TstModelHfServe : public QObject {
    Q_OBJECT
private:
    QProcess m_proc;
    QString m_baseUrl, m_hostPort, m_out;

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

        m_proc.setProcessEnvironment(pythonEnv());
        m_proc.setProcessChannelMode(QProcess::MergedChannels);
        m_proc.start(python(), {QStringLiteral(WB_SOURCE_DIR "/tools/hf-serve/hf_serve.py"), "--model",
                                QString::fromStdString(wbtest::fixture(kModel)), "--port", "0", "--threads", "1",
                                "--max-batch", "4", "--name", "stories260K-hf"});
        QVERIFY(m_proc.waitForStarted(10000));
        static const QRegularExpression re("listening on (http://(\\S+))/v1");
        QElapsedTimer t;
        t.start();
        while (t.elapsed() < 120000 && m_proc.state() == QProcess::Running) {
            m_proc.waitForReadyRead(200);
            m_out += QString::fromUtf8(m_proc.readAll());
            const auto m = re.match(m_out);
            if (m.hasMatch()) {
                m_baseUrl = m.captured(1) + "/v1";
                m_hostPort = m.captured(1);
                break;
            }
        }
        QVERIFY2(!m_baseUrl.isEmpty(), qPrintable("hf_serve.py did not start:\n" + m_out));
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
