// The Agent tab shows a phone-agent run folder step by step. The run is made here by the engine's own agent loop
// (AgentSession + AgentTraceWriter, as `wb agent` makes it) over three generated screenshots, with a scripted
// chat target in the process standing in for AutoGLM-Phone-9B, which no machine here runs; its answers are in
// the model's real format. The view must read it off the GUI thread, show each step's annotated screenshot with
// the mark where the action lands, the thinking, the answer, the parsed action and the timings, and move
// between steps; a damaged run must be an error in the view, not a crash.
#include <QApplication>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "api/agent.h"
#include "app/agent_view.h"
#include "app/main_window.h"
#include "screenshots.h"

using namespace wbgui;

namespace {

class ScriptedTarget : public wb::AgentChatTarget {
public:
    std::string name() const override { return "scripted AutoGLM-format answers"; }
    wb::AgentReply complete(const wb::AgentRequest&, const std::atomic<bool>*) override {
        static const char* const answers[][2] = {
            {"The Settings icon is on the right.", "do(action=\"Tap\", element=[750,250])"},
            {"Scroll down to find Wi-Fi.", "do(action=\"Swipe\", start=[500,800], end=[500,200])"},
            {"Wi-Fi is on now.", "finish(message=\"Wi-Fi is on\")"}};
        const auto& a = answers[std::min<size_t>(m_n++, 2)];
        wb::AgentReply r;
        r.reasoning = a[0];
        r.answer = a[1];
        r.finishReason = "stop";
        r.ttftMs = 120 + 10.0 * double(m_n);
        r.thinkEndMs = 400;
        r.totalMs = 650;
        r.promptTokens = 1200;
        r.completionTokens = 40;
        return r;
    }

private:
    size_t m_n = 0;
};

}  // namespace

class TstAgentView : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;
    QString m_run;

