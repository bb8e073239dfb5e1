// Voice input in the desktop app's input panel: a clip (jfk.wav) transcribed with a tiny random Whisper
// (wb-make-whisper) and the Silero VAD on a pool thread, progress while it runs, the GUI thread never blocked, the
// text equal to what SpeechRecognizer gives for the same file. (ChatView puts the text into its composer through
// transcriptionFinished; that connection is not driven here.)
#include <QElapsedTimer>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTimer>
#include <QtTest>

#include "api/speech.h"
#include "app/input_panel.h"
#include "fixtures.h"

class TstVoiceInput : public QObject {
    Q_OBJECT
    QString m_model;

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
};

QTEST_MAIN(TstVoiceInput)
#include "tst_voice_input.moc"
