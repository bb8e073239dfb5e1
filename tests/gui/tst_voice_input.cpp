// Voice input in the desktop app: a clip (jfk.wav) transcribed with a tiny random Whisper (wb-make-whisper) and
// the Silero VAD on a pool thread, progress while it runs, the GUI thread never blocked, the text equal to what
// SpeechRecognizer gives for the same file; in the agent view a clip becomes the task text (editable, nothing run)
// and Cancel stops it; an audio file dropped on the chat's prompt box becomes the prompt (and with the setting
// voice/transcribeOnDrop off, is only attached).
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QMimeData>
#include <QTemporaryDir>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTimer>
#include <QtTest>

#include "api/speech.h"
#include "app/agent_view.h"
#include "app/chat_store.h"
#include "app/chat_view.h"
#include "app/input_panel.h"
#include "bridge/engine_bridge.h"
#include "fixtures.h"

class TstVoiceInput : public QObject {
    Q_OBJECT
    QString m_model;

    static QString jfk() { return QString::fromStdString(wbtest::fixture("audio/jfk.wav")); }
    static QString vad() { return QString::fromStdString(wbtest::fixture("audio/silero-v6.2.0-ggml.bin")); }
    // What the library gives for jfk.wav with the same models and its default options.
    QString libraryText() const {
        auto rec = wb::SpeechRecognizer::load(m_model.toStdString());
        auto det = wb::SpeechDetector::load(vad().toStdString());
        auto audio = wb::loadSpeechAudio(jfk().toStdString());
        if (!rec.ok() || !det.ok() || !audio.ok()) return QStringLiteral("<library failed>");
        auto t = (*rec)->transcribe(*audio, {}, det->get());
        return t.ok() ? QString::fromStdString(t->text) : QStringLiteral("<library failed>");
    }
    static void dropOn(QWidget* target, QMimeData* mime) {
        QDragEnterEvent enter(QPoint(5, 5), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(target, &enter);
        QVERIFY(enter.isAccepted());
        QDropEvent drop(QPointF(5, 5), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(target, &drop);
    }

private slots:
    void initTestCase() {
#ifndef WB_MAKE_WHISPER
        QSKIP("wb-make-whisper is not built in this configuration");
#else
        WB_REQUIRE_FIXTURE("audio/for-tests-ggml-tiny.bin");
        WB_REQUIRE_FIXTURE("audio/jfk.wav");
        m_model = QString::fromStdString(wbtest::tempDir()) + "/ggml-voice.bin";
        QProcess p;
        p.start(QStringLiteral(WB_MAKE_WHISPER),
                {"--vocab-from", QString::fromStdString(wbtest::fixture("audio/for-tests-ggml-tiny.bin")), "--hf",
                 QString::fromStdString(wbtest::tempDir()) + "/voice-hf", "--ggml", m_model});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
#endif
    }

    void transcribesOffTheGuiThread() {
        wbgui::InputPanel panel(QString::fromStdString(wbtest::tempDir()));
        panel.setCapabilities(false, false, "text-only model");  // the chat model takes no audio
        auto* button = panel.findChild<QPushButton*>("transcribeAudio");
        QVERIFY(button);
        QVERIFY(!button->isEnabled());
        QVERIFY(!panel.setAudioFile(QString::fromStdString(wbtest::fixture("audio/jfk.wav"))));  // no speech model
        panel.setSpeechModels(m_model, QString::fromStdString(wbtest::fixture("audio/silero-v6.2.0-ggml.bin")));
        QSignalSpy decoded(&panel, &wbgui::InputPanel::audioDecoded);
        QVERIFY(panel.setAudioFile(QString::fromStdString(wbtest::fixture("audio/jfk.wav"))));
        QVERIFY(decoded.wait(30000));
        QVERIFY(button->isEnabled());
        QVERIFY(panel.attachments().isEmpty());  // for transcription only: not sent to a text-only model
        QSignalSpy progress(&panel, &wbgui::InputPanel::transcriptionProgress);
        QSignalSpy done(&panel, &wbgui::InputPanel::transcriptionFinished);
        // The GUI thread keeps turning while Whisper runs: a 10 ms timer keeps firing. The machine is shared, so the
        // bound is loose: no gap between ticks over 1 s (the transcription itself takes seconds).
        QElapsedTimer since;
        qint64 worstGapMs = 0;
        int ticks = 0;
        QTimer heartbeat;
        heartbeat.setInterval(10);
        since.start();
        connect(&heartbeat, &QTimer::timeout, [&] {
            worstGapMs = std::max(worstGapMs, since.restart());
            ++ticks;
        });
        heartbeat.start();
        button->click();
        QVERIFY(panel.isTranscribing());
        QVERIFY(done.wait(120000));
        heartbeat.stop();
        const QString error = done.at(0).at(1).toString();
        QVERIFY2(error.isEmpty(), qPrintable(error));
        QVERIFY(!progress.isEmpty());
        QCOMPARE(progress.last().at(0).toDouble(), 1.0);
        QVERIFY(ticks > 5);
        QVERIFY2(worstGapMs < 1000, qPrintable(QString::number(worstGapMs)));
        // The same text as the library's, with the same models.
        auto rec = wb::SpeechRecognizer::load(m_model.toStdString());
        auto vad = wb::SpeechDetector::load(wbtest::fixture("audio/silero-v6.2.0-ggml.bin"));
        auto audio = wb::loadSpeechAudio(wbtest::fixture("audio/jfk.wav"));
        QVERIFY(rec.ok() && vad.ok() && audio.ok());
        auto want = (*rec)->transcribe(*audio, {}, vad->get());
        QVERIFY(want.ok());
        QCOMPARE(done.at(0).at(0).toString(), QString::fromStdString(want->text));
        QVERIFY(!done.at(0).at(0).toString().isEmpty());
    }

    void agentTaskFromClip() {
        wbgui::AgentView view;
        auto* task = view.findChild<QLineEdit*>("agentTask");
        wbgui::InputPanel* voice = view.voiceInput();
        QVERIFY(task && voice && voice->isVoiceOnly());
        voice->setSpeechModels(QString(), QString());
        QVERIFY(!voice->setAudioFile(jfk()));  // no speech model: nothing to speak into
        voice->setSpeechModels(m_model, vad());
        QSignalSpy progress(voice, &wbgui::InputPanel::transcriptionProgress);
        QSignalSpy done(voice, &wbgui::InputPanel::transcriptionFinished);
        // Attached: trimmed and transcribed at once (no Transcribe press), on a pool thread.
        QVERIFY(voice->setAudioFile(jfk()));
        QVERIFY(done.wait(120000));
        QVERIFY2(done.at(0).at(1).toString().isEmpty(), qPrintable(done.at(0).at(1).toString()));
        QVERIFY(!progress.isEmpty());
        QCOMPARE(progress.last().at(0).toDouble(), 1.0);
        const QString want = libraryText();
        QVERIFY(!want.isEmpty());
        QCOMPARE(task->text(), want.trimmed());
        QVERIFY(!task->isReadOnly());  // the person edits it
        QVERIFY(!view.isRunning());    // and nothing runs until Run
        // Cancel while it runs: the error "cancelled", the (edited) task untouched.
        task->setText(QStringLiteral("open Settings"));
        done.clear();
        QVERIFY(voice->setAudioFile(jfk()));
        QTRY_VERIFY_WITH_TIMEOUT(voice->isTranscribing(), 30000);
        auto* button = voice->findChild<QPushButton*>("transcribeAudio");
        QVERIFY(button && button->isEnabled());
        QCOMPARE(button->text(), QStringLiteral("Cancel"));
        button->click();
        QVERIFY(done.wait(120000));
        QCOMPARE(done.at(0).at(1).toString(), QStringLiteral("cancelled"));
        QCOMPARE(task->text(), QStringLiteral("open Settings"));
        QCOMPARE(button->text(), QStringLiteral("Transcribe"));
        QVERIFY(!voice->isTranscribing());
    }

    void droppedFileBecomesPrompt() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        wbgui::EngineBridge bridge;
        wbgui::ChatStore store;
        QVERIFY(store.open(dir.path() + "/chats.sqlite"));
        wbgui::ChatView chat(&bridge, &store, dir.path());
        wbgui::InputPanel* panel = chat.inputPanel();
        panel->setSpeechModels(m_model, vad());
        panel->setTranscribeOnDrop(true);
        auto* composer = chat.composer();
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(jfk())});
        QSignalSpy done(panel, &wbgui::InputPanel::transcriptionFinished);
        dropOn(composer->viewport(), &mime);  // as Qt delivers a drop on the prompt box
        QVERIFY(done.wait(120000));
        QVERIFY2(done.at(0).at(1).toString().isEmpty(), qPrintable(done.at(0).at(1).toString()));
        const QString want = libraryText();
        QVERIFY(!want.isEmpty());
        QCOMPARE(composer->toPlainText(), want);  // the prompt, not the file's path
        QVERIFY(panel->attachments().isEmpty());  // no model that takes audio: the clip was for the words only
        // The setting off: the clip is attached, not transcribed.
        composer->clear();
        panel->setTranscribeOnDrop(false);
        done.clear();
        QSignalSpy decoded(panel, &wbgui::InputPanel::audioDecoded);
        dropOn(composer->viewport(), &mime);
        QVERIFY(decoded.wait(30000));
        QTest::qWait(300);
        QVERIFY(!panel->isTranscribing());
        QVERIFY(done.isEmpty());
        QVERIFY(composer->toPlainText().isEmpty());
        QCOMPARE(panel->audioFile(), jfk());
    }
};

QTEST_MAIN(TstVoiceInput)
#include "tst_voice_input.moc"
