// The workbench driven through its real widgets (offscreen) with the stories260K fixture: load, chat with a
// streamed answer while the event loop keeps serving a 10 ms timer, stop, regenerate, edit, restart and find
// the chat again, a broken model file, the charts, the input panel, a GLM card planned from config.json alone,
// and screenshots of each main view.
#include <QApplication>
#include <QAction>
#include <QTextCursor>
#include <QFontDatabase>
#include <QSettings>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QImageReader>
#include <QThreadPool>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QScrollArea>
#include <QScrollBar>
#include <QPainter>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtEndian>
#include <QtTest>
#include <cmath>
#include <qcustomplot.h>
#include <memory>
#include <mutex>

#include "app/chat_view.h"
#include "app/compare_view.h"
#include "app/image_viewer.h"
#include "app/input_panel.h"
#include "app/theme.h"
#include "app/main_window.h"
#include "app/model_manager_view.h"
#include "app/perf_charts_view.h"
#include "backend/backend_registry.h"
#include "backend/fault_injecting_device.h"
#include "bridge/engine_bridge.h"
#include "bridge/model_info.h"
#include "fixtures.h"
#include "screenshots.h"
#include "media/glm4v_image_processor.h"
#include "media/image.h"
#include "models/glm/glm_gguf_export.h"
#include "models/glm/glm_tiny.h"

using namespace wbgui;

namespace {

const char* kModel = "models/stories260K/stories260K.gguf";

/// A 10 ms timer and the longest gap between its ticks: how long the GUI thread was kept from its loop.
class TickProbe {
public:
    TickProbe() {
        m_timer.setInterval(10);
        QObject::connect(&m_timer, &QTimer::timeout, [this] {
            const qint64 now = m_clock.nsecsElapsed();
            if (m_last >= 0) m_maxGapMs = qMax(m_maxGapMs, (now - m_last) / 1e6);
            m_last = now;
            ++m_ticks;
        });
    }
    void start() {
        m_ticks = 0;
        m_maxGapMs = 0;
        m_last = -1;
        m_clock.start();
        m_timer.start();
    }
    void stop() { m_timer.stop(); }
    int ticks() const { return m_ticks; }
    double maxGapMs() const { return m_maxGapMs; }
    double elapsedMs() const { return m_clock.nsecsElapsed() / 1e6; }

private:
    QTimer m_timer;
    QElapsedTimer m_clock;
    qint64 m_last = -1;
    int m_ticks = 0;
    double m_maxGapMs = 0;
};

// The longest the GUI thread may go without serving a 10 ms timer during an operation that takes `elapsedMs`: half
// of it, and never less than 100 ms. Work done on the GUI thread shows as one gap about as long as the operation,
// while the gaps measured with the work on other threads were 10-20 ms (once 42 ms) on 2 cores shared with other
// builds (load average 8); 100 ms leaves room for such a machine. The former fixed 400 ms passed a GUI thread
// blocked for up to 0.4 s whatever the operation took. (Operations shorter than 200 ms, like loading
// stories260K, are held by their own checks too: loadSelected must return within 100 ms.)
double allowedGapMs(double elapsedMs) { return std::max(100.0, elapsedMs / 2); }

using wbtest::saveScreenshot;  // into docs/screenshots only with WB_WRITE_SCREENSHOTS=1 (screenshots.h)

void writeWav(const QString& path, double seconds) {
    const int rate = 16000;
    const int n = int(rate * seconds);
    QByteArray pcm(n * 2, 0);
    for (int i = 0; i < n; ++i) {
        const double env = std::sin(M_PI * i / n);
        const qint16 v = qint16(20000 * env * std::sin(2 * M_PI * 220 * i / rate) * (0.6 + 0.4 * std::sin(i / 900.0)));
        qToLittleEndian<qint16>(v, pcm.data() + 2 * i);
    }
    QByteArray h("RIFF");
    auto u32 = [&h](quint32 v) { char b[4]; qToLittleEndian(v, b); h.append(b, 4); };
    auto u16 = [&h](quint16 v) { char b[2]; qToLittleEndian(v, b); h.append(b, 2); };
    u32(36 + pcm.size());
    h.append("WAVEfmt ");
    u32(16); u16(1); u16(1); u32(rate); u32(rate * 2); u16(2); u16(16);
    h.append("data");
    u32(pcm.size());
    QFile f(path);
    f.open(QIODevice::WriteOnly);
    f.write(h + pcm);
}

}  // namespace

