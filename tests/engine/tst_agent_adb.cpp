// The phone agent on a live phone through adb (engine/agent/adb_source.cpp, `wb agent --adb`), against a stand-in
// `adb` on PATH (tests/common/fake_adb.h: a script that serves generated PNGs and records every command line it
// gets). What is checked is what the real tool would be told: the command lines, in adb's own syntax, for every
// action; that nothing is sent until execution is armed; the questions a sensitive tap and Take_over ask, and
// what a "no" does; and each way adb can fail (not installed, no device, unauthorized, a screenshot that is not a
// PNG) as an error that says so. The model is a scripted target in its real answer format (in process) or the
// scripted OpenAI-compatible server (for `wb agent`).
#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent_test_server.h"
#include "api/agent.h"
#include "fake_adb.h"
#include "media/image.h"
#include "test_images.h"

using namespace wb;
using nlohmann::json;

namespace {

constexpr int kW = 200, kH = 400;

// Answers in the model's format, one per step, in order; after the last, finish.
class ScriptedTarget : public AgentChatTarget {
public:
    explicit ScriptedTarget(std::vector<std::string> answers) : m_answers(std::move(answers)) {}
    std::string name() const override { return "scripted"; }
    AgentReply complete(const AgentRequest&, const std::atomic<bool>*) override {
        AgentReply r;
        r.reasoning = "step " + std::to_string(m_n + 1);
        r.answer = m_n < m_answers.size() ? m_answers[m_n] : "finish(message=\"done\")";
        ++m_n;
        r.finishReason = "stop";
        r.ttftMs = 1;
        r.totalMs = 2;
        return r;
    }

private:
    std::vector<std::string> m_answers;
    size_t m_n = 0;
};

std::vector<uint8_t> png(int variant) {
    return encodePng(wbtest::procedural(kW, kH, variant)).value();
}

// The log without what each capture runs (the screenshot and the app in front).
QStringList withoutScreencaps(const QStringList& log) {
    QStringList out;
    for (const QString& l : log)
        if (!l.endsWith(QLatin1String("exec-out screencap -p")) && !l.endsWith(QLatin1String("shell dumpsys window")))
            out << l;
    return out;
}

}  // namespace

class TestAgentAdb : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;
    QByteArray m_origPath;
    std::unique_ptr<wbtest::FakeAdb> m_adb;

    Result<std::unique_ptr<AgentScreenSource>> source(bool armed, const std::string& serial = "emulator-5554") {
        AgentAdbOptions o;
        o.serial = serial;
        o.execute = std::make_shared<std::atomic<bool>>(armed);
        return makeAdbScreenSource(o);
    }

