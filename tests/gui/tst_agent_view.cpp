// The Agent tab shows a phone-agent run folder step by step. The run is made here by the engine's own agent loop
// (AgentSession + AgentTraceWriter, as `wb agent` makes it) over three generated screenshots, with a scripted
// chat target in the process standing in for AutoGLM-Phone-9B, which no machine here runs; its answers are in
// the model's real format. The view must read it off the GUI thread, show each step's annotated screenshot with
// the mark where the action lands, the thinking, the answer, the parsed action and the timings, and move
// between steps; a damaged run must be an error in the view, not a crash.
// Then the tab runs the agent itself, through its form and buttons, against the scripted OpenAI-compatible
// server (tests/common/agent_test_server.h) whose streams a gate holds back: steps must appear one by one while
// the run goes on, the GUI thread must keep turning, Stop must end a run whose model is still thinking, and the
// run folder must reload as the same run. On a phone (a stand-in adb on PATH, tests/common/fake_adb.h), nothing
// is sent until "Execute on the phone" is checked; then a sensitive tap and Take_over pause the run with a
// question in the tab, answered here by a hook that clicks the tab's own buttons.
#include <QApplication>
#include <QBuffer>
#include <QPainter>
#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QTableWidget>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QSpinBox>
#include <QTimer>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "agent_test_server.h"
#include "api/agent.h"
#include "app/agent_view.h"
#include "bridge/engine_bridge.h"
#include "fake_adb.h"
#include "models/glm/glm_tiny.h"
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

const char* kTap = "<think>The Settings icon is on the right.</think><answer>do(action=\"Tap\", element=[750,250])</answer>";
const char* kSwipe = "<think>Scroll down.</think><answer>do(action=\"Swipe\", start=[500,800], end=[500,200])</answer>";
const char* kFinish = "<think>Done.</think><answer>finish(message=\"Wi-Fi is on\")</answer>";
const char* kPay = "<think>Pay now.</think><answer>do(action=\"Tap\", element=[500,900], message=\"Pay 5 EUR\")</answer>";
const char* kTakeOver = "<think>A login.</think><answer>do(action=\"Take_over\", message=\"Log in, please\")</answer>";

std::vector<nlohmann::json> answer(const char* text) { return wbtest::contentStream(text, 1000, 30); }

QStringList actionsSent(const QStringList& log) {
    QStringList out;
    for (const QString& l : log)
        if (l.contains(QLatin1String(" input ")) || l.contains(QLatin1String(" monkey "))) out << l;
    return out;
}

}  // namespace

class TstAgentView : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;
    QString m_run;
    QString m_screens;

    // The form filled in as a user does: the URL, the task, a replay folder or the phone.
    void fillForm(AgentView& view, const QString& url, bool phone) {
        view.findChild<QComboBox*>("agentTargetKind")->setCurrentIndex(1);
        view.findChild<QLineEdit*>("agentUrl")->setText(url);
        view.findChild<QLineEdit*>("agentTask")->setText(QStringLiteral("Turn on Wi-Fi"));
        view.findChild<QComboBox*>("agentSourceKind")->setCurrentIndex(phone ? 1 : 0);
        if (phone)
            view.findChild<QLineEdit*>("agentSerial")->setText(QStringLiteral("emulator-5554"));
        else
            view.findChild<QLineEdit*>("agentScreens")->setText(m_screens);
    }