private slots:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        const QString screens = m_tmp.filePath(QStringLiteral("screens"));
        QVERIFY(QDir().mkpath(screens));
        for (int i = 1; i <= 3; ++i) {
            QImage img(200, 400, QImage::Format_RGB888);
            img.fill(QColor(240, 240, 240));
            QVERIFY(img.save(screens + QStringLiteral("/step_%1.png").arg(i)));
        }
        auto source = wb::makeReplayScreenSource(screens.toStdString());
        QVERIFY2(source.ok(), source.ok() ? "" : source.error().message.c_str());
        ScriptedTarget target;
        wb::AgentOptions o;
        o.task = "Turn on Wi-Fi";
        o.date = "2026-12-05";
        wb::AgentSession session(target, **source, o);
        m_run = m_tmp.filePath(QStringLiteral("run"));
        wb::AgentTraceWriter writer(m_run.toStdString());
        session.run([&](const wb::AgentStep&) { QVERIFY(writer.write(session).ok()); });
        QCOMPARE(int(session.steps().size()), 3);
        QCOMPARE(session.stopReason(), wb::AgentStopReason::Finished);
    }

    void showsEveryStepWhereItLands() {
        MainWindow window(m_tmp.filePath(QStringLiteral("data")));
        window.resize(1100, 700);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        AgentView* view = window.agentView();
        QVERIFY(view);
        window.tabs()->setCurrentWidget(view);
        QSignalSpy loaded(view, &AgentView::runLoaded);
        view->openRun(m_run);
        QVERIFY(loaded.wait(20000));
        QCOMPARE(loaded.first().first().toBool(), true);

        const AgentRunView& run = view->run();
        QCOMPARE(run.task, QStringLiteral("Turn on Wi-Fi"));
        QCOMPARE(run.steps.size(), 3);
        QVERIFY2(view->findChild<QLabel*>("agentHeader")->text().contains("Turn on Wi-Fi"),
                 qPrintable(view->findChild<QLabel*>("agentHeader")->text()));
        auto* timeline = view->findChild<QListWidget*>("agentTimeline");
        QCOMPARE(timeline->count(), 3);
        QCOMPARE(timeline->item(0)->text(), QStringLiteral("1. Tap"));
        QCOMPARE(timeline->item(1)->text(), QStringLiteral("2. Swipe"));
        QCOMPARE(timeline->item(2)->text(), QStringLiteral("3. finish"));
        QCOMPARE(view->currentStep(), 0);

        // Step 1: the tap at [750, 250] on a 200 x 400 screen lands at pixel (150, 100): the ring is drawn
        // around it (the background there is untouched at the centre, coloured on the ring).
        const AgentStepView& tap = run.steps[0];
        QCOMPARE(tap.annotated.size(), QSize(200, 400));
        QVERIFY2(tap.marks.join(' ').contains("ring at 150,100"), qPrintable(tap.marks.join(' ')));
        bool ringDrawn = false;
        for (int dx = -20; dx <= 20 && !ringDrawn; ++dx)
            ringDrawn = tap.annotated.pixelColor(150 + dx, 100) != QColor(240, 240, 240);
        QVERIFY(ringDrawn);
        QCOMPARE(tap.annotated.pixelColor(10, 390), QColor(240, 240, 240));  // far from any mark
        QVERIFY(view->findChild<QLabel*>("agentAction")->text().contains("Tap [750, 250]"));
        QCOMPARE(view->findChild<QPlainTextEdit*>("agentThinking")->toPlainText(),
                 QStringLiteral("The Settings icon is on the right."));
        QCOMPARE(view->findChild<QPlainTextEdit*>("agentAnswer")->toPlainText(),
                 QStringLiteral("do(action=\"Tap\", element=[750,250])"));
        QVERIFY2(view->findChild<QLabel*>("agentTimings")->text().contains("total 650 ms"),
                 qPrintable(view->findChild<QLabel*>("agentTimings")->text()));
        QVERIFY(!view->findChild<QLabel*>("agentImage")->pixmap().isNull());
        wbtest::saveScreenshot(&window, QStringLiteral("agent"));

        // Next: the swipe, an arrow from (100, 320) to (100, 80).
        auto* next = view->findChild<QPushButton*>("agentNext");
        auto* prev = view->findChild<QPushButton*>("agentPrev");
        QVERIFY(!prev->isEnabled() && next->isEnabled());
        QTest::mouseClick(next, Qt::LeftButton);
        QCOMPARE(view->currentStep(), 1);
        QVERIFY2(run.steps[1].marks.join(' ').contains("arrow at 100,320 → 100,80"),
                 qPrintable(run.steps[1].marks.join(' ')));
        QVERIFY(view->findChild<QLabel*>("agentAction")->text().contains("Swipe [500, 800] → [500, 200]"));
        QTest::mouseClick(next, Qt::LeftButton);
        QCOMPARE(view->currentStep(), 2);
        QVERIFY(!next->isEnabled() && prev->isEnabled());
        QVERIFY(view->findChild<QLabel*>("agentAction")->text().contains("Wi-Fi is on"));
        QTest::mouseClick(prev, Qt::LeftButton);
        QCOMPARE(view->currentStep(), 1);
    }

    void damagedRunIsAnErrorInTheView() {
        const QString bad = m_tmp.filePath(QStringLiteral("bad-run"));
        QVERIFY(QDir().mkpath(bad));
        QFile f(bad + QStringLiteral("/trace.json"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("{\"format\": \"workbench-agent-trace\", \"steps\": [");  // cut short
        f.close();
        AgentView view;
        QSignalSpy loaded(&view, &AgentView::runLoaded);
        view.openRun(bad);
        QVERIFY(loaded.wait(20000));
        QCOMPARE(loaded.first().first().toBool(), false);
        QVERIFY2(view.findChild<QLabel*>("agentHeader")->text().contains("trace.json"),
                 qPrintable(view.findChild<QLabel*>("agentHeader")->text()));
        QCOMPARE(view.findChild<QListWidget*>("agentTimeline")->count(), 0);
    }
};

QTEST_MAIN(TstAgentView)
#include "tst_agent_view.moc"