class TstWorkbench : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    std::unique_ptr<MainWindow> m_window;
    QString m_modelPath;
    QString m_chatTitle;
    QString m_firstAnswer;
    int m_savedMessages = 2;  // messages the first chat holds when the window closes

    void openWindow() {
        m_window = std::make_unique<MainWindow>(m_tmp.path() + "/data");
        m_window->resize(1180, 760);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    }

    void waitScan(ModelManagerView* mm) { QTRY_VERIFY_WITH_TIMEOUT(!mm->isScanning(), 20000); }

    void addStoriesToLibrary(ModelManagerView* mm) {
        mm->addLibraryEntry(QFileInfo(m_modelPath).absolutePath());  // a folder: scanned for models
        waitScan(mm);
    }

    // What the earlier tests leave behind, for a test run alone (./tst_workbench inputPanel): a window with the
    // stories260K model loaded. Callers check QTest::currentTestFailed() after it.
    void ensureStoriesLoaded() {
        WB_REQUIRE_FIXTURE(kModel);
        if (!m_window) openWindow();
        if (m_window->bridge()->isLoaded() && !m_window->bridge()->loadedModel().acceptsImages) return;
        ModelManagerView* mm = m_window->modelManager();
        addStoriesToLibrary(mm);
        QVERIFY(mm->selectModel(m_modelPath));
        mm->setThreads(1);
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        mm->loadSelected();
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
    }

    GenerationResult waitFinished(QSignalSpy& spy) {
        [&] { QTRY_VERIFY_WITH_TIMEOUT(spy.count() > 0, 120000); }();
        return spy.isEmpty() ? GenerationResult{} : spy.takeFirst().at(0).value<GenerationResult>();
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        m_modelPath = QString::fromStdString(wbtest::fixture(kModel));
    }

    // The version is checked where a user sees it: the workbench_version test runs `workbench --version` and
    // matches the project's version (tests/CMakeLists.txt).
    void iconAndTabs() {
        openWindow();
        QVERIFY(!m_window->windowIcon().isNull());
        QVERIFY(m_window->storeError().isEmpty());
        QCOMPARE(m_window->tabs()->count(), 5);  // Models, Chat, Performance, Compare, Agent
        QCOMPARE(m_window->tabs()->tabText(4), QStringLiteral("Agent"));
    }

    void loadModelWithoutBlocking() {
        WB_REQUIRE_FIXTURE(kModel);
        if (!m_window) openWindow();
        ModelManagerView* mm = m_window->modelManager();
        mm->addLibraryEntry(QFileInfo(m_modelPath).absolutePath());  // a folder: scanned for models
        waitScan(mm);
        QVERIFY2(mm->selectModel(m_modelPath), qPrintable(mm->libraryEntries().join(',')));
        const ModelCard card = mm->selectedCard();
        QVERIFY2(card.ok(), qPrintable(card.error));
        QVERIFY(card.numParameters > 0);
        QVERIFY(card.numLayers > 0);
        const MemoryPlan plan = mm->currentPlan();
        QVERIFY(plan.weightBytes > 0 && plan.kvCacheBytes > 0 && plan.workspaceBytes > 0);
        QVERIFY(plan.fits());
        // The plan's figures for stories260K, from its shape (the fixtures README: 292,800 F32 parameters; 5
        // layers, 4 KV heads of 8, hidden 64, FFN 172, vocabulary 512): weights as stored, f32 keys and values
        // per token of context, and a 512-token step's activations plus a row of logits per sequence.
        QCOMPARE(card.numParameters, qint64(292'800));
        QCOMPARE(card.weightBytesByPrecision.value("native"), qint64(292'800) * 4);
        QCOMPARE(card.weightBytesByPrecision.value("fp32"), qint64(292'800) * 4);
        QVERIFY(card.weightBytesByPrecision.value("fp16") < card.weightBytesByPrecision.value("fp32") * 51 / 100);
        QCOMPARE(card.kvBytesPerToken, qint64(5 * 2 * 4 * 8 * 4));
        QCOMPARE(plan.weightBytes, card.weightBytesByPrecision.value(plan.precision));
        QCOMPARE(plan.kvCacheBytes, qint64(5 * 2 * 4 * 8 * 4) * plan.contextLength * plan.numSequences);
        QCOMPARE(plan.workspaceBytes, qint64(512) * (6 * 64 + 3 * 172) * 4 + plan.numSequences * 512 * 4);
        // A plan bigger than the machine is reported with its shortfall.
        const MemoryPlan huge = planMemory(card, "fp32", card.contextLength, 1, 1024);
        QVERIFY(!huge.fits());
        QCOMPARE(huge.shortfallBytes(), huge.totalBytes() - 1024);

        mm->setThreads(1);  // leave the other core to the GUI thread on small CI machines
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        TickProbe probe;
        probe.start();
        QElapsedTimer call;
        call.start();
        mm->loadSelected();
        QVERIFY2(call.elapsed() < 100, "loadSelected returned only after the load");
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
        probe.stop();
        qInfo("load: %.0f ms, %d ticks, max gap %.1f ms", probe.elapsedMs(), probe.ticks(), probe.maxGapMs());
        QVERIFY2(probe.maxGapMs() < allowedGapMs(probe.elapsedMs()),
                 qPrintable(QString("max gap %1 ms over %2 ms").arg(probe.maxGapMs()).arg(probe.elapsedMs())));
        QVERIFY(m_window->bridge()->isLoaded());
        QVERIFY(mm->errorText().isEmpty());
        QVERIFY(mm->statusText().contains("Loaded"));
        QCOMPARE(m_window->tabs()->currentWidget(), static_cast<QWidget*>(m_window->chatView()));
        m_window->tabs()->setCurrentWidget(mm);
        saveScreenshot(m_window.get(), "models");
    }

    void chatStreamsWhileTimersRun() {
        WB_REQUIRE_FIXTURE(kModel);
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        m_window->tabs()->setCurrentWidget(chat);
        SamplingSettings s;
        s.temperature = 0.8;
        s.maxTokens = 400;
        s.seed = 42;
        chat->setSampling(s);
        chat->setSystemPrompt("You tell short stories.");
        QSignalSpy deltas(m_window->bridge(), &EngineBridge::textDelta);
        QSignalSpy done(chat, &ChatView::generationFinished);
        // Partial text seen by the view between events: the answer streams rather than arriving whole.
        int partialSeen = 0;
        QTimer watch;
        watch.setInterval(5);
        QObject::connect(&watch, &QTimer::timeout, [&] {
            if (chat->isGenerating() && !chat->streamingText().isEmpty()) ++partialSeen;
        });
        TickProbe probe;
        probe.start();
        watch.start();
        QVERIFY(chat->send("Once upon a time there was a little dog"));
        QVERIFY(chat->isGenerating());
        const GenerationResult r = waitFinished(done);
        watch.stop();
        probe.stop();
        qInfo("generation: %lld tokens, TTFT %.1f ms, %.0f tok/s, %lld deltas; %d ticks over %.0f ms, max gap %.1f ms, "
              "partial text seen %d times",
              r.completionTokens, r.ttftMs, r.tokensPerSecond(), qlonglong(deltas.count()), probe.ticks(),
              probe.elapsedMs(), probe.maxGapMs(), partialSeen);
        QVERIFY(r.completionTokens > 0);
        QVERIFY(deltas.count() > 1);
        QVERIFY2(partialSeen > 0, "the view never showed a partial answer");
        QVERIFY2(probe.maxGapMs() < allowedGapMs(probe.elapsedMs()),
                 qPrintable(QString("max gap %1 ms over %2 ms").arg(probe.maxGapMs()).arg(probe.elapsedMs())));
        QVERIFY(probe.ticks() >= 1);
        const QList<MessageWidget*> ws = chat->messageWidgets();
        QCOMPARE(ws.size(), 2);
        QCOMPARE(ws[0]->message().role, QString("user"));
        QCOMPARE(ws[1]->message().role, QString("assistant"));
        QVERIFY(!ws[1]->message().content.isEmpty());
        QVERIFY(ws[1]->message().statsLine.contains("TTFT"));
        QVERIFY(ws[1]->message().statsLine.contains("tok/s"));
        m_firstAnswer = ws[1]->message().content;
        m_chatTitle = chat->currentChat().title;
        QVERIFY(m_chatTitle.startsWith("Once upon a time"));
        QTest::qWait(300);  // a few more stats samples for the charts
        saveScreenshot(m_window.get(), "chat");
    }

    void stopRegenerateEdit() {
        WB_REQUIRE_FIXTURE(kModel);
        if (m_chatTitle.isEmpty()) chatStreamsWhileTimersRun();  // run alone: the first exchange first
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        QSignalSpy done(chat, &ChatView::generationFinished);
        QSignalSpy started(chat, &ChatView::generationStarted);
        // Stop: right after sending, so the engine is still generating when the cancel arrives.
        // send() submits on this thread and stop() follows within microseconds, long before the engine could
        // prefill and decode to an end, so the engine still holds the request: the cancel must be accepted and
        // must be what ended it.
        QVERIFY(chat->send("Tell me another one"));
        QCOMPARE(started.count(), 1);
        const quint64 id = started.takeFirst().at(0).toULongLong();
        QVERIFY2(m_window->bridge()->stop(id), "the engine no longer knew a request submitted a moment ago");
        GenerationResult r = waitFinished(done);
        QCOMPARE(r.id, id);
        QCOMPARE(r.stopReason, QString("cancelled"));
        QVERIFY(!chat->isGenerating());
        QCOMPARE(chat->messageWidgets().size(), 4);

        // Regenerate replaces the last answer.
        chat->regenerate();
        QVERIFY(chat->isGenerating());
        r = waitFinished(done);
        QVERIFY(r.completionTokens > 0);
        QCOMPARE(chat->messageWidgets().size(), 4);

        // Edit the second user message and resend: it and what follows are replaced.
        const qint64 secondUser = chat->messageWidgets()[2]->message().id;
        chat->editMessage(secondUser);
        QCOMPARE(chat->composer()->toPlainText(), QString("Tell me another one"));
        QVERIFY(chat->send("Tell me about a cat"));
        r = waitFinished(done);
        const QList<MessageWidget*> ws = chat->messageWidgets();
        QCOMPARE(ws.size(), 4);
        QCOMPARE(ws[2]->message().content, QString("Tell me about a cat"));

        // Exports carry the conversation.
        const QString md = m_tmp.path() + "/chat.md";
        const QString json = m_tmp.path() + "/chat.json";
        QVERIFY(chat->exportMarkdown(md));
        QVERIFY(chat->exportJson(json));
        QFile mdf(md);
        QVERIFY(mdf.open(QIODevice::ReadOnly));
        QVERIFY(mdf.readAll().contains("Tell me about a cat"));
        QFile jf(json);
        QVERIFY(jf.open(QIODevice::ReadOnly));
        const QJsonObject root = QJsonDocument::fromJson(jf.readAll()).object();
        QCOMPARE(root["messages"].toArray().size(), 5);  // system + 4
        QCOMPARE(root["messages"].toArray()[0].toObject()["role"].toString(), QString("system"));
        m_savedMessages = 4;
    }

    void performanceCharts() {
        WB_REQUIRE_FIXTURE(kModel);
        if (m_savedMessages < 4) stopRegenerateEdit();  // run alone: the four requests the charts show
        if (QTest::currentTestFailed()) return;
        PerfChartsView* perf = m_window->perfCharts();
        m_window->tabs()->setCurrentWidget(perf);
        QTRY_VERIFY(perf->sampleCount() > 3);
        QVERIFY(perf->requestCount() >= 4);
        QVERIFY(perf->pointCount(0) > 3);  // tokens/s
        QVERIFY(perf->pointCount(1) >= 4);  // TTFT per request
        QVERIFY(perf->pointCount(5) > 3);  // memory
        perf->setPaused(true);
        const int n = perf->sampleCount();
        QTest::qWait(400);
        QCOMPARE(perf->sampleCount(), n);
        perf->setPaused(false);
        QTRY_VERIFY(perf->sampleCount() > n);
        const QString csv = m_tmp.path() + "/stats.csv";
        QVERIFY(perf->exportCsv(csv));
        QFile f(csv);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.readLine().startsWith("time_s,tokens_per_s"));
        QVERIFY(QFileInfo::exists(m_tmp.path() + "/stats-requests.csv"));
        QVERIFY(perf->exportPng(m_tmp.path() + "/charts.png"));
        QVERIFY(!QImage(m_tmp.path() + "/charts.png").isNull());
        saveScreenshot(m_window.get(), "performance");
    }

    // The time charts: wall-clock axes, a break where no samples came (idle), the y scale from what is visible
    // (an old burst does not flatten later runs), whole-number batch ticks, legends outside the plot area.
    void chartsBreakAtGapsAndReadTheClock() {
        EngineBridge bridge;  // no model loaded: it sends no samples of its own
        PerfChartsView v(&bridge);
        v.resize(900, 700);
        v.show();
        StatsSample s;
        s.batchSize = 3;
        s.tokensPerSecond = 3600;  // a burst
        for (int i = 0; i < 5; ++i) {
            s.atSec = 1 + i * 0.125;
            v.addSample(s);
        }
        s.tokensPerSecond = 10;
        for (int i = 0; i < 5; ++i) {  // 200 s later, after an idle spell
            s.atSec = 201 + i * 0.125;
            v.addSample(s);
        }
        QCPGraph* g = v.plots()[0]->graph(0);
        int nans = 0;
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) nans += std::isnan(it->value);
        QCOMPARE(nans, 1);
        QCOMPARE(g->dataCount(), 11);
        QCOMPARE(v.plots()[0]->xAxis->label(), QString("time of day"));
        QVERIFY(qSharedPointerDynamicCast<QCPAxisTickerDateTime>(v.plots()[0]->xAxis->ticker()));
        const double now = QDateTime::currentMSecsSinceEpoch() / 1000.0;
        QVERIFY(std::abs(v.wallClockOf(1.0) - now) < 5);  // the first sample was taken "now"
        QVERIFY2(v.plots()[0]->yAxis->range().upper < 100,
                 qPrintable(QString::number(v.plots()[0]->yAxis->range().upper)));  // the burst is out of view
        auto fixed = qSharedPointerDynamicCast<QCPAxisTickerFixed>(v.plots()[4]->yAxis->ticker());
        QVERIFY(fixed && fixed->tickStep() == 1.0);
        QCOMPARE(v.plots()[5]->axisRect()->insetLayout()->elementCount(), 0);  // the memory legend moved out
        QVERIFY(v.plots()[5]->legend->visible());
    }

    // View > Appearance > Dark: bubbles, charts and status colours follow the palette; remembered; back to the
    // system's. Inline `code` in an answer is in the fixed font; attachments show an icon, not the 📎 glyph.
    void darkAppearanceAndFinish() {
        if (!m_window) openWindow();
        m_window->setAppearance(theme::Appearance::Dark);
        QVERIFY(theme::isDark());
        QVERIFY(m_window->findChild<QAction*>("actionAppearance_dark")->isChecked());
        StoredMessage m;
        m.role = "assistant";
        m.content = "Run `wb serve` and then:\n\n```\nwb bench --url http://127.0.0.1:8080/v1\n```\n";
        m.attachments = {m_tmp.path() + "/phone.png"};
        MessageWidget w(m);
        w.resize(600, 300);
        w.show();
        QVERIFY2(w.styleSheet().contains(theme::css(theme::assistantBubble())), qPrintable(w.styleSheet()));
        QVERIFY(theme::assistantBubble().lightness() < 80);
        {
            QCustomPlot* plot = m_window->perfCharts()->plots()[0];
            QTRY_VERIFY2(plot->toPixmap(200, 150).toImage().pixelColor(3, 3).lightness() < 80,
                         qPrintable(plot->toPixmap(200, 150).toImage().pixelColor(3, 3).name()));
        }
        QVERIFY(theme::errorText().lightness() > 100);  // readable on the dark background
        // Remembered in the settings; and an open message follows a switch back to light.
        QSettings ini(m_window->dataDir() + "/workbench.ini", QSettings::IniFormat);
        QCOMPARE(ini.value("view/appearance").toString(), QString("dark"));
        m_window->tabs()->setCurrentWidget(m_window->chatView());
        QTest::qWait(50);
        saveScreenshot(m_window.get(), "dark");
        m_window->setAppearance(theme::Appearance::Light);
        QVERIFY(!theme::isDark());
        QTRY_VERIFY2(w.styleSheet().contains(theme::css(theme::assistantBubble())), qPrintable(w.styleSheet()));
        QVERIFY(theme::assistantBubble().lightness() > 200);
        m_window->setAppearance(theme::Appearance::System);

        auto* answer = w.findChild<MarkdownView*>("answer");
        QVERIFY(answer);
        const QString mono = QFontDatabase::systemFont(QFontDatabase::FixedFont).family();
        QTextCursor c(answer->document());
        c.setPosition(answer->document()->toPlainText().indexOf("wb serve") + 1);
        QVERIFY2(c.charFormat().fontFamilies().toStringList().contains(mono),
                 qPrintable(c.charFormat().fontFamilies().toStringList().join(",")));
        const QList<QLabel*> attachments = w.findChildren<QLabel*>();
        bool icon = false;
        for (QLabel* l : attachments) icon = icon || l->text().contains(":/icons/attachment.svg");
        QVERIFY(icon);
        for (QLabel* l : attachments) QVERIFY(!l->text().contains(QStringLiteral("📎")));
    }

    void inputPanel() {
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        InputPanel* in = chat->inputPanel();
        m_window->tabs()->setCurrentWidget(chat);
        // The loaded model is text-only: inputs are off, and say why.
        QVERIFY(!in->acceptsImages());
        const QString img = m_tmp.path() + "/picture.png";
        QImage pic(320, 200, QImage::Format_RGB32);
        QPainter p(&pic);
        p.fillRect(pic.rect(), QColor(0x7f, 0xd1, 0xae));
        p.setBrush(QColor(0x1f, 0x3a, 0x5f));
        p.drawEllipse(QPoint(160, 100), 70, 70);
        p.end();
        QVERIFY(pic.save(img));
        QVERIFY(!in->addImageFile(img));
        auto* imageButton = in->findChild<QPushButton*>();
        QVERIFY(imageButton && !imageButton->isEnabled());
        QVERIFY(imageButton->toolTip().contains("text only"));

        // A model that took them: thumbnails, paste, removal, full-size view, waveform.
        in->setCapabilities(true, true, QString());
        QSignalSpy ready(in, &InputPanel::imageReady);
        QSignalSpy rejected(in, &InputPanel::imageFailed);
        QVERIFY(in->addImageFile(img));
        QVERIFY(in->addImage(pic.mirrored()));  // as pasted: saved on a pool thread, shown at once
        QCOMPARE(in->imageCount(), 2);
        QVERIFY(in->isPreparingImages());       // the pasted PNG is not written yet: not an attachment yet
        QCOMPARE(in->attachments(), QStringList{img});
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 2, 10000);
        QCOMPARE(in->pendingImages(), 0);
        // Either may land first: they run side by side.
        const QString pasted = ready.at(0).at(0).toString() == img ? ready.at(1).at(0).toString() : ready.at(0).at(0).toString();
        QVERIFY2(pasted.startsWith(m_tmp.path() + "/data/attachments/pasted-") && pasted.endsWith(".png"),
                 qPrintable(pasted));
        QCOMPARE(QImage(pasted).size(), pic.size());
        QVERIFY(in->thumbnails()->item(0)->toolTip().contains(QStringLiteral("320×200")));
        QCOMPARE(in->attachments(), (QStringList{img, pasted}));
        // Not an image (told from its header, at once), and one that only fails when decoded (on the pool
        // thread): neither stays, and both say so.
        const QString text = m_tmp.path() + "/notes.png";
        {
            QFile f(text);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("just some text, not an image\n");
        }
        QVERIFY(!in->addImageFile(text));
        QCOMPARE(rejected.count(), 1);
        QVERIFY(rejected.at(0).at(1).toString().contains("notes.png"));
        const QString broken = m_tmp.path() + "/broken.png";
        {
            QFile f(broken);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(QByteArray("\x89PNG\r\n\x1a\n", 8) + QByteArray(64, 'x'));
        }
        QVERIFY(in->addImageFile(broken));
        QCOMPARE(in->imageCount(), 3);
        QTRY_COMPARE_WITH_TIMEOUT(rejected.count(), 2, 10000);
        QCOMPARE(rejected.at(1).at(0).toString(), broken);
        QCOMPARE(in->imageCount(), 2);
        QCOMPARE(ready.count(), 2);
        // The chat shows the bad image's error, until a good image is attached.
        QVERIFY2(m_window->chatView()->errorText().contains("broken.png"), qPrintable(m_window->chatView()->errorText()));
        QVERIFY(in->addImageFile(img));
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 3, 10000);
        QVERIFY2(m_window->chatView()->errorText().isEmpty(), qPrintable(m_window->chatView()->errorText()));
        in->thumbnails()->setCurrentRow(2);
        in->removeSelected();
        const QString wav = m_tmp.path() + "/voice.wav";
        writeWav(wav, 1.5);
        QSignalSpy decoded(in, &InputPanel::audioDecoded);
        QVERIFY(in->setAudioFile(wav));
        QVERIFY(decoded.wait(30000));  // decoded on a pool thread
        QVERIFY2(decoded.first().at(1).toString().isEmpty(), qPrintable(decoded.first().at(1).toString()));
        const Waveform w = readWaveform(wav);
        QVERIFY2(w.error.isEmpty(), qPrintable(w.error));
        QCOMPARE(w.sampleRate, 16000);
        QVERIFY(std::abs(w.durationSec - 1.5) < 0.01);
        QVERIFY(*std::max_element(w.peaks.begin(), w.peaks.end()) > 0.4f);
        QCOMPARE(in->attachments().size(), 3);
        auto* full = qobject_cast<ImageViewer*>(in->showFullSize(0));
        QVERIFY(full && full->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(full->view()->hasImage(), 10000);  // decoded off the GUI thread
        QCOMPARE(full->view()->imageSize(), QImage(in->attachments().first()).size());
        full->close();
        saveScreenshot(in->window(), "input");
        in->thumbnails()->setCurrentRow(1);
        in->removeSelected();
        QCOMPARE(in->imageCount(), 1);
        in->clear();
        QVERIFY(in->attachments().isEmpty());
        in->setCapabilities(false, false, "text only");
    }

    // A phone screenshot is megabytes of PNG: attaching one returns to the event loop at once (a placeholder),
    // the thumbnail is decoded on a pool thread and arrives later, and the loop keeps ticking meanwhile. A panel
    // cleared before the thumbnail lands drops it.
    // A 1080x2400 phone screenshot opens fitted to the window, not at 100%; zoom, 100% and fit again; a chat
    // message's thumbnail opens the same viewer.
    void imageViewerFitsAndZooms() {
        const QString png = m_tmp.path() + "/phone.png";
        QImage shot(1080, 2400, QImage::Format_RGB32);
        shot.fill(QColor(0xf5, 0xf5, 0xf7));
        {
            // Something like a settings screen: a status bar, a title, rows with switches.
            QPainter p(&shot);
            p.fillRect(0, 0, 1080, 90, QColor(0x20, 0x20, 0x24));
            p.fillRect(0, 90, 1080, 180, QColor(0x3d, 0x8e, 0xd8));
            QFont f = p.font();
            f.setPixelSize(64);
            p.setFont(f);
            p.setPen(Qt::white);
            p.drawText(60, 210, "Settings");
            f.setPixelSize(48);
            p.setFont(f);
            const char* rows[] = {"Wi-Fi", "Bluetooth", "Mobile network", "Display", "Sound", "Battery", "Apps"};
            for (int i = 0; i < 7; ++i) {
                const int y = 330 + i * 220;
                p.fillRect(40, y, 1000, 190, Qt::white);
                p.setPen(QColor(0x20, 0x20, 0x24));
                p.drawText(90, y + 115, rows[i]);
                p.setBrush(i % 2 ? QColor(0xbb, 0xbb, 0xbb) : QColor(0x34, 0xc7, 0x59));
                p.setPen(Qt::NoPen);
                p.drawRoundedRect(860, y + 60, 130, 70, 35, 35);
            }
            p.fillRect(500, 1150, 80, 100, Qt::red);
        }
        QVERIFY(shot.save(png));
        ImageViewer viewer(png);
        viewer.resize(800, 700);
        viewer.show();
        QVERIFY(QTest::qWaitForWindowExposed(&viewer));
        QTRY_VERIFY_WITH_TIMEOUT(viewer.view()->hasImage(), 10000);
        QCOMPARE(viewer.view()->imageSize(), QSize(1080, 2400));
        QVERIFY(viewer.view()->isFitted());
        // Fitted: the whole height shows in the view.
        const QRect shown = viewer.view()->mapFromScene(viewer.view()->sceneRect()).boundingRect();
        QVERIFY2(shown.height() <= viewer.view()->viewport()->height(),
                 qPrintable(QString("%1 > %2").arg(shown.height()).arg(viewer.view()->viewport()->height())));
        QVERIFY(viewer.view()->zoom() < 0.3);
        saveScreenshot(&viewer, "viewer");
        const double fitted = viewer.view()->zoom();
        viewer.view()->zoomIn();
        QVERIFY(!viewer.view()->isFitted());
        QVERIFY(std::abs(viewer.view()->zoom() - fitted * 1.25) < 1e-9);
        QTest::keyClick(&viewer, Qt::Key_1);  // 100%
        QCOMPARE(viewer.view()->zoom(), 1.0);
        QTest::keyClick(&viewer, Qt::Key_0);  // fit again, and it follows the window's size
        QVERIFY(viewer.view()->isFitted());
        viewer.resize(800, 1000);
        QTRY_VERIFY(viewer.view()->zoom() > fitted);

        // A file that is not an image says so in the viewer.
        const QString bad = m_tmp.path() + "/not-an-image.png";
        {
            QFile f(bad);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("not a png");
        }
        ImageViewer broken(bad);
        QTRY_VERIFY_WITH_TIMEOUT(broken.statusText().contains("not a readable image"), 10000);

        // The thumbnail in a chat message opens the viewer.
        StoredMessage m;
        m.role = "user";
        m.content = "What is on the screen?";
        m.attachments = {png};
        MessageWidget w(m);
        auto* opened = qobject_cast<ImageViewer*>(w.openImage(0));
        QVERIFY(opened);
        QCOMPARE(opened->path(), png);
        opened->close();
    }

    void largeImageAttachDoesNotBlock() {
        if (!m_window) openWindow();
        InputPanel* in = m_window->chatView()->inputPanel();
        in->setCapabilities(true, false, QString());
        // 2160x4800 with noise-like content, so the PNG barely compresses and decodes slowly (~30 MB).
        const QString big = m_tmp.path() + "/big-screenshot.png";
        {
            QImage shot(2160, 4800, QImage::Format_RGB32);
            quint32 x = 2463534242u;
            for (int y = 0; y < shot.height(); ++y) {
                auto* row = reinterpret_cast<quint32*>(shot.scanLine(y));
                for (int i = 0; i < shot.width(); ++i) {
                    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift
                    row[i] = 0xff000000u | (x & 0xffffffu);
                }
            }
            QVERIFY(shot.save(big, "PNG", 80));
        }
        // What today's synchronous thumbnail cost: the decode alone.
        QElapsedTimer clock;
        clock.start();
        {
            QImageReader reader(big);
            QVERIFY(!reader.read().isNull());
        }
        const double decodeMs = clock.nsecsElapsed() / 1e6;

        QSignalSpy ready(in, &InputPanel::imageReady);
        TickProbe probe;
        probe.start();
        clock.restart();
        QVERIFY(in->addImageFile(big));
        const double addMs = clock.nsecsElapsed() / 1e6;
        QVERIFY2(addMs * 4 < decodeMs, qPrintable(QString("addImageFile took %1 ms; decoding takes %2 ms").arg(addMs).arg(decodeMs)));
        QCOMPARE(in->imageCount(), 1);
        QCOMPARE(in->pendingImages(), 1);
        QCOMPARE(in->attachments(), QStringList{big});  // a PNG: attached as it is, by path, right away
        QVERIFY(in->thumbnails()->item(0)->toolTip().contains("loading"));
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 1, 30000);
        probe.stop();
        QCOMPARE(ready.at(0).at(0).toString(), big);
        QCOMPARE(in->pendingImages(), 0);
        QVERIFY(in->thumbnails()->item(0)->toolTip().contains(QStringLiteral("2160×4800")));
        const QSize icon = in->thumbnails()->item(0)->icon().availableSizes().value(0);
        QVERIFY2(icon.isValid() && icon.height() <= 112 && icon.width() <= 112, qPrintable(QString("%1x%2").arg(icon.width()).arg(icon.height())));
        qInfo("addImageFile: %.2f ms; decoding the %lld-byte PNG: %.1f ms; thumbnail after %.1f ms, max gap %.1f ms",
              addMs, QFileInfo(big).size(), decodeMs, probe.elapsedMs(), probe.maxGapMs());
        QVERIFY2(probe.maxGapMs() < allowedGapMs(probe.elapsedMs()),
                 qPrintable(QString("the GUI thread stalled %1 ms of %2").arg(probe.maxGapMs()).arg(probe.elapsedMs())));

        // Cleared before the thumbnail lands: the late result finds no item and adds nothing back.
        QVERIFY(in->addImageFile(big));
        in->clear();
        QVERIFY(QThreadPool::globalInstance()->waitForDone(30000));
        QCoreApplication::sendPostedEvents();
        QCoreApplication::processEvents();
        QCOMPARE(in->imageCount(), 0);
        QCOMPARE(ready.count(), 1);
        in->setCapabilities(false, false, "text only");
    }

    void shutdownDuringGenerationDoesNotBlock() {
        WB_REQUIRE_FIXTURE(kModel);
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        SamplingSettings s = chat->sampling();
        s.maxTokens = 100000;  // as long as the context allows
        chat->setSampling(s);
        QVERIFY(chat->send("A long story, please"));
        QElapsedTimer t;
        t.start();
        m_window->bridge()->unloadModel();  // cancels and frees the engine on a pool thread
        qInfo("unload during generation returned in %lld ms", t.elapsed());
        QVERIFY(t.elapsed() < 100);
        QVERIFY(!chat->isGenerating());
        QVERIFY(!m_window->bridge()->isLoaded());

        // Reload, start generating, and destroy the whole window mid-stream.
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        m_window->modelManager()->loadSelected();
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
        QVERIFY(chat->send("Another long story"));
        t.restart();
        m_window->close();
        m_window.reset();
        qInfo("closing the window during generation took %lld ms", t.elapsed());
        QVERIFY(t.elapsed() < 500);
    }

    void restartFindsTheChat() {
        WB_REQUIRE_FIXTURE(kModel);
        if (m_chatTitle.isEmpty()) {
            // Run alone: have the chat the earlier tests make, then close the window as they do.
            ensureStoriesLoaded();
            if (QTest::currentTestFailed()) return;
            chatStreamsWhileTimersRun();
            if (QTest::currentTestFailed()) return;
            m_window->close();
            m_window.reset();
        }
        openWindow();
        ChatView* chat = m_window->chatView();
        bool found = false;
        for (const ChatRecord& c : chat->chats()) {
            if (c.title == m_chatTitle) {
                chat->selectChat(c.id);
                found = true;
            }
        }
        QVERIFY2(found, qPrintable(m_chatTitle));
        const QList<MessageWidget*> ws = chat->messageWidgets();
        QVERIFY2(ws.size() >= m_savedMessages, qPrintable(QString::number(ws.size())));
        QCOMPARE(ws[0]->message().content, QString("Once upon a time there was a little dog"));
        QCOMPARE(ws[1]->message().content, m_firstAnswer);
        QVERIFY(!ws[1]->message().statsLine.isEmpty());
        QCOMPARE(chat->currentChat().systemPrompt, QString("You tell short stories."));
        QCOMPARE(chat->currentChat().sampling.seed, quint64(42));
        // The library is remembered too, and the model the last session loaded is selected again.
        ModelManagerView* mm = m_window->modelManager();
        waitScan(mm);
        QCOMPARE(mm->selectedCard().path, QFileInfo(m_modelPath).absoluteFilePath());
        QVERIFY2(mm->statusText().startsWith("Last session: stories260K.gguf"), qPrintable(mm->statusText()));
        QVERIFY(mm->selectModel(m_modelPath));
        // Without a model, sending says what to do instead of failing silently.
        QVERIFY(!chat->send("hello"));
        QVERIFY(chat->errorText().contains("Models"));
    }

    void brokenModelShowsErrorAndAppStaysUsable() {
        if (!m_window) openWindow();
        ModelManagerView* mm = m_window->modelManager();
        const QString broken = m_tmp.path() + "/broken.gguf";
        QFile f(broken);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("GGUF\x03\x00\x00\x00 this is not a model");
        f.close();
        mm->addLibraryEntry(broken);
        waitScan(mm);
        QVERIFY(mm->selectModel(broken));
        QVERIFY(!mm->selectedCard().ok());
        QVERIFY2(mm->selectedCard().error.contains("broken.gguf"), qPrintable(mm->selectedCard().error));
        QVERIFY(!mm->findChild<QPushButton*>("loadButton")->isEnabled());
        // Loading it anyway (as a stale library entry would) fails in place, naming the file.
        QSignalSpy failed(m_window->bridge(), &EngineBridge::loadFailed);
        LoadRequest req;
        req.path = broken;
        m_window->bridge()->loadModel(req);
        QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, 30000);
        QVERIFY2(mm->errorText().contains("broken.gguf"), qPrintable(mm->errorText()));
        QVERIFY(!m_window->bridge()->isLoaded());
        m_window->tabs()->setCurrentWidget(mm);
        saveScreenshot(m_window.get(), "models-error");
        // Still usable: the good model loads and answers.
        WB_REQUIRE_FIXTURE(kModel);
        addStoriesToLibrary(mm);  // done by loadModelWithoutBlocking, unless this test runs alone
        QVERIFY(mm->selectModel(m_modelPath));
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        mm->loadSelected();
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
        QVERIFY(mm->errorText().isEmpty());
        ChatView* chat = m_window->chatView();
        QSignalSpy done(chat, &ChatView::generationFinished);
        chat->newChat();
        QVERIFY(chat->send("Hello"));
        QVERIFY(waitFinished(done).completionTokens > 0);
    }

    void cancelLoadDiscardsTheResult() {
        WB_REQUIRE_FIXTURE(kModel);
        if (!m_window) openWindow();
        EngineBridge* bridge = m_window->bridge();
        bridge->unloadModel();
        QSignalSpy cancelled(bridge, &EngineBridge::loadCancelled);
        QSignalSpy loaded(bridge, &EngineBridge::loadFinished);
        LoadRequest req;
        req.path = m_modelPath;
        req.numThreads = 1;
        bridge->loadModel(req);
        bridge->cancelLoad();
        QCOMPARE(cancelled.count(), 1);
        // The engine's result arrives and is dropped. The load runs on the global pool and posts its result before
        // it ends: wait for the pool rather than a fixed time, then deliver what was posted.
        QVERIFY(QThreadPool::globalInstance()->waitForDone(60000));
        QCoreApplication::sendPostedEvents();
        QCoreApplication::processEvents();
        QCOMPARE(loaded.count(), 0);
        QVERIFY(!bridge->isLoaded());
        QVERIFY(m_window->modelManager()->statusText().contains("cancelled"));
    }

    // A GLM-4.1V-9B folder planned from config.json alone (the safetensors file is not even one): the card, the
    // parameter count, and the per-GPU line at TP=2, which Llama cards do not show.
    // llama.cpp's GLM-4.1V pair in a library folder: one model (the text GGUF, whose card counts the vision tower
    // of the mmproj beside it), not two.
    void glmGgufPairIsOneModel() {
        const std::string dir = (m_tmp.path() + "/glm-gguf").toStdString();
        wb::TinyGlmOptions o;
        QVERIFY(wb::writeTinyGlmCheckpoint(dir + "/hf", o).ok());
        QVERIFY(wb::writeGlmGguf(dir + "/hf", dir + "/lib/glm4v-f16.gguf", dir + "/lib/mmproj-glm4v-f16.gguf").ok());
        const QStringList found = scanForModels({QString::fromStdString(dir + "/lib")});
        QCOMPARE(found, QStringList{QString::fromStdString(dir + "/lib/glm4v-f16.gguf")});
        const ModelCard card = readModelCard(found.front());
        QVERIFY2(card.ok(), qPrintable(card.error));
        QVERIFY(card.hasVision);
        QVERIFY(card.visionParameters > 0);
    }

    void glmCardFromConfigOnly() {
        const QString dir = m_tmp.path() + "/glm41v-9b";
        QVERIFY(QDir().mkpath(dir));
        QFile cfg(dir + "/config.json");
        QVERIFY(cfg.open(QIODevice::WriteOnly));
        cfg.write(R"({"architectures": ["Glm4vForConditionalGeneration"], "model_type": "glm4v",
            "torch_dtype": "bfloat16", "image_token_id": 151343,
            "text_config": {"hidden_size": 4096, "intermediate_size": 13696, "num_hidden_layers": 40,
              "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 151552,
              "max_position_embeddings": 65536, "partial_rotary_factor": 0.5, "rope_theta": 10000,
              "rms_norm_eps": 1e-5, "attention_bias": true, "tie_word_embeddings": false,
              "rope_scaling": {"type": "default", "mrope_section": [8, 12, 12]}},
            "vision_config": {"depth": 24, "hidden_size": 1536, "num_heads": 12, "patch_size": 14,
              "temporal_patch_size": 2, "spatial_merge_size": 2, "in_channels": 3, "image_size": 336,
              "out_hidden_size": 4096, "intermediate_size": 13696, "rms_norm_eps": 1e-5,
              "attention_bias": false}})");
        cfg.close();
        QFile st(dir + "/model-00001-of-00004.safetensors");
        QVERIFY(st.open(QIODevice::WriteOnly));
        st.write("not read");
        st.close();

        const ModelCard card = readModelCard(dir);
        QVERIFY2(card.ok(), qPrintable(card.error));
        QCOMPARE(card.architecture, QStringLiteral("glm4v"));
        QVERIFY(card.hasVision);
        QCOMPARE(card.numParameters, qint64(10'292'777'472));
        QCOMPARE(card.visionParameters, qint64(892'498'432));
        QCOMPARE(card.numLayers, qint64(40));
        QCOMPARE(card.contextLength, qint64(65536));
        QCOMPARE(card.weightBytesByPrecision.value("fp16"), qint64(20'589'193'216));
        QCOMPARE(card.weightBytesByPrecision.value("native"), qint64(20'589'193'216));  // bfloat16
        const MemoryPlan plan = planMemory(card, "fp16", 4096, 1, qint64(64) << 30);
        QCOMPARE(plan.weightBytes, qint64(20'589'193'216));
        QCOMPARE(plan.kvCacheBytes, qint64(81'920) * 4096);
        QCOMPARE(plan.perGpuTp2WeightBytes, qint64(11'810'146'304));
        QCOMPARE(plan.perGpuTp2KvCacheBytes, qint64(40'960) * 4096);
        QVERIFY(plan.perGpuTp2Bytes() < qint64(24'000'000'000));
        QCOMPARE(plan.kvCacheType, QStringLiteral("f32"));
        // The phone agent's 25,480 tokens: the engine keeps an f16 cache on the CPU for a context that long, and
        // the plan counts it so (half the f32 figure); one GPU of the TP-2 split stays f32.
        const MemoryPlan agent = planMemory(card, "int8", 25'480, 1, qint64(64) << 30);
        QCOMPARE(agent.kvCacheType, QStringLiteral("f16"));
        QCOMPARE(agent.kvCacheBytes, qint64(40'960) * 25'480);
        QCOMPARE(agent.perGpuTp2KvCacheBytes, qint64(40'960) * 25'480);
        // The context a load starts from: the phone agent's 25,480 where it fits, lowered until it does, and why.
        const ContextChoice roomy = suggestContextLength(card, "int8", 4, qint64(64) << 30);
        QCOMPARE(roomy.tokens, qint64(25'480));
        QVERIFY2(roomy.why.contains("--max-model-len 25480"), qPrintable(roomy.why));
        const ContextChoice tight = suggestContextLength(card, "int8", 4, qint64(14'000'000'000));
        QVERIFY2(tight.tokens < 25'480 && tight.tokens >= 2048, qPrintable(tight.why));
        QVERIFY(planMemory(card, "int8", tight.tokens, 4, qint64(14'000'000'000)).fits());
        QVERIFY(!planMemory(card, "int8", tight.tokens * 2, 4, qint64(14'000'000'000)).fits());
        QVERIFY2(tight.why.contains("largest that fits"), qPrintable(tight.why));
        const ContextChoice none = suggestContextLength(card, "fp16", 1, qint64(16'000'000'000));
        QVERIFY2(none.why.contains("weights alone do not fit"), qPrintable(none.why));

        if (!m_window) openWindow();
        ModelManagerView* mm = m_window->modelManager();
        mm->addLibraryEntry(dir);
        waitScan(mm);
        QVERIFY(mm->selectModel(dir));
        mm->setPrecision("fp16");
        // Not the 65,536-token context x 4 sequences that never fits: the suggestion, said in the view.
        QVERIFY(mm->currentPlan().contextLength <= 25'480);
        QVERIFY2(mm->findChild<QLabel*>("contextNote")->text().startsWith("Context "),
                 qPrintable(mm->findChild<QLabel*>("contextNote")->text()));
        auto* perGpu = mm->findChild<QLabel*>("planPerGpu");
        QVERIFY(perGpu);
        QVERIFY(!perGpu->isHidden());
        QVERIFY2(perGpu->text().contains("Per GPU at TP=2"), qPrintable(perGpu->text()));
        QVERIFY(mm->findChild<QLabel*>("modelCard")->text().contains("text and images"));
        // A Llama-family card keeps the one-device plan only.
        WB_REQUIRE_FIXTURE(kModel);
        addStoriesToLibrary(mm);  // done by loadModelWithoutBlocking, unless this test runs alone
        QVERIFY(mm->selectModel(m_modelPath));
        QVERIFY(perGpu->isHidden());
        QCOMPARE(mm->currentPlan().perGpuTp2Bytes(), qint64(0));
    }

    // Image Q&A end to end with a tiny GLM-4.1V (random weights, written here): load from the library, the input
    // panel opens for images, a photo and a question go in, an answer streams back and the chat keeps the image.
    void imageQuestionWithGlm41v() {
        const QString dir = m_tmp.path() + "/tiny-glm41v";
        auto w = wb::writeTinyGlmCheckpoint(dir.toStdString());
        QVERIFY2(w.ok(), w.ok() ? "" : w.error().message.c_str());
        if (!m_window) openWindow();
        ModelManagerView* mm = m_window->modelManager();
        mm->addLibraryEntry(dir);
        waitScan(mm);
        QVERIFY(mm->selectModel(dir));
        QVERIFY(mm->selectedCard().hasVision);
        mm->setPrecision("native");
        // Split over two devices (CPU ranks here; the same setting serves AutoGLM-Phone-9B over two GPUs).
        mm->setDevice("cpu", 2);
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        mm->loadSelected();
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
        QVERIFY(m_window->bridge()->loadedModel().acceptsImages);
        QVERIFY2(m_window->bridge()->loadedModel().device.contains("tensor parallel 2"),
                 qPrintable(m_window->bridge()->loadedModel().device));

        ChatView* chat = m_window->chatView();
        m_window->tabs()->setCurrentWidget(chat);
        chat->newChat();
        InputPanel* in = chat->inputPanel();
        QVERIFY(in->acceptsImages());
        QString photo = QString::fromStdString(wbtest::fixture("images/llama_cute.jpg"));
        if (!QFileInfo::exists(photo)) {
            photo = m_tmp.path() + "/photo.png";
            QImage pic(320, 200, QImage::Format_RGB32);
            pic.fill(QColor(0x7f, 0xd1, 0xae));
            QVERIFY(pic.save(photo));
        }
        QVERIFY(in->addImageFile(photo));
        SamplingSettings s;
        s.temperature = 0;
        s.maxTokens = 24;
        chat->setSampling(s);
        QSignalSpy done(chat, &ChatView::generationFinished);
        QSignalSpy failed(m_window->bridge(), &EngineBridge::requestFailed);
        QVERIFY(chat->send("What animal is in this picture?"));
        const GenerationResult r = waitFinished(done);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
        QVERIFY2(chat->errorText().isEmpty(), qPrintable(chat->errorText()));
        QCOMPARE(r.completionTokens, qint64(24));
        // The prompt holds the image: [gMASK]<sop><|user|>\n, begin, its merged patches (as many as the image
        // processor makes of this photo under the tiny checkpoint's pixel budget), end, the question's 31 bytes,
        // <|assistant|>\n.
        auto processor = wb::loadGlm4vProcessorConfig((dir + "/preprocessor_config.json").toStdString());
        QVERIFY(processor.ok());
        auto imageTokens = [&](const QString& file) -> qint64 {
            auto img = wb::loadImageFile(file.toStdString());
            if (!img) return -1;
            auto in = wb::glm4vPreprocess(*img, *processor);
            return in ? in->numTokens(processor->mergeSize) : -1;
        };
        const qint64 photoTokens = imageTokens(photo);
        QVERIFY(photoTokens > 0);
        QCOMPARE(r.promptTokens, 4 + 1 + photoTokens + 1 + 31 + 2);
        const QList<MessageWidget*> ws = chat->messageWidgets();
        QCOMPARE(ws.size(), 2);
        QCOMPARE(ws[0]->message().attachments.size(), 1);
        // The question shows the photo as a thumbnail, loaded off the GUI thread.
        auto* thumb = ws[0]->findChild<QLabel*>("attachmentThumbnail");
        QVERIFY(thumb);
        QTRY_VERIFY_WITH_TIMEOUT(!thumb->pixmap().isNull(), 10000);
        QVERIFY(thumb->pixmap().height() <= 160 && thumb->pixmap().width() <= 240);
        QCOMPARE(ws[1]->message().role, QString("assistant"));
        saveScreenshot(m_window.get(), "image-chat");

        // A BMP: converted to a PNG under the attachments folder on a pool thread at attach time (the engine takes
        // PNG and JPEG); until the PNG is written the message waits, then it goes as that file.
        chat->newChat();
        chat->setSampling(s);  // settings are per chat
        const QString bmp = m_tmp.path() + "/photo.bmp";
        {
            QImage pic(300, 180, QImage::Format_RGB32);
            pic.fill(QColor(0x30, 0x80, 0xc0));
            QPainter p(&pic);
            p.fillRect(40, 30, 120, 90, QColor(0xe0, 0xb0, 0x40));
            p.end();
            QVERIFY(pic.save(bmp, "BMP"));
        }
        QSignalSpy ready(in, &InputPanel::imageReady);
        QVERIFY(in->addImageFile(bmp));
        QVERIFY(in->isPreparingImages());
        QVERIFY(in->attachments().isEmpty());
        QVERIFY(!chat->send("And this one?"));
        QVERIFY2(chat->errorText().contains("still being saved"), qPrintable(chat->errorText()));
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 1, 10000);
        const QString converted = ready.at(0).at(0).toString();
        QVERIFY2(converted.startsWith(m_tmp.path() + "/data/attachments/photo-converted-") && converted.endsWith(".png"),
                 qPrintable(converted));
        QCOMPARE(in->attachments(), QStringList{converted});
        {
            QFile f(converted);
            QVERIFY(f.open(QIODevice::ReadOnly));
            QVERIFY(f.read(8).startsWith("\x89PNG"));
        }
        QCOMPARE(QImage(converted).size(), QSize(300, 180));
        QVERIFY(chat->send("And this one?"));
        const GenerationResult rb = waitFinished(done);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
        QVERIFY2(chat->errorText().isEmpty(), qPrintable(chat->errorText()));
        QVERIFY2(rb.stopReason == "stop" || rb.stopReason == "length", qPrintable(rb.stopReason));
        QVERIFY(rb.completionTokens > 0);  // random weights: it may well stop before 24
        QCOMPARE(rb.promptTokens, 4 + 1 + imageTokens(converted) + 1 + 13 + 2);  // "And this one?": 13 bytes
        QCOMPARE(chat->messageWidgets()[0]->message().attachments, QStringList{converted});
        // The chat records the model that answered it; exports name it.
        const qint64 imageChat = chat->currentChatId();
        QCOMPARE(chat->currentChat().model.path, m_window->bridge()->loadedModel().path);
        QVERIFY(chat->currentChat().model.acceptsImages);
        QVERIFY2(chat->modelNote().contains("tiny-glm41v"), qPrintable(chat->modelNote()));
        {
            const QString json = m_tmp.path() + "/image-chat.json";
            QVERIFY(chat->exportJson(json));
            QFile jf(json);
            QVERIFY(jf.open(QIODevice::ReadOnly));
            const QJsonObject root = QJsonDocument::fromJson(jf.readAll()).object();
            QCOMPARE(root["model"].toObject()["name"].toString(), QString("tiny-glm41v"));
            const QJsonArray ms = root["messages"].toArray();
            QCOMPARE(ms.last().toObject()["stats"].toObject()["model"].toObject()["name"].toString(),
                     QString("tiny-glm41v"));
        }

        // A chat saved by an older version may name a BMP itself (attachments were converted only at send then):
        // the bridge still converts such a file when it sends it, so those chats go on.
        {
            QSignalSpy bridgeDone(m_window->bridge(), &EngineBridge::finished);
            const quint64 id = m_window->bridge()->submitChat({ChatTurn{"user", "An old chat?", {bmp}}}, s);
            QVERIFY(id != 0);
            QTRY_VERIFY_WITH_TIMEOUT(bridgeDone.count() == 1, 60000);
            QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
            const auto old = bridgeDone.first().at(1).value<GenerationResult>();
            QCOMPARE(old.promptTokens, rb.promptTokens - qint64(QByteArray("And this one?").size()) +
                                           qint64(QByteArray("An old chat?").size()));
        }

        // The engine reads the files (the GUI thread hands it paths): one gone by send time is the request's
        // error, naming the file, and the app goes on.
        chat->newChat();
        chat->setSampling(s);
        const QString doomed = m_tmp.path() + "/doomed.png";
        QVERIFY(QFile::copy(converted, doomed));
        QVERIFY(in->addImageFile(doomed));
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 2, 10000);
        QVERIFY(QFile::remove(doomed));
        QVERIFY(chat->send("Where did it go?"));
        const GenerationResult rm = waitFinished(done);
        QCOMPARE(failed.count(), 1);
        const QString why = failed.first().at(1).toString();
        QVERIFY2(why.contains(doomed) && why.contains("cannot read"), qPrintable(why));
        QVERIFY2(chat->errorText().contains(doomed), qPrintable(chat->errorText()));
        QCOMPARE(rm.completionTokens, qint64(0));
        QCOMPARE(rm.stopReason, QString("error"));

        m_window->bridge()->unloadModel();
        mm->setDevice("cpu", 1);

        // Back to a text-only model: the image chat says that its images will not be sent, and which model
        // answered it before, rather than carrying on without a word.
        WB_REQUIRE_FIXTURE(kModel);
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        chat->selectChat(imageChat);
        const QString note = chat->modelNote();
        QVERIFY2(note.contains("answered by tiny-glm41v") && note.contains("stories260K.gguf"), qPrintable(note));
        QVERIFY2(note.contains("has an image") && note.contains("not sent"), qPrintable(note));
    }

    // The chat follows a streamed answer to its end; scrolled up, it stays where the user is reading and offers
    // "Jump to latest"; Esc stops an answer; Ctrl+N, F1 and Enter in the model list do what the menus say.
    void followTheAnswerAndShortcuts() {
        WB_REQUIRE_FIXTURE(kModel);
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        m_window->tabs()->setCurrentWidget(chat);
        QScrollBar* bar = chat->transcript()->verticalScrollBar();
        SamplingSettings s = chat->sampling();
        s.maxTokens = 300;
        s.temperature = 0.8;
        chat->setSampling(s);
        QSignalSpy done(chat, &ChatView::generationFinished);

        // Followed: two answers, the second longer than the view, end at the bottom with nothing to jump to.
        for (int i = 0; i < 6 && (i < 2 || bar->maximum() < 600); ++i) {
            QVERIFY(chat->send(i % 2 ? "Tell me a long story about a big red ball" : "Once upon a time"));
            const GenerationResult r = waitFinished(done);
            QTest::qWait(100);  // the last render and the layout after it
            qInfo("answer %d: %lld tokens; transcript scroll range %d px", i, r.completionTokens, bar->maximum());
        }
        QVERIFY2(bar->maximum() > 0, "the transcript fits the view: nothing to follow");
        QCOMPARE(bar->value(), bar->maximum());
        QVERIFY(chat->followsLatest());
        QVERIFY(chat->jumpToLatestButton()->isHidden());

        // Scrolled up while the answer streams: the view stays put, the answer grows below it.
        QVERIFY(chat->send("And then what happened to the ball?"));
        QTRY_VERIFY_WITH_TIMEOUT(!chat->streamingText().isEmpty() || done.count() > 0, 60000);
        bar->setValue(0);
        const int maxWhenScrolledUp = bar->maximum();
        QVERIFY(!chat->followsLatest());
        waitFinished(done);
        QTest::qWait(100);
        if (bar->maximum() <= maxWhenScrolledUp) QSKIP("the answer ended before the view was scrolled up");
        QCOMPARE(bar->value(), 0);
        QVERIFY(chat->jumpToLatestButton()->isVisible());
        QTest::mouseClick(chat->jumpToLatestButton(), Qt::LeftButton);
        QCOMPARE(bar->value(), bar->maximum());
        QVERIFY(chat->followsLatest());
        QVERIFY(chat->jumpToLatestButton()->isHidden());

        // Ctrl+N: a new, empty chat with the composer focused (shortcuts need the window active).
        m_window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
        const qint64 before = chat->currentChatId();
        const int chats = chat->chats().size();
        QTest::keyClick(QApplication::focusWidget() ? QApplication::focusWidget() : m_window.get(), Qt::Key_N,
                        Qt::ControlModifier);
        QCOMPARE(chat->chats().size(), chats + 1);
        QVERIFY(chat->currentChatId() != before);
        QVERIFY(chat->messageWidgets().isEmpty());

        // Esc in the composer stops the answer (sent a moment ago: the engine still holds it), in the new chat: the
        // long one above is near stories260K's 512-token context.
        QVERIFY(chat->send("One more story"));
        chat->composer()->setFocus();
        QTest::keyClick(chat->composer(), Qt::Key_Escape);
        QCOMPARE(waitFinished(done).stopReason, QString("cancelled"));
        // The title came from the first message; editing that message renames the chat.
        QCOMPARE(chat->currentChat().title, QString("One more story"));
        chat->editMessage(chat->messageWidgets().first()->message().id);
        QVERIFY(chat->send("A story about the sea"));
        waitFinished(done);
        QCOMPARE(chat->currentChat().title, QString("A story about the sea"));

        chat->selectChat(before);

        // F1: the help, non-modal, naming the data folder.
        m_window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
        QTest::keyClick(QApplication::focusWidget() ? QApplication::focusWidget() : m_window.get(), Qt::Key_F1);
        auto* help = m_window->findChild<QMessageBox*>("helpDialog");
        QVERIFY2(help, qPrintable(QString("no help dialog after F1 (focus: %1, active window: %2)")
                                      .arg(QApplication::focusWidget() ? QApplication::focusWidget()->objectName() : "none")
                                      .arg(QApplication::activeWindow() ? QApplication::activeWindow()->objectName() : "none")));
        QTRY_VERIFY(help->isVisible());
        QVERIFY(help->text().contains(m_window->dataDir().toHtmlEscaped()));
        help->close();

        // Enter on a model in the list loads it.
        m_window->bridge()->unloadModel();
        QTRY_VERIFY(!m_window->bridge()->isLoaded());
        m_window->tabs()->setCurrentWidget(m_window->modelManager());
        QVERIFY(m_window->modelManager()->selectModel(m_modelPath));
        auto* list = m_window->modelManager()->findChild<QListWidget*>("modelList");
        QVERIFY(list);
        list->setFocus();
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        QTest::keyClick(list, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
    }

    // Edit says what it will do and can be cancelled (button or Esc); a deleted chat comes back with Undo; a
    // folder with no model in it gets a word.
    void editCancelDeleteUndo() {
        WB_REQUIRE_FIXTURE(kModel);
        ensureStoriesLoaded();
        if (QTest::currentTestFailed()) return;
        ChatView* chat = m_window->chatView();
        m_window->tabs()->setCurrentWidget(chat);
        chat->newChat();
        QSignalSpy done(chat, &ChatView::generationFinished);
        QVERIFY(chat->send("Once upon a time"));
        waitFinished(done);
        QVERIFY(chat->send("Then what?"));
        waitFinished(done);
        const QList<MessageWidget*> before = chat->messageWidgets();
        QCOMPARE(before.size(), 4);
        chat->editMessage(before[0]->message().id);
        QVERIFY(chat->isEditing());
        QVERIFY2(chat->editBannerText().contains("3 message(s) after it"), qPrintable(chat->editBannerText()));
        QCOMPARE(chat->composer()->toPlainText(), QString("Once upon a time"));
        QTest::mouseClick(chat->findChild<QPushButton*>("cancelEdit"), Qt::LeftButton);
        QVERIFY(!chat->isEditing());
        QVERIFY(chat->editBannerText().isEmpty());
        QVERIFY(chat->composer()->toPlainText().isEmpty());
        QCOMPARE(chat->messageWidgets().size(), 4);
        chat->editMessage(before[2]->message().id);
        QVERIFY(chat->isEditing());
        m_window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
        chat->composer()->setFocus();
        QTest::keyClick(chat->composer(), Qt::Key_Escape);
        QVERIFY(!chat->isEditing());

        // Delete, then Undo: the same title, messages, answers' stats and model.
        const ChatRecord record = chat->currentChat();
        QStringList contents;
        for (MessageWidget* w : chat->messageWidgets()) contents << w->message().content;
        const QString stats = chat->messageWidgets()[1]->message().statsLine;
        const int count = chat->chats().size();
        chat->deleteCurrentChat();
        QCOMPARE(chat->chats().size(), count - 1);
        QVERIFY(chat->canUndoDelete());
        QVERIFY(chat->findChild<QWidget*>("undoDeleteBar")->isVisible());
        QTest::mouseClick(chat->findChild<QPushButton*>("undoDelete"), Qt::LeftButton);
        QCOMPARE(chat->chats().size(), count);
        QCOMPARE(chat->currentChat().title, record.title);
        QCOMPARE(chat->currentChat().model.path, record.model.path);
        QStringList after;
        for (MessageWidget* w : chat->messageWidgets()) after << w->message().content;
        QCOMPARE(after, contents);
        QCOMPARE(chat->messageWidgets()[1]->message().statsLine, stats);
        QVERIFY(!chat->canUndoDelete());

        // A folder without a model in it.
        const QString empty = m_tmp.path() + "/no-models-here";
        QVERIFY(QDir().mkpath(empty + "/sub"));
        ModelManagerView* mm = m_window->modelManager();
        mm->addLibraryEntry(empty);
        waitScan(mm);
        QVERIFY2(mm->statusText().startsWith("No model found in " + QFileInfo(empty).absoluteFilePath()),
                 qPrintable(mm->statusText()));
        mm->removeLibraryEntry(QFileInfo(empty).absoluteFilePath());
    }

    // The window shrinks to a small laptop's width, and Compare's fields stay readable there.
    void smallWindow() {
        if (!m_window) openWindow();
        for (int i = 0; i < m_window->tabs()->count(); ++i) {
            m_window->tabs()->setCurrentIndex(i);
            qInfo("tab %s: minimum width %d", qPrintable(m_window->tabs()->tabText(i)),
                  m_window->tabs()->widget(i)->minimumSizeHint().width());
        }
        QVERIFY2(m_window->minimumSizeHint().width() <= 900, qPrintable(QString::number(m_window->minimumSizeHint().width())));
        m_window->tabs()->setCurrentWidget(m_window->compareView());
        m_window->resize(900, 700);
        QTest::qWait(50);
        auto* url = m_window->compareView()->findChild<QLineEdit*>("compareUrl");
        QVERIFY(url);
        QVERIFY2(url->width() >= 200, qPrintable(QString::number(url->width())));
        saveScreenshot(m_window.get(), "compare-narrow");
    }

    // A device fault (injected on the CPU: FaultInjectingDevice in front of the model's device) shows in the
    // status bar with a Reload button; reloading brings the model back and answers again.
    void faultedEngineOffersReload() {
        WB_REQUIRE_FIXTURE(kModel);
        if (!m_window) openWindow();
        std::vector<wb::FaultInjectingDevice*> devs;
        std::mutex mu;
        wb::setDeviceWrapperForTesting([&](int, std::unique_ptr<wb::Device> d) {
            auto w = std::make_unique<wb::FaultInjectingDevice>(std::move(d));
            std::lock_guard lock(mu);
            devs.push_back(w.get());
            return std::unique_ptr<wb::Device>(std::move(w));
        });
        m_window->bridge()->unloadModel();
        ModelManagerView* mm = m_window->modelManager();
        addStoriesToLibrary(mm);
        QVERIFY(mm->selectModel(m_modelPath));
        QSignalSpy loaded(m_window->bridge(), &EngineBridge::loadFinished);
        mm->loadSelected();
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, 60000);
        {
            std::lock_guard lock(mu);
            QVERIFY(!devs.empty());
            devs.back()->failAfter(10, wb::FaultInjectingDevice::Failure::Fault, "illegal memory access (injected)");
        }
        ChatView* chat = m_window->chatView();
        chat->newChat();
        QSignalSpy faulted(m_window->bridge(), &EngineBridge::engineFaulted);
        QSignalSpy done(chat, &ChatView::generationFinished);
        QVERIFY(chat->send("Once upon a time"));
        QTRY_VERIFY_WITH_TIMEOUT(faulted.count() == 1, 30000);
        QVERIFY(faulted.first().first().toString().contains("illegal memory access"));
        auto* reload = m_window->findChild<QPushButton*>("reloadEngine");
        QVERIFY(reload && reload->isVisible());
        QSignalSpy reloaded(m_window->bridge(), &EngineBridge::reloadFinished);
        QTest::mouseClick(reload, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(reloaded.count() == 1, 60000);
        QVERIFY2(reloaded.first().at(0).toBool(), qPrintable(reloaded.first().at(1).toString()));
        QVERIFY(!reload->isVisible());
        QVERIFY(!m_window->bridge()->isFaulted());
        done.clear();
        QVERIFY(chat->send("Once upon a time"));
        const GenerationResult r = waitFinished(done);
        QVERIFY2(r.completionTokens > 0, qPrintable(r.stopReason));
        wb::setDeviceWrapperForTesting({});
    }

    void cleanupTestCase() { m_window.reset(); }
};

QTEST_MAIN(TstWorkbench)
#include "tst_workbench.moc"