private slots:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        const QString screens = m_screens = m_tmp.filePath(QStringLiteral("screens"));
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

    // A run from the tab against the scripted server: the first step shows while the second is still thinking,
    // the GUI thread keeps turning, and the written run reloads as the run that was shown.
    void runsFromTheTabStepByStep() {
        wbtest::ScriptedServer server({answer(kTap), answer(kSwipe), answer(kFinish)});
        server.setGate(1);
        AgentView view;
        view.setRunsFolder(m_tmp.filePath(QStringLiteral("runs")));
        view.resize(1000, 700);
        view.show();
        fillForm(view, QString::fromStdString(server.url()), false);
        QSignalSpy started(&view, &AgentView::runStarted);
        QSignalSpy added(&view, &AgentView::stepAdded);
        QSignalSpy finished(&view, &AgentView::runFinished);
        // The GUI thread's heartbeat: the longest gap between two 10 ms ticks while the run goes on.
        QElapsedTimer clock;
        clock.start();
        qint64 last = 0, worstGapMs = 0;
        QTimer beat;
        connect(&beat, &QTimer::timeout, [&] {
            worstGapMs = std::max(worstGapMs, clock.elapsed() - last);
            last = clock.elapsed();
        });
        beat.start(10);

        QTest::mouseClick(view.findChild<QPushButton*>("agentRun"), Qt::LeftButton);
        QVERIFY(view.isRunning());
        QVERIFY(!view.findChild<QPushButton*>("agentRun")->isEnabled());
        QVERIFY(view.findChild<QPushButton*>("agentStop")->isEnabled());
        QVERIFY(started.wait(20000));
        QCOMPARE(started.first().at(1).toString(), QStringLiteral("replay of %1 (3 screenshots)").arg(m_screens));
        QVERIFY(added.wait(20000));
        // Step 1 is in the timeline and shown; step 2's model is still thinking (the gate).
        QTest::qWait(200);
        QCOMPARE(added.size(), 1);
        QVERIFY(view.isRunning());
        auto* timeline = view.findChild<QListWidget*>("agentTimeline");
        QCOMPARE(timeline->count(), 1);
        QCOMPARE(timeline->item(0)->text(), QStringLiteral("1. Tap"));
        QCOMPARE(view.currentStep(), 0);
        QVERIFY2(view.findChild<QLabel*>("agentRunStatus")->text().contains("Step 2"),
                 qPrintable(view.findChild<QLabel*>("agentRunStatus")->text()));
        QVERIFY(view.findChild<QLabel*>("agentAction")->text().contains("Tap [750, 250]"));
        QVERIFY(view.findChild<QLabel*>("agentAction")->text().contains("not executed (replay)"));
        QCOMPARE(view.findChild<QPlainTextEdit*>("agentThinking")->toPlainText(),
                 QStringLiteral("The Settings icon is on the right."));
        QVERIFY2(view.findChild<QLabel*>("agentTimings")->text().contains("TTFT"),
                 qPrintable(view.findChild<QLabel*>("agentTimings")->text()));
        QVERIFY(!view.run().steps[0].annotated.isNull());

        server.setGate(-1);
        QVERIFY(finished.wait(20000));
        beat.stop();
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QCOMPARE(finished.first().at(1).toString(), QStringLiteral("Wi-Fi is on"));
        QCOMPARE(added.size(), 3);
        QCOMPARE(timeline->count(), 3);
        QCOMPARE(view.currentStep(), 2);
        QVERIFY(!view.isRunning());
        QVERIFY(view.findChild<QPushButton*>("agentRun")->isEnabled());
        QVERIFY2(worstGapMs < 2000, qPrintable(QString::number(worstGapMs)));
        qInfo("GUI thread: longest gap between 10 ms ticks during the run %lld ms", worstGapMs);

        // Reloaded from its folder, it is the run that was shown live.
        const AgentRunView live = view.run();
        QVERIFY(view.liveRunFolder().startsWith(m_tmp.filePath(QStringLiteral("runs/run-"))));
        QSignalSpy loaded(&view, &AgentView::runLoaded);
        view.openRun(view.liveRunFolder());
        QVERIFY(loaded.wait(20000));
        QCOMPARE(loaded.first().first().toBool(), true);
        const AgentRunView& back = view.run();
        QCOMPARE(back.task, QStringLiteral("Turn on Wi-Fi"));
        QCOMPARE(back.status, QStringLiteral("finished: Wi-Fi is on"));
        QCOMPARE(back.target, live.target);
        QCOMPARE(back.steps.size(), 3);
        for (int i = 0; i < 3; ++i) {
            QCOMPARE(back.steps[i].title, live.steps[i].title);
            QCOMPARE(back.steps[i].answer, live.steps[i].answer);
            QCOMPARE(back.steps[i].reasoning, live.steps[i].reasoning);
            QCOMPARE(back.steps[i].timings, live.steps[i].timings);
            QCOMPARE(back.steps[i].marks, live.steps[i].marks);
            QCOMPARE(back.steps[i].annotated, live.steps[i].annotated);
        }
    }

    // Stop while the model is thinking: the request is cut short, the run ends "cancelled" at once, and the folder
    // keeps the steps done.
    void stopEndsAThinkingRun_data() {
        QTest::addColumn<bool>("beforeHeaders");
        QTest::newRow("thinking") << false;
        QTest::newRow("no byte yet") << true;  // the server has not answered at all: the socket is shut down
    }
    void stopEndsAThinkingRun() {
        QFETCH(bool, beforeHeaders);
        wbtest::ScriptedServer server({answer(kTap), answer(kSwipe), answer(kFinish)});
        server.setGate(1);
        server.setHoldHeaders(beforeHeaders);
        AgentView view;
        view.setRunsFolder(m_tmp.filePath(QStringLiteral("runs")));
        fillForm(view, QString::fromStdString(server.url()), false);
        QSignalSpy added(&view, &AgentView::stepAdded);
        QSignalSpy finished(&view, &AgentView::runFinished);
        QVERIFY(view.startRun());
        QVERIFY(added.wait(20000));
        QTest::qWait(300);  // step 2's stream is going (thinking dots)
        QVERIFY(view.isRunning());
        QElapsedTimer t;
        t.start();
        QTest::mouseClick(view.findChild<QPushButton*>("agentStop"), Qt::LeftButton);
        QVERIFY(finished.wait(10000));
        qInfo("Stop to the run's end: %lld ms", t.elapsed());
        QVERIFY2(t.elapsed() < 5000, qPrintable(QString::number(t.elapsed())));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("cancelled"));
        QVERIFY(!view.isRunning());
        QCOMPARE(server.bodies().size(), size_t(2));
        auto back = wb::readAgentTrace(view.liveRunFolder().toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.error().message.c_str());
        QCOMPARE(back->status, std::string("cancelled"));
        QCOMPARE(back->steps.front().parse.action.kind, wb::AgentActionKind::Tap);
        QVERIFY(back->steps.size() <= 2);
    }

    // On a phone: the device and its screen size are shown; unarmed nothing is sent and nobody is asked; armed,
    // the sensitive tap and Take_over pause the run with the tab's question (yes: tapped / went on; no: the run
    // ends "declined" and the tap is not sent).
    void phoneRunsPauseForTheUser() {
        wbtest::FakeAdb adb(m_tmp.filePath(QStringLiteral("adb")));
        // A phone-like screen: a title bar, list rows, a button at the bottom where the payment tap lands.
        for (int i = 1; i <= 3; ++i) {
            QImage img(200, 400, QImage::Format_RGB888);
            img.fill(QColor(250, 250, 250));
            QPainter p(&img);
            p.fillRect(0, 0, 200, 36, QColor(33, 150, 243));
            for (int r = 0; r < 6; ++r) p.fillRect(12, 52 + r * 44, 176, 32, QColor(225, 230, 235));
            p.fillRect(40, 344, 120, 32, QColor(76, 175, 80));
            p.end();
            QByteArray bytes;
            QBuffer buf(&bytes);
            QVERIFY(buf.open(QIODevice::WriteOnly) && img.save(&buf, "PNG"));
            adb.setScreen(i, bytes);
        }
        const QByteArray path = qgetenv("PATH");
        qputenv("PATH", adb.path());
        struct Case {
            bool armed;
            bool yes;
            const char* status;
            QStringList sent;
            int questions;
        };
        const Case cases[] = {
            {false, true, "finished", {}, 0},
            {true, true, "finished",
             {"-s emulator-5554 shell input tap 150 100", "-s emulator-5554 shell input tap 100 360"}, 2},
            {true, false, "declined", {"-s emulator-5554 shell input tap 150 100"}, 1},
        };
        for (const Case& c : cases) {
            adb.clearLog();
            adb.resetScreens();
            wbtest::ScriptedServer server({answer(kTap), answer(kPay), answer(kTakeOver), answer(kFinish)});
            AgentView view;
            view.setRunsFolder(m_tmp.filePath(QStringLiteral("runs")));
            view.resize(1100, 760);
            view.show();
            fillForm(view, QString::fromStdString(server.url()), true);
            auto* arm = view.findChild<QCheckBox*>("agentArm");
            QVERIFY(!arm->isChecked());  // off by default
            arm->setChecked(c.armed);
            // The auto-answering hook: the tab's own buttons, clicked once the question is shown.
            QList<QPair<bool, QString>> asked;
            connect(&view, &AgentView::decisionRequested, &view, [&](bool takeOver, const QString& message) {
                asked << qMakePair(takeOver, message);
                // The step waits in the timeline, shown with where the tap would land.
                auto* timeline = view.findChild<QListWidget*>("agentTimeline");
                if (!takeOver) {
                    QCOMPARE(timeline->item(timeline->count() - 1)->text(), QStringLiteral("2. Tap (waiting for you)"));
                    QCOMPARE(view.currentStep(), timeline->count() - 1);
                    QVERIFY2(view.run().steps.last().marks.join(' ').contains("ring at 100,360"),
                             qPrintable(view.run().steps.last().marks.join(' ')));
                    QVERIFY(view.findChild<QLabel*>("agentAction")->text().contains("Pay 5 EUR"));
                }
                if (c.armed && c.yes && !takeOver) wbtest::saveScreenshot(&view, QStringLiteral("agent-phone"));
                QVERIFY(view.findChild<QFrame*>("agentPauseBar")->isVisibleTo(&view));
                QVERIFY(view.isRunning());
                QPushButton* b = view.findChild<QPushButton*>(c.yes ? "agentPauseYes" : "agentPauseNo");
                QTimer::singleShot(50, b, [b] { QTest::mouseClick(b, Qt::LeftButton); });
            });
            QSignalSpy started(&view, &AgentView::runStarted);
            QSignalSpy finished(&view, &AgentView::runFinished);
            QVERIFY(view.startRun());
            QVERIFY(finished.wait(30000));
            QCOMPARE(started.size(), 1);
            QCOMPARE(started.first().at(1).toString(), QStringLiteral("Android phone emulator-5554 through adb (200 x 400)"));
            QVERIFY2(finished.first().at(0).toString() == QLatin1String(c.status),
                     qPrintable(finished.first().at(0).toString() + ": " + finished.first().at(1).toString()));
            QCOMPARE(actionsSent(adb.log()), c.sent);
            QCOMPARE(int(asked.size()), c.questions);
            if (c.questions > 0) QCOMPARE(asked[0], qMakePair(false, QStringLiteral("Pay 5 EUR")));
            if (c.questions > 1) QCOMPARE(asked[1], qMakePair(true, QStringLiteral("Log in, please")));
            QVERIFY(!view.findChild<QFrame*>("agentPauseBar")->isVisibleTo(&view));
            const AgentRunView& run = view.run();
            QVERIFY(run.steps.size() >= 2);
            QVERIFY2(run.steps[0].executed.startsWith(c.armed ? "sent: adb shell input tap 150 100"
                                                             : "not executed (execution off): adb shell input tap"),
                     qPrintable(run.steps[0].executed));
            QCOMPARE(run.steps[1].title, QStringLiteral("2. Tap"));  // the waiting entry became the step
            if (c.armed && c.yes)
                QCOMPARE(run.steps[1].executed, QStringLiteral("the user confirmed; sent: adb shell input tap 100 360"));
            if (c.armed && !c.yes) QCOMPARE(run.steps[1].executed, QStringLiteral("not tapped: the user declined"));
            QCOMPARE(view.findChild<QListWidget*>("agentTimeline")->count(), int(run.steps.size()));
        }
        qputenv("PATH", path);
    }

    // The app table is edited in the tab (Apps…) and Launch uses it: a row added there is the package monkey gets.
    void appTableFeedsLaunch() {
        wbtest::FakeAdb adb(m_tmp.filePath(QStringLiteral("adb-apps")));
        QFile shot(m_screens + QStringLiteral("/step_1.png"));
        QVERIFY(shot.open(QIODevice::ReadOnly));
        adb.setScreen(1, shot.readAll());
        const QByteArray path = qgetenv("PATH");
        qputenv("PATH", adb.path());
        wbtest::ScriptedServer server(
            {answer("<think>Open the notes.</think><answer>do(action=\"Launch\", app=\"My Notes\")</answer>"),
             answer(kFinish)});
        AgentView view;
        view.setRunsFolder(m_tmp.filePath(QStringLiteral("runs")));
        fillForm(view, QString::fromStdString(server.url()), true);
        view.findChild<QCheckBox*>("agentArm")->setChecked(true);
        QTest::mouseClick(view.findChild<QPushButton*>("agentApps"), Qt::LeftButton);
        auto* dialog = view.findChild<QDialog*>();
        QVERIFY(dialog && dialog->isVisible());
        auto* table = dialog->findChild<QTableWidget*>("agentAppTable");
        QVERIFY(table);
        QVERIFY(table->rowCount() > 20);  // the built-in table
        const int row = table->rowCount();
        table->insertRow(row);
        table->setItem(row, 0, new QTableWidgetItem(QStringLiteral("My Notes")));
        table->setItem(row, 1, new QTableWidgetItem(QStringLiteral("org.example.notes")));
        dialog->findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok)->click();
        QSignalSpy finished(&view, &AgentView::runFinished);
        QVERIFY(view.startRun());
        QVERIFY(finished.wait(30000));
        qputenv("PATH", path);
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("finished"));
        QCOMPARE(actionsSent(adb.log()),
                 QStringList({"-s emulator-5554 shell monkey -p org.example.notes -c android.intent.category.LAUNCHER 1"}));
    }

    // The loaded model as the agent's model: the tiny random GLM-4.1V in the window's engine. Its answers are
    // noise, so the run stops at the first step with a parse error, recorded like any other step.
    void runsWithTheLoadedModel() {
        const QString dir = m_tmp.filePath(QStringLiteral("tiny_glm4v"));
        QVERIFY(wb::writeTinyGlmCheckpoint(dir.toStdString()).ok());
        MainWindow window(m_tmp.filePath(QStringLiteral("data-engine")));
        QSignalSpy loadedModel(window.bridge(), &EngineBridge::loadFinished);
        LoadRequest req;
        req.path = dir;
        req.maxSequences = 1;
        window.bridge()->loadModel(req);
        QVERIFY(loadedModel.wait(60000));
        AgentView* view = window.agentView();
        auto* kind = view->findChild<QComboBox*>("agentTargetKind");
        QCOMPARE(kind->currentIndex(), 0);
        QCOMPARE(kind->itemText(0), QStringLiteral("Loaded model: tiny_glm4v"));
        view->findChild<QLineEdit*>("agentTask")->setText(QStringLiteral("open the settings"));
        view->findChild<QLineEdit*>("agentScreens")->setText(m_screens);
        view->findChild<QSpinBox*>("agentMaxTokens")->setValue(24);
        QSignalSpy started(view, &AgentView::runStarted);
        QSignalSpy finished(view, &AgentView::runFinished);
        QVERIFY(view->startRun());
        QVERIFY(finished.wait(120000));
        QCOMPARE(started.size(), 1);
        QCOMPARE(started.first().at(0).toString(), QStringLiteral("workbench engine: %1").arg(dir));
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("parse_error"));
        QCOMPARE(view->run().steps.size(), 1);
        const AgentStepView& s = view->run().steps[0];
        QVERIFY(!s.parsed);
        QVERIFY2(s.timings.contains("TTFT") && !s.timings.contains("TTFT —"), qPrintable(s.timings));
        QVERIFY(view->run().dir.startsWith(m_tmp.filePath(QStringLiteral("data-engine/agent-runs/run-"))));
        auto back = wb::readAgentTrace(view->liveRunFolder().toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.error().message.c_str());
        QCOMPARE(back->status, std::string("parse_error"));
        QVERIFY(back->steps[0].reply.completionTokens > 0 && back->steps[0].reply.completionTokens <= 24);
    }

    // What cannot start says why in the tab: no model loaded, no task, adb missing.
    void startProblemsAreShown() {
        AgentView view;  // no engine bridge: nothing loaded
        view.setRunsFolder(m_tmp.filePath(QStringLiteral("runs")));
        auto* status = view.findChild<QLabel*>("agentRunStatus");
        view.findChild<QLineEdit*>("agentTask")->setText(QStringLiteral("x"));
        QVERIFY(!view.startRun());
        QVERIFY2(status->text().contains("No model is loaded"), qPrintable(status->text()));
        fillForm(view, QStringLiteral("http://127.0.0.1:9/v1"), true);
        view.findChild<QLineEdit*>("agentTask")->clear();
        QVERIFY(!view.startRun());
        QVERIFY2(status->text().contains("Type the task"), qPrintable(status->text()));
        view.findChild<QLineEdit*>("agentTask")->setText(QStringLiteral("x"));
        const QByteArray path = qgetenv("PATH");
        const QString empty = m_tmp.filePath(QStringLiteral("empty"));
        QDir().mkpath(empty);
        qputenv("PATH", empty.toUtf8());
        QSignalSpy finished(&view, &AgentView::runFinished);
        QVERIFY(view.startRun());
        QVERIFY(finished.wait(20000));
        qputenv("PATH", path);
        QCOMPARE(finished.first().at(0).toString(), QStringLiteral("error"));
        QVERIFY2(status->text().contains("adb is not on PATH"), qPrintable(status->text()));
        QVERIFY(view.findChild<QPushButton*>("agentRun")->isEnabled());
        // A server that is not there.
        fillForm(view, QStringLiteral("http://127.0.0.1:9/v1"), false);
        QVERIFY(view.startRun());
        QVERIFY(finished.wait(20000));
        QCOMPARE(finished.last().at(0).toString(), QStringLiteral("error"));
        QVERIFY2(status->text().contains("http://127.0.0.1:9/v1 cannot be reached"), qPrintable(status->text()));
    }
};

QTEST_MAIN(TstAgentView)
#include "tst_agent_view.moc"
