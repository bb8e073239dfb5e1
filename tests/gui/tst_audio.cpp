// The input panel's audio, offscreen: the jfk.wav fixture and FLAC, OGG Vorbis and MP3 versions of it written at
// test time (libsndfile's encoders, so no audio file is committed) decode off the GUI thread to an 11 s, 16 kHz
// mono clip with a waveform; corrupt files show an error in place and leave the panel usable; the microphone and
// playback buttons are disabled, and say why, where the machine has no such device or the model takes no audio.
#include <QApplication>
#include <QAudioDevice>
#include <QFile>
#include <QLabel>
#include <QMediaDevices>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>

#include "app/audio_clip.h"
#include "app/input_panel.h"
#include "fixtures.h"

using namespace wbgui;

namespace {

const char* kJfk = "audio/jfk.wav";

}  // namespace

class TstAudio : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    AudioClip m_jfk;

    QString jfkPath() const { return QString::fromStdString(wbtest::fixture(kJfk)); }

    /// Sets `path` on the panel and waits for its decode; returns the error it reported.
    static QString decodeInPanel(InputPanel& panel, const QString& path) {
        QSignalSpy done(&panel, &InputPanel::audioDecoded);
        if (!panel.setAudioFile(path)) return QStringLiteral("setAudioFile refused");
        // Decoding runs on a pool thread: the result only lands through the event loop.
        if (!panel.isDecoding()) return QStringLiteral("decoded on the calling thread");
        if (!done.wait(30000)) return QStringLiteral("no audioDecoded within 30 s");
        return done.first().at(1).toString();
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        if (wbtest::haveFixture(kJfk)) m_jfk = decodeAudioFile(jfkPath());
    }

    void decodesEachFormat_data() {
        QTest::addColumn<QString>("suffix");
        QTest::newRow("wav") << "wav";
        QTest::newRow("flac") << "flac";
        QTest::newRow("ogg") << "ogg";
        QTest::newRow("mp3") << "mp3";
    }

    void decodesEachFormat() {
        WB_REQUIRE_FIXTURE(kJfk);
        QFETCH(QString, suffix);
        QVERIFY2(m_jfk.isValid(), qPrintable(m_jfk.error));
        QString path = jfkPath();
        if (suffix != QLatin1String("wav")) {
            // The encoder goes by the suffix, the decoder by the content: a copy named .bin decodes too.
            path = m_tmp.filePath("jfk." + suffix);
            const QString err = writeAudioFile(m_jfk, path);
            QVERIFY2(err.isEmpty(), qPrintable(err));
            const QString renamed = m_tmp.filePath("jfk-" + suffix + ".bin");
            QFile::remove(renamed);
            QVERIFY(QFile::copy(path, renamed));
            const AudioClip byContent = decodeAudioFile(renamed);
            QVERIFY2(byContent.isValid(), qPrintable(byContent.error));
        }
        const AudioClip clip = decodeAudioFile(path);
        QVERIFY2(clip.isValid(), qPrintable(clip.error));
        QCOMPARE(clip.sampleRate, 16000);
        QCOMPARE(clip.channels, 1);
        // MP3 and Vorbis may pad a frame's worth at either end.
        QVERIFY2(std::abs(clip.durationSec() - 11.0) < 0.15, qPrintable(QString::number(clip.durationSec())));

        InputPanel panel(m_tmp.filePath("pasted"));
        panel.setCapabilities(false, true, QString());
        const QString err = decodeInPanel(panel, path);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        QCOMPARE(panel.attachments(), QStringList{path});
        QCOMPARE(panel.audioClip().sampleRate, 16000);
        QVERIFY2(panel.audioStatus().contains("16000 Hz, 1 ch"), qPrintable(panel.audioStatus()));
        auto* wave = panel.findChild<WaveformWidget*>("waveform");
        QVERIFY(wave && !wave->isHidden());
        const Waveform& w = wave->waveform();
        QCOMPARE(w.peaks.size(), 400);
        // Speech: loud somewhere, and not the same level everywhere.
        QVERIFY(*std::max_element(w.peaks.begin(), w.peaks.end()) > 0.2f);
        QVERIFY(*std::min_element(w.peaks.begin(), w.peaks.end()) < 0.05f);
    }

    void corruptFileShowsAnErrorAndThePanelStaysUsable() {
        InputPanel panel(m_tmp.filePath("pasted"));
        panel.setCapabilities(false, true, QString());
        auto write = [this](const QString& name, const QByteArray& bytes) {
            QFile f(m_tmp.filePath(name));
            f.open(QIODevice::WriteOnly);
            f.write(bytes);
            return f.fileName();
        };
        QByteArray noise(20000, 0);
        for (int i = 0; i < noise.size(); ++i) noise[i] = char((i * 2654435761u) >> 13);
        const QStringList bad = {
            write("noise.mp3", noise),
            write("text.ogg", "this is not a Vorbis stream\n"),
            write("empty.flac", QByteArray()),
            write("header-only.wav", QByteArray("RIFF\x24\x00\x00\x00WAVEfmt ", 16)),
            m_tmp.filePath("missing.wav"),
        };
        for (const QString& path : bad) {
            const QString err = decodeInPanel(panel, path);
            QVERIFY2(!err.isEmpty(), qPrintable(path + " decoded without an error"));
            QVERIFY2(err.startsWith(path), qPrintable(err));  // names the file
            QCOMPARE(panel.audioStatus(), err);               // shown in place
            QVERIFY(panel.attachments().isEmpty());
            QVERIFY(panel.findChild<WaveformWidget*>("waveform")->isHidden());
        }
        // A FLAC cut short: its first part would decode; it is refused rather than attached silently cut.
        WB_REQUIRE_FIXTURE(kJfk);
        QVERIFY2(m_jfk.isValid(), qPrintable(m_jfk.error));
        {
            const QString full = m_tmp.filePath("full.flac");
            QVERIFY(writeAudioFile(m_jfk, full).isEmpty());
            QFile f(full);
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QString cut = write("cut.flac", f.read(f.size() / 4));
            const QString err = decodeInPanel(panel, cut);
            QVERIFY2(err.startsWith(cut), qPrintable(err));
        }
        // Still usable: a good file after the bad ones.
        const QString good = m_tmp.filePath("tone.wav");
        AudioClip tone;
        tone.sampleRate = 8000;
        tone.channels = 2;
        for (int i = 0; i < 8000; ++i) tone.samples << float(0.5 * std::sin(i * 0.2)) << float(0.25 * std::sin(i * 0.3));
        QVERIFY(writeAudioFile(tone, good).isEmpty());
        const QString err = decodeInPanel(panel, good);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        QCOMPARE(panel.audioClip().channels, 2);
        QCOMPARE(panel.audioClip().sampleRate, 8000);
        QCOMPARE(panel.attachments(), QStringList{good});
        panel.removeSelected();
        QVERIFY(panel.attachments().isEmpty());
    }

    void aNewerFileWinsOverOneStillDecoding() {
        WB_REQUIRE_FIXTURE(kJfk);
        InputPanel panel(m_tmp.filePath("pasted"));
        panel.setCapabilities(false, true, QString());
        QSignalSpy done(&panel, &InputPanel::audioDecoded);
        QVERIFY(panel.setAudioFile(m_tmp.filePath("missing.mp3")));
        QVERIFY(panel.setAudioFile(jfkPath()));
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isDecoding(), 30000);
        QCOMPARE(done.count(), 1);
        QCOMPARE(done.first().at(0).toString(), jfkPath());
        QCOMPARE(panel.attachments(), QStringList{jfkPath()});
    }

    void devicesAndModelDecideTheButtons() {
        InputPanel panel(m_tmp.filePath("pasted"));
        auto* record = panel.findChild<QPushButton*>("recordAudio");
        auto* play = panel.findChild<QPushButton*>("playAudio");
        QVERIFY(record && play);

        // The model's rule first: a text-only model disables the microphone, whatever the devices.
        panel.setCapabilities(false, false, "text only");
        QVERIFY(!record->isEnabled());
        QCOMPARE(record->toolTip(), QString("text only"));
        QVERIFY(!panel.startRecording());
        QVERIFY(!play->isEnabled());

        panel.setCapabilities(false, true, QString());
        const bool haveInput = !QMediaDevices::audioInputs().isEmpty();
        const bool haveOutput = !QMediaDevices::audioOutputs().isEmpty();
        qInfo("audio inputs: %d, outputs: %d", int(QMediaDevices::audioInputs().size()),
              int(QMediaDevices::audioOutputs().size()));
        QCOMPARE(record->isEnabled(), haveInput);
        if (!haveInput) {
            QVERIFY2(record->toolTip().contains("no audio input device"), qPrintable(record->toolTip()));
            QVERIFY(!panel.startRecording());
        } else {
            // Where a sound server runs (a desktop, or a null sink): a short take becomes a WAV attachment.
            QSignalSpy finished(&panel, &InputPanel::recordingFinished);
            QVERIFY(panel.startRecording());
            QCOMPARE(record->text(), QString("Stop"));
            QTest::qWait(600);
            panel.stopRecording();
            QVERIFY(finished.wait(10000));
            QVERIFY2(finished.first().at(1).toString().isEmpty(), qPrintable(finished.first().at(1).toString()));
            QVERIFY(panel.audioClip().durationSec() > 0.1);
            QCOMPARE(panel.attachments(), QStringList{finished.first().at(0).toString()});
            QVERIFY(decodeAudioFile(panel.audioFile()).isValid());
            panel.clear();
        }
        WB_REQUIRE_FIXTURE(kJfk);
        QVERIFY(decodeInPanel(panel, jfkPath()).isEmpty());
        QCOMPARE(play->isEnabled(), haveOutput);
        if (!haveOutput) {
            QVERIFY2(play->toolTip().contains("no audio output device"), qPrintable(play->toolTip()));
            QVERIFY(!panel.startPlayback());
        } else {
            QVERIFY(panel.startPlayback());
            QVERIFY(panel.isPlaying());
            QCOMPARE(play->text(), QString("Stop"));
            panel.stopPlayback();
            QVERIFY(!panel.isPlaying());
        }
    }
};

QTEST_MAIN(TstAudio)
#include "tst_audio.moc"
