// Comparison-target plugins: every shipped plugin loads with sane metadata; each kind of broken plugin is reported
// and skipped without hiding the good ones; the generic and vLLM plugins drive `wb serve` on the stories260K
// fixture through the same load test as `wb bench`; and the CLI lists them and benchmarks through one.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "api/load_test.h"
#include "media/image.h"
#include "fixtures.h"
#include "api/target_plugins.h"
#include "api/tokenizer.h"
#include "serve_process.h"

namespace {
const char* kModel = "models/stories260K/stories260K.gguf";

QString runWb(const QStringList& args, int* rc) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(WB_EXE, args);
    p.waitForFinished(120000);
    *rc = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return QString::fromUtf8(p.readAll());
}
}  // namespace

class TstModelPlugins : public QObject {
    Q_OBJECT
private:
    wbtest::ServeProcess m_serve;
    QTemporaryDir m_tmp;

private slots:
    void initTestCase() {
        WB_REQUIRE_FIXTURE(kModel);
        QVERIFY2(m_serve.start(WB_EXE, QString::fromStdString(wbtest::fixture(kModel))), qPrintable(m_serve.log()));
    }

    void shippedPluginsLoad() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        for (const auto& p : reg.problems()) qWarning("%s: %s", p.path.c_str(), p.reason.c_str());
        QVERIFY(reg.problems().empty());
        for (const char* id : {"openai", "vllm", "trtllm", "sglang", "llamacpp", "ollama", "transformers"}) {
            auto p = reg.find(id);
            QVERIFY2(p, id);
            QVERIFY(!p->info().name.empty());
            QCOMPARE(p->info().version, std::string("1.0.0"));
            QVERIFY(!p->info().launchTemplate.empty());
            QVERIFY(!p->info().healthProbe.empty());
        }
        auto vllm = reg.find("vllm");
        QCOMPARE(vllm->launchLine({{"model", "zai-org/AutoGLM-Phone-9B"}, {"tp", "2"}, {"dtype", "float16"},
                                   {"max_len", "2048"}, {"port", "8000"}}),
                 std::string("vllm serve zai-org/AutoGLM-Phone-9B --tensor-parallel-size 2 --dtype float16 "
                             "--max-model-len 2048 --port 8000"));
    }

    void brokenPluginsAreReportedAndSkipped() {
        wb::TargetPluginRegistry reg;
        // The broken folder first: a good plugin scanned after bad ones must still load.
        reg.scan({WB_BROKEN_PLUGIN_DIR, WB_PLUGIN_BUILD_DIR});
        QVERIFY(reg.find("openai"));
        QVERIFY(!reg.find("broken"));
        QVERIFY(!reg.find("broken4"));
        auto reasonFor = [&](const QString& file) {
            for (const auto& p : reg.problems())
                if (QString::fromStdString(p.path).endsWith(file)) return QString::fromStdString(p.reason);
            return QString();
        };
        QVERIFY2(reasonFor("libwb_broken_plugin_1.so").contains("incompatible API version 43"),
                 qPrintable(reasonFor("libwb_broken_plugin_1.so")));
        QVERIFY(reasonFor("libwb_broken_plugin_2.so").contains("missing symbol wbTargetPluginEntry"));
        QVERIFY(reasonFor("libwb_broken_plugin_3.so").contains("not valid JSON"));
        QVERIFY(reasonFor("libwb_broken_plugin_4.so").contains("compatVersion 2.0.0 is newer"));
        QVERIFY(reasonFor("libwb_broken_plugin_5.so").contains("lacks a function"));
        QVERIFY2(reasonFor("libwb_broken_plugin_6.so").contains("version-2 table lacks startChat"),
                 qPrintable(reasonFor("libwb_broken_plugin_6.so")));
        // A version-1 plugin (built before startChat) still loads, as version 1: ids and images only.
        QVERIFY2(reasonFor("libwb_broken_plugin_7.so").isEmpty(), qPrintable(reasonFor("libwb_broken_plugin_7.so")));
        auto legacy = reg.find("legacy1");
        QVERIFY(legacy);
        QCOMPARE(legacy->apiVersion(), 1u);
        QCOMPARE(reg.find("openai")->apiVersion(), uint32_t(WB_TARGET_PLUGIN_API_VERSION));
        QVERIFY(reasonFor("libnot_a_library.so").contains("cannot load"));
        // A second copy of a plugin of the same version is reported, not loaded twice.
        QVERIFY(!reg.loadFile(std::string(WB_PLUGIN_BUILD_DIR) + "/libwbtarget_vllm.so"));
        QVERIFY(QString::fromStdString(reg.problems().back().reason).contains("already loaded"));
    }

    void genericPluginDrivesWbServe() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        auto plugin = reg.find("openai");
        QVERIFY(plugin);
        wb::RemoteTargetConfig rc;
        rc.url = m_serve.baseUrl().toStdString();
        auto t = plugin->open(rc);
        QVERIFY2(t, t ? "" : t.error().message.c_str());
        wb::PluginTarget& target = **t;
        QCOMPARE(QString::fromStdString(target.modelName()), QStringLiteral("stories260K"));
        std::string detail;
        QVERIFY2(target.healthy(&detail), detail.c_str());

        wb::ServerSampler sampler(target, 50);
        wb::LoadTestOptions lo;
        lo.concurrency = 2;
        lo.numRequests = 4;
        lo.inputTokens = 16;
        lo.outputTokens = 8;
        lo.vocabSize = 512;
        const wb::LoadTestResult r = wb::runLoadTest(target, lo);
        const wb::ServerSample peak = sampler.stop();
        QCOMPARE(r.errors, 0);
        QCOMPARE(r.requests, 4);
        QCOMPARE(r.outputTokens, int64_t(32));
        QVERIFY(r.ttftMs.mean > 0);
        QCOMPARE(int(r.e2eSamplesMs.size()), 4);
        // wb serve reports its peak memory and KV use on /metrics; the plugin reads them, it does not guess.
        QVERIFY(peak.memoryBytes && *peak.memoryBytes > 0);
        QCOMPARE(QString::fromStdString(peak.memorySource), QStringLiteral("wb_peak_memory_bytes"));
        QVERIFY(peak.kvUsage && *peak.kvUsage >= 0 && *peak.kvUsage <= 1);
        QCOMPARE(QString::fromStdString(peak.kvSource), QStringLiteral("wb_kv_cache_usage_perc"));
    }

    // Images through a plugin (the optional startImages entry): they reach the server as image_url parts of a
    // chat message. stories260K is text-only, so wb serve refuses each request with its 400 naming images: the
    // proof they were sent. A plugin opened for /completions cannot carry them and says so.
    void pluginSendsImages() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        auto plugin = reg.find("openai");
        QVERIFY(plugin);
        wb::Image img;
        img.width = 32;
        img.height = 24;
        img.rgb.assign(size_t(32 * 24 * 3), 90);
        auto png = wb::encodePng(img);
        QVERIFY(png.ok());
        auto images = wb::ImageWorkload::create({*png});
        QVERIFY(images.ok());
        wb::LoadTestOptions lo;
        lo.concurrency = 1;
        lo.numRequests = 2;
        lo.inputTokens = 8;
        lo.outputTokens = 2;
        lo.vocabSize = 512;
        lo.warmupRequests = 0;
        lo.images = images->get();
        wb::RemoteTargetConfig rc;
        rc.url = m_serve.baseUrl().toStdString();
        rc.endpoint = "chat";
        auto chat = plugin->open(rc);
        QVERIFY2(chat, chat ? "" : chat.error().message.c_str());
        QVERIFY((*chat)->acceptsImages());
        const wb::LoadTestResult r = wb::runLoadTest(**chat, lo);
        QCOMPARE(r.errors, 2);
        QVERIFY2(r.firstError.find("does not accept images") != std::string::npos, r.firstError.c_str());

        rc.endpoint = "completions";
        auto completions = plugin->open(rc);
        QVERIFY(completions);
        wb::BenchRequest b;
        b.promptTokens = {1, 2, 3};
        b.maxTokens = 2;
        b.images = {std::make_shared<const std::vector<uint8_t>>(*png)};
        std::mutex mu;
        std::condition_variable cv;
        std::optional<wb::Event> got;
        (*completions)->start(b, [&](const wb::Event& e) {
            std::lock_guard l(mu);
            got = e;
            cv.notify_all();
        });
        std::unique_lock l(mu);
        QVERIFY(cv.wait_for(l, std::chrono::seconds(30), [&] { return got.has_value(); }));
        QVERIFY(got->type == wb::EventType::Error);
        QVERIFY2(got->text.find("chat endpoint") != std::string::npos, got->text.c_str());
    }

    // API version 2: with the model's tokenizer, a chat workload reaches the server as the chat the engine target
    // gets (startChat): the prompt ids decoded to text, not the ids or filler words. wb serve's own prompt count
    // proves it: the decoded sentence costs as many tokens as it was made of (±1 for the SentencePiece space),
    // against an empty text; with images, the same chat carries them as image_url parts (stories260K is text-only,
    // so wb serve's 400 naming images is the proof they were sent).
    void pluginSendsTheWorkloadsChat() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        auto plugin = reg.find("openai");
        QVERIFY(plugin);
        QCOMPARE(plugin->apiVersion(), 2u);
        auto tok = wb::Tokenizer::fromModelPath(wbtest::fixture(kModel));
        QVERIFY2(tok, tok ? "" : tok.error().message.c_str());
        const wb::Tokenizer* tk = tok->get();
        const std::vector<int32_t> ids =
            tk->encode("Once upon a time there was a little girl named Lily", false, wb::SpecialTokens::Plain);
        QVERIFY(ids.size() > 5);

        auto ask = [&](std::function<std::string(const std::vector<int32_t>&)> detok, bool withImage,
                       wb::Event* out) -> bool {
            wb::RemoteTargetConfig rc;
            rc.url = m_serve.baseUrl().toStdString();
            rc.endpoint = "chat";
            rc.detokenize = std::move(detok);
            auto t = plugin->open(rc);
            if (!t) return false;
            wb::BenchRequest b;
            b.promptTokens = ids;
            b.maxTokens = 2;
            if (withImage) {
                wb::Image img;
                img.width = 16;
                img.height = 16;
                img.rgb.assign(size_t(16 * 16 * 3), 40);
                auto png = wb::encodePng(img);
                if (!png) return false;
                b.images = {std::make_shared<const std::vector<uint8_t>>(*png)};
            }
            std::mutex mu;
            std::condition_variable cv;
            std::optional<wb::Event> got;
            (*t)->start(b, [&](const wb::Event& e) {
                std::lock_guard l(mu);
                got = e;
                cv.notify_all();
            });
            std::unique_lock l(mu);
            if (!cv.wait_for(l, std::chrono::seconds(60), [&] { return got.has_value(); })) return false;
            *out = *got;
            return true;
        };
        wb::Event real, empty, image;
        QVERIFY(ask([tk](const std::vector<int32_t>& v) { return tk->decode(v); }, false, &real));
        QVERIFY2(real.type == wb::EventType::Finished, real.text.c_str());
        QVERIFY(ask([](const std::vector<int32_t>&) { return std::string(); }, false, &empty));
        QVERIFY2(empty.type == wb::EventType::Finished, empty.text.c_str());
        const int64_t textTokens = real.usage.promptTokens - empty.usage.promptTokens;
        QVERIFY2(std::abs(textTokens - int64_t(ids.size())) <= 1,
                 qPrintable(QStringLiteral("%1 text tokens for %2 ids").arg(textTokens).arg(ids.size())));
        QVERIFY(ask([tk](const std::vector<int32_t>& v) { return tk->decode(v); }, true, &image));
        QVERIFY(image.type == wb::EventType::Error);
        QVERIFY2(image.text.find("does not accept images") != std::string::npos, image.text.c_str());
    }

    void vllmFlavourSaysNaWhereNotReported() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        wb::RemoteTargetConfig rc;
        rc.url = m_serve.baseUrl().toStdString();
        auto t = reg.find("vllm")->open(rc);
        QVERIFY(t);
        QVERIFY((*t)->healthy());  // wb serve has /health like vLLM
        const wb::ServerSample s = (*t)->sample();
        QVERIFY(!s.memoryBytes);
        QVERIFY(!s.kvUsage);  // wb serve has no vllm:* series: n/a, not someone else's number
        QVERIFY(QString::fromStdString(s.memorySource).startsWith("n/a"));
        QVERIFY(QString::fromStdString(s.kvSource).startsWith("n/a"));
    }

    void unreachableServerIsAnError() {
        wb::TargetPluginRegistry reg;
        reg.scan({WB_PLUGIN_BUILD_DIR});
        wb::RemoteTargetConfig rc;
        rc.url = "http://127.0.0.1:1/v1";
        auto t = reg.find("trtllm")->open(rc);
        QVERIFY(!t);
        QVERIFY(QString::fromStdString(t.error().message).contains("cannot be reached"));
    }

    // wb bench --image from the command line: it is a serving workload whatever else is given; a file that is not
    // an image, or a corrupt one, is named; a text-only model, in process or behind wb serve, refuses the workload
    // rather than timing the text alone.
    void cliImageWorkload() {
        const QString model = QString::fromStdString(wbtest::fixture(kModel));
        const QString notImage = m_tmp.filePath("note.png");
        {
            QFile f(notImage);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("not a picture");
        }
        int rc = 0;
        QString out = runWb({"bench", "-m", model, "--image", notImage}, &rc);
        QVERIFY(rc != 0);
        QVERIFY2(out.contains(notImage + " is not a PNG or JPEG image"), qPrintable(out));

        wb::Image img;
        img.width = 40;
        img.height = 30;
        img.rgb.assign(size_t(40 * 30 * 3), 200);
        auto png = wb::encodePng(img);
        QVERIFY(png.ok());
        const QString good = m_tmp.filePath("shot.png"), cut = m_tmp.filePath("cut.png");
        for (const auto& [path, n] : {std::pair{good, png->size()}, std::pair{cut, size_t(60)}}) {
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(reinterpret_cast<const char*>(png->data()), qint64(n));
        }
        out = runWb({"bench", "-m", model, "--image", cut}, &rc);
        QVERIFY(rc != 0);
        QVERIFY2(out.contains(cut + ": corrupt PNG"), qPrintable(out));

        out = runWb({"bench", "-m", model, "-t", "2", "--requests", "2", "--input", "8", "--output", "2", "--image", good},
                    &rc);
        QVERIFY2(out.contains("cannot send images"), qPrintable(out));
        out = runWb({"bench", "--url", m_serve.baseUrl(), "--requests", "2", "--input", "8", "--output", "2",
                     "--vocab-size", "512", "--image", good, "--json"},
                    &rc);
        QVERIFY2(rc == 0, qPrintable(out));
        QVERIFY2(out.contains("does not accept images"), qPrintable(out));  // the server's 400, so they were sent
        QVERIFY2(out.contains("\"distinct_images\": true"), qPrintable(out));
    }

    void cliListsAndUsesTargets() {
        int rc = 0;
        QString out = runWb({"bench", "--list-targets", "--plugin-dir", WB_BROKEN_PLUGIN_DIR}, &rc);
        QCOMPARE(rc, 0);
        QVERIFY2(out.contains("vllm") && out.contains("vllm serve {model} --tensor-parallel-size {tp}"), qPrintable(out));
        QVERIFY(out.contains("trtllm") && out.contains("kvCacheStats"));
        QVERIFY(out.contains("skipped") && out.contains("incompatible API version 43"));

        const QString file = m_tmp.filePath("cmp.json");
        out = runWb({"bench", "--target", "vllm", "--url", m_serve.baseUrl(), "--concurrency", "1,2", "--requests",
                     "2", "--input", "16", "--output", "8", "--vocab-size", "512", "--append-to", file},
                    &rc);
        QVERIFY2(rc == 0, qPrintable(out));
        QVERIFY2(out.contains("peak memory: n/a") && out.contains("peak KV-cache use: n/a"), qPrintable(out));
        out = runWb({"bench", "--target", "trtllm", "--url", "http://127.0.0.1:1/v1", "--append-to", file}, &rc);
        QVERIFY(rc != 0);
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonArray runs = QJsonDocument::fromJson(f.readAll()).object().value("runs").toArray();
        QCOMPARE(runs.size(), 2);
        QCOMPARE(runs[0].toObject().value("plugin").toString(), QStringLiteral("vllm"));
        QCOMPARE(runs[0].toObject().value("results").toArray().size(), 2);
        QVERIFY(runs[0].toObject().value("memory").toObject().value("peak_bytes").isNull());
        QVERIFY(runs[1].toObject().value("error").toString().contains("cannot be reached"));
        out = runWb({"bench", "--report", file, "--format", "md"}, &rc);
        QVERIFY(out.contains("| vLLM (stories260K) |") && out.contains("unreachable"));
    }
};

QTEST_GUILESS_MAIN(TstModelPlugins)
#include "tst_model_plugins.moc"