private slots:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        m_origPath = qgetenv("PATH");
        m_adb = std::make_unique<wbtest::FakeAdb>(m_tmp.filePath(QStringLiteral("bin")));
        for (int i = 1; i <= 3; ++i) m_adb->setScreen(i, png(i));
        qputenv("PATH", m_adb->path());
    }
    void init() {
        m_adb->setWindowDump({});
        m_adb->clearLog();
        m_adb->resetScreens();
        m_adb->setDevices(QStringLiteral("emulator-5554\tdevice\n"));
        for (int i = 1; i <= 3; ++i) m_adb->setScreen(i, png(i));
    }

    void inputTextIsQuotedForTheDeviceShell() {
        QCOMPARE(adbInputTextArgument("hello world").value(), std::string("'hello%sworld'"));
        QCOMPARE(adbInputTextArgument("it's").value(), std::string("'it'\\''s'"));
        QCOMPARE(adbInputTextArgument("a;b|c&$(rm -rf /)`x`>\"y\"").value(),
                 std::string("'a;b|c&$(rm%s-rf%s/)`x`>\"y\"'"));
        auto cjk = adbInputTextArgument("你好");
        QVERIFY(!cjk.ok());
        QVERIFY2(cjk.error().message.find("ASCII only") != std::string::npos, cjk.error().message.c_str());
    }

    // Armed: each action becomes the real tool's command line, with -s SERIAL; the screen size is shown.
    void armedActionsAreAdbCommandLines() {
        m_adb->setWindowDump(
            "WINDOW MANAGER WINDOWS (dumpsys window windows)\n  mCurrentFocus=Window{4f1c u0 "
            "com.android.settings/com.android.settings.Settings}\n  mFocusedApp=ActivityRecord{9 u0 "
            "com.android.settings/.Settings t12}\n");
        auto src = source(true);
        QVERIFY2(src.ok(), src.ok() ? "" : src.error().message.c_str());
        QCOMPARE((*src)->describe(), std::string("Android phone emulator-5554 through adb (200 x 400)"));
        QVERIFY((*src)->executes());
        ScriptedTarget target(
            {"do(action=\"Tap\", element=[500,250])", "do(action=\"Swipe\", start=[500,800], end=[500,200])",
             "do(action=\"Long Press\", element=[250,500])", "do(action=\"Double Tap\", element=[750,750])",
             "do(action=\"Type\", text=\"hello world; rm -rf /\")", "do(action=\"Type\", text=\"it's\\nok\")",
             "do(action=\"Launch\", app=\"settings\")", "do(action=\"Back\")", "do(action=\"Home\")",
             "do(action=\"Tap\", element=[500,500], message=\"Pay 5 EUR\")",
             "do(action=\"Take_over\", message=\"Log in, please\")", "do(action=\"Wait\", duration=\"0.2 seconds\")"});
        AgentOptions o;
        o.task = "all the actions";
        std::vector<std::pair<AgentAsk, std::string>> asked;
        o.ask = [&](AgentAsk what, const AgentStep& pending) {
            asked.emplace_back(what, pending.parse.action.message);
            if (what == AgentAsk::ConfirmSensitive) {  // the question comes with where the tap lands
                [&] {
                    QCOMPARE(pending.index, 10);
                    QCOMPARE(pending.marks.size(), size_t(1));
                    QCOMPARE(pending.marks[0].x, 100);
                    QCOMPARE(pending.marks[0].y, 200);
                    QVERIFY(pending.screen.bytes && !pending.screen.bytes->empty());
                }();
            }
            return true;
        };
        AgentSession session(target, **src, o);
        session.run();
        QCOMPARE(session.stopReason(), AgentStopReason::Finished);
        QCOMPARE(session.steps().size(), size_t(13));
        const QStringList log = m_adb->log();
        QCOMPARE(log.count(QStringLiteral("-s emulator-5554 exec-out screencap -p")), 13);
        QCOMPARE(log.count(QStringLiteral("-s emulator-5554 shell dumpsys window")), 13);
        const QStringList expected = {
            "devices",
            "-s emulator-5554 shell wm size",
            "-s emulator-5554 shell input tap 100 100",
            "-s emulator-5554 shell input swipe 100 320 100 80 1000",
            "-s emulator-5554 shell input swipe 50 200 50 200 3000",
            "-s emulator-5554 shell input tap 150 300",
            "-s emulator-5554 shell input tap 150 300",
            "-s emulator-5554 shell input text 'hello%sworld;%srm%s-rf%s/'",
            "-s emulator-5554 shell input text 'it'\\''s'",
            "-s emulator-5554 shell input keyevent 66",
            "-s emulator-5554 shell input text 'ok'",
            "-s emulator-5554 shell monkey -p com.android.settings -c android.intent.category.LAUNCHER 1",
            "-s emulator-5554 shell input keyevent 4",
            "-s emulator-5554 shell input keyevent 3",
            "-s emulator-5554 shell input tap 100 200",
        };
        QCOMPARE(withoutScreencaps(log), expected);
        QCOMPARE(asked.size(), size_t(2));
        QCOMPARE(asked[0].first, AgentAsk::ConfirmSensitive);
        QCOMPARE(asked[0].second, std::string("Pay 5 EUR"));
        QCOMPARE(asked[1].first, AgentAsk::TakeOver);
        const auto& steps = session.steps();
        QCOMPARE(steps[0].executed, std::string("sent: adb shell input tap 100 100"));
        QCOMPARE(steps[0].screen.width, kW);
        QCOMPARE(steps[0].screen.name, std::string("screencap 1"));
        // The app in front, by its name in the table, in the screen info the model gets.
        QCOMPARE(steps[0].screen.currentApp, std::string("Settings"));
        QVERIFY(steps[0].request.back().content.find("{\"current_app\":\"Settings\"}") != std::string::npos);
        QCOMPARE(steps[9].executed, std::string("the user confirmed; sent: adb shell input tap 100 200"));
        QCOMPARE(steps[10].executed, std::string("the user took over and went on; nothing to send (Take_over)"));
        QCOMPARE(steps[11].executed, std::string("waited 200 ms"));
    }

    // Not armed (the default): nothing but screenshots reaches the phone, nobody is asked, the step says what
    // would have been sent; arming it mid-run takes effect at the next step.
    void unarmedSendsNothing() {
        m_adb->setWindowDump("  mCurrentFocus=Window{1 u0 org.example.notes/org.example.notes.Main}\n");
        AgentAdbOptions o;
        o.execute = std::make_shared<std::atomic<bool>>(false);  // and no serial: the only device
        auto src = makeAdbScreenSource(o);
        QVERIFY2(src.ok(), src.ok() ? "" : src.error().message.c_str());
        QVERIFY(!(*src)->executes());
        ScriptedTarget target({"do(action=\"Tap\", element=[500,500], message=\"Send the message\")",
                               "do(action=\"Take_over\", message=\"log in\")", "do(action=\"Home\")",
                               "do(action=\"Back\")"});
        AgentOptions ao;
        int asked = 0;
        ao.ask = [&](AgentAsk, const AgentStep&) { return ++asked, true; };
        AgentSession session(target, **src, ao);
        QVERIFY(session.step() && session.step() && session.step());
        QCOMPARE(asked, 0);
        QCOMPARE(withoutScreencaps(m_adb->log()), QStringList({"devices", "shell wm size"}));
        QCOMPARE(session.steps()[0].executed, std::string("not executed (execution off): adb shell input tap 100 200"));
        QCOMPARE(session.steps()[0].screen.currentApp, std::string("org.example.notes"));  // not in the table
        QCOMPARE(session.steps()[2].executed, std::string("not executed (execution off): adb shell input keyevent 3"));
        o.execute->store(true);
        QVERIFY(session.step());
        QCOMPARE(withoutScreencaps(m_adb->log()).last(), QStringLiteral("shell input keyevent 4"));
    }

    // "No" to a sensitive tap ends the run unsent; "no" to Take_over ends it too; no hook at all declines.
    void declinedSensitiveTapIsNotSent_data() {
        QTest::addColumn<QString>("answer");
        QTest::addColumn<int>("hook");  // 0: none, 1: says no
        QTest::addColumn<int>("reason");
        QTest::newRow("sensitive, no") << "do(action=\"Tap\", element=[500,500], message=\"Buy it\")" << 1
                                       << int(AgentStopReason::Declined);
        QTest::newRow("sensitive, no hook")
            << "do(action=\"Tap\", element=[500,500], message=\"Buy it\")" << 0 << int(AgentStopReason::Declined);
        QTest::newRow("take over, no") << "do(action=\"Take_over\", message=\"Scan your finger\")" << 1
                                       << int(AgentStopReason::Cancelled);
        QTest::newRow("interact, no") << "do(action=\"Interact\")" << 1 << int(AgentStopReason::Cancelled);
    }
    void declinedSensitiveTapIsNotSent() {
        QFETCH(QString, answer);
        QFETCH(int, hook);
        QFETCH(int, reason);
        auto src = source(true);
        QVERIFY(src.ok());
        ScriptedTarget target({"do(action=\"Tap\", element=[500,250])", answer.toStdString()});
        AgentOptions o;
        int asked = 0;
        if (hook) o.ask = [&](AgentAsk, const AgentStep&) { return ++asked, false; };
        AgentSession session(target, **src, o);
        session.run();
        QCOMPARE(int(session.stopReason()), reason);
        QCOMPARE(asked, hook);
        QCOMPARE(session.steps().size(), size_t(2));
        QCOMPARE(withoutScreencaps(m_adb->log()), QStringList({"devices", "-s emulator-5554 shell wm size",
                                                               "-s emulator-5554 shell input tap 100 100"}));
        QVERIFY(session.steps()[1].executed.rfind("not tapped", 0) == 0 ||
                session.steps()[1].executed.rfind("nothing", 0) == 0);
    }

    void adbProblemsAreClearErrors() {
        auto expectError = [](Result<std::unique_ptr<AgentScreenSource>> r, const char* text) {
            QVERIFY2(!r.ok(), text);
            QVERIFY2(r.error().message.find(text) != std::string::npos, r.error().message.c_str());
        };
        // Not installed.
        const QString empty = m_tmp.filePath(QStringLiteral("empty"));
        QDir().mkpath(empty);
        qputenv("PATH", empty.toUtf8());
        expectError(source(true), "adb is not on PATH");
        qputenv("PATH", m_adb->path());
        // No device, several without a serial, one not listed, not authorized, offline.
        m_adb->setDevices({});
        expectError(source(true), "no Android device attached");
        m_adb->setDevices(QStringLiteral("emulator-5554\tdevice\nR5CT\tdevice\n"));
        expectError(source(true, ""), "several devices attached (emulator-5554 (device), R5CT (device))");
        expectError(source(true, "XYZ"), "no device XYZ attached");
        QVERIFY(source(true, "R5CT").ok());
        m_adb->setDevices(QStringLiteral("R5CT\tunauthorized\n"));
        expectError(source(true, "R5CT"), "has not authorized this computer");
        m_adb->setDevices(QStringLiteral("R5CT\toffline\n"));
        expectError(source(true, ""), "R5CT is offline");

        // A screenshot that is not a PNG (what a locked or secure screen gives), then a Launch of an unknown app.
        m_adb->setDevices(QStringLiteral("emulator-5554\tdevice\n"));
        m_adb->setScreen(1, QByteArray("error: no screen\n"));
        auto src = source(true);
        QVERIFY(src.ok());
        auto shot = (*src)->capture();
        QVERIFY(!shot.ok());
        QVERIFY2(shot.error().message.find("the screenshot from adb is not a PNG (17 bytes, starting \"error: no "
                                           "screen.\")") != std::string::npos,
                 shot.error().message.c_str());
        m_adb->resetScreens();
        ScriptedTarget target({});
        AgentSession s1(target, **src, {});
        QVERIFY(!s1.step());
        QCOMPARE(s1.stopReason(), AgentStopReason::ScreenError);
        QVERIFY(s1.stopDetail().find("not a PNG") != std::string::npos);

        m_adb->setScreen(1, png(1));
        m_adb->resetScreens();
        ScriptedTarget launch({"do(action=\"Launch\", app=\"NoSuchApp\")"});
        AgentSession s2(launch, **src, {});
        QVERIFY(!s2.step());
        QCOMPARE(s2.stopReason(), AgentStopReason::ScreenError);
        QVERIFY2(s2.stopDetail().find("no package known for the app \"NoSuchApp\"") != std::string::npos,
                 s2.stopDetail().c_str());
    }

    // A process the command left behind with its stdout (adb's server, started by the first command) does not
    // hold the agent until it exits.
    void aServerLeftBehindDoesNotHang() {
        m_adb->setLeavesDaemon(true);
        QElapsedTimer t;
        t.start();
        auto src = source(true);
        m_adb->setLeavesDaemon(false);
        QVERIFY2(src.ok(), src.ok() ? "" : src.error().message.c_str());
        qInfo("adb devices with a process left behind: %lld ms", t.elapsed());
        QVERIFY2(t.elapsed() < 3000, qPrintable(QString::number(t.elapsed())));
    }

    // `wb agent --adb SERIAL --execute` with --confirm: no declines the sensitive tap; ask refuses without a
    // terminal; and adb missing is an error of the command, not a crash.
    void cliOnThePhone() {
#ifndef WB_EXE
        QSKIP("the wb executable is not built");
#else
        const char* tap = "<think>Open it.</think><answer>do(action=\"Tap\", element=[500,250])</answer>";
        const char* pay =
            "<think>Pay now.</think><answer>do(action=\"Tap\", element=[500,900], message=\"Pay 9 "
            "EUR\")</answer>";
        for (const char* confirm : {"no", "ask"}) {
            m_adb->clearLog();
            m_adb->resetScreens();
            wbtest::ScriptedServer server({wbtest::contentStream(tap, 900, 20), wbtest::contentStream(pay, 950, 20)});
            const QString run = m_tmp.filePath(QStringLiteral("run_cli_%1").arg(confirm));
            QProcess p;
            p.start(WB_EXE, {"agent", "--url", QString::fromStdString(server.url()), "--task", "Pay the bill", "--adb",
                             "emulator-5554", "--execute", "--confirm", confirm, "--out", run});
            QVERIFY(p.waitForFinished(60000));
            const QString err = QString::fromUtf8(p.readAllStandardError());
            QVERIFY2(p.exitCode() == 0, qPrintable(err));
            QVERIFY2(err.contains("declined after 2 step(s): the user declined the sensitive tap: Pay 9 EUR"),
                     qPrintable(err));
            QVERIFY2(err.contains("Android phone emulator-5554 through adb (200 x 400)"), qPrintable(err));
            if (QLatin1String(confirm) == QLatin1String("ask"))
                QVERIFY2(err.contains("needs a decision and stdin is not a terminal"), qPrintable(err));
            QCOMPARE(withoutScreencaps(m_adb->log()), QStringList({"devices", "-s emulator-5554 shell wm size",
                                                                   "-s emulator-5554 shell input tap 100 100"}));
            std::ifstream in((run + "/trace.json").toStdString());
            const json t = json::parse(in, nullptr, false);
            QCOMPARE(t["status"].get<std::string>(), std::string("declined"));
            QCOMPARE(t["source"].get<std::string>(),
                     std::string("Android phone emulator-5554 through adb (200 x 400)"));
            QCOMPARE(t["steps"][0]["executed"].get<std::string>(), std::string("sent: adb shell input tap 100 100"));
            QCOMPARE(t["steps"][1]["executed"].get<std::string>(), std::string("not tapped: the user declined"));
            // The run reads back, the screenshots the phone sent included.
            auto back = readAgentTrace(run.toStdString());
            QVERIFY2(back.ok(), back.ok() ? "" : back.error().message.c_str());
            QCOMPARE(back->steps[0].screen.width, kW);
        }
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("PATH"), m_tmp.filePath(QStringLiteral("empty")));
        QDir().mkpath(m_tmp.filePath(QStringLiteral("empty")));
        p.setProcessEnvironment(env);
        p.start(WB_EXE, {"agent", "--url", "http://127.0.0.1:9/v1", "--task", "x", "--adb", "--out",
                         m_tmp.filePath(QStringLiteral("run_none"))});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 1);
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(err.contains("wb agent: adb is not on PATH"), qPrintable(err));
        // --execute without a phone is a usage error.
        p.setProcessEnvironment(QProcessEnvironment::systemEnvironment());
        p.start(WB_EXE, {"agent", "--url", "http://127.0.0.1:9/v1", "--task", "x", "--screens", ".", "--execute",
                         "--out", m_tmp.filePath(QStringLiteral("run_none"))});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 2);
#endif
    }

    void cleanupTestCase() {
        qputenv("PATH", m_origPath);
    }
};

QTEST_MAIN(TestAgentAdb)
#include "tst_agent_adb.moc"
