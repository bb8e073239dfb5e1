// Speech input against the fixtures (../shared/fixtures/audio): whisper.cpp's model file (its header, hparams,
// mel filterbank and vocabulary) and the filterbank the engine computes, Whisper's log-mel features of jfk.wav
// against Transformers' WhisperFeatureExtractor (tests/goldens/whisper/features.json, made by
// tools/hf-goldens/make_whisper_feature_goldens.py), and the Silero VAD v6.2.0's segments of jfk.wav.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QtTest>
#include <cmath>

#include "audio/audio_decode.h"
#include "audio/log_mel.h"
#include "audio/resample.h"
#include "audio/silero_vad.h"
#include "audio/whisper_ggml.h"
#include "fixtures.h"

using namespace wb;
using namespace wb::audio;

namespace {

const char* const kTinyBin = "audio/for-tests-ggml-tiny.bin";
const char* const kJfk = "audio/jfk.wav";
const char* const kSilero = "audio/silero-v6.2.0-ggml.bin";

QJsonObject featureGoldens() {
    QFile f(QStringLiteral(WB_SOURCE_DIR "/tests/goldens/whisper/features.json"));
    if (!f.open(QIODevice::ReadOnly)) qFatal("tests/goldens/whisper/features.json is missing");
    return QJsonDocument::fromJson(f.readAll()).object();
}

std::vector<float> jfk16k() {
    auto clip = decodeAudioFile(wbtest::fixture(kJfk));
    if (!clip) qFatal("%s", clip.error().message.c_str());
    auto mono = toSpeechInput(*clip);
    if (!mono) qFatal("%s", mono.error().message.c_str());
    return std::move(*mono);
}

}  // namespace

class TstModelVoice : public QObject {
    Q_OBJECT
private slots:
    void ggmlHeaderAndVocab() {
        WB_REQUIRE_FIXTURE(kTinyBin);
        auto f = loadWhisperGgml(wbtest::fixture(kTinyBin));
        QVERIFY2(f.ok(), f.ok() ? "" : f.error().message.c_str());
        // whisper-tiny: 51865 ids, 1500 audio positions of width 384, 6 heads, 4 layers; 448 text positions.
        const auto& hp = f->hparams;
        QCOMPARE(hp.nVocab, 51865);
        QCOMPARE(hp.nAudioCtx, 1500);
        QCOMPARE(hp.nAudioState, 384);
        QCOMPARE(hp.nAudioHead, 6);
        QCOMPARE(hp.nAudioLayer, 4);
        QCOMPARE(hp.nTextCtx, 448);
        QCOMPARE(hp.nTextState, 384);
        QCOMPARE(hp.nTextHead, 6);
        QCOMPARE(hp.nTextLayer, 4);
        QCOMPARE(hp.nMels, 80);
        QCOMPARE(f->filters.nMels, 80);
        QCOMPARE(f->filters.nFreqs, 201);
        // The multilingual byte-level vocabulary as raw bytes: "!" first, " the" at 264, a UTF-8 CJK token at 50255
        // and an empty entry where <|endoftext|> is (whisper.cpp names the special tokens itself).
        QCOMPARE(int(f->vocab.size()), 50257);
        QCOMPARE(f->vocab[0], std::string("!"));
        QCOMPARE(f->vocab[264], std::string(" the"));
        QCOMPARE(f->vocab[50255], std::string("\xe5\x9c\xba"));
        QVERIFY(f->vocab[50256].empty());
        QVERIFY(f->tensors.empty());  // the test file has no weights
    }

    void filterbankEqualsWhisperCpps() {
        WB_REQUIRE_FIXTURE(kTinyBin);
        auto f = loadWhisperGgml(wbtest::fixture(kTinyBin));
        QVERIFY(f.ok());
        const auto mine = whisperMelFilters(80);
        QCOMPARE(mine.weights.size(), f->filters.weights.size());
        double maxErr = 0;
        int nonZero = 0;
        for (size_t i = 0; i < mine.weights.size(); ++i) {
            maxErr = std::max(maxErr, double(std::fabs(mine.weights[i] - f->filters.weights[i])));
            nonZero += f->filters.weights[i] != 0.0f;
        }
        // librosa computed the stored filters in float64 and rounded them to float32: the same rounding here leaves
        // at most one float32 ulp of the largest weight (~0.026, ulp 1.9e-9).
        QVERIFY2(maxErr < 4e-9, qPrintable(QString::number(maxErr)));
        QVERIFY(nonZero > 300);  // not a table of zeros
    }

    void featuresEqualTransformers() {
        WB_REQUIRE_FIXTURE(kJfk);
        const QJsonObject g = featureGoldens();
        const auto pcm = jfk16k();
        QCOMPARE(qint64(pcm.size()), g["samples"].toInteger());
        for (int nMels : {80, 128}) {
            const QJsonObject gm = g[QString::number(nMels)].toObject();
            const auto fb = whisperMelFilters(nMels);
            double fbSum = 0;
            for (float w : fb.weights) fbSum += w;
            QVERIFY(std::fabs(fbSum - gm["filters_sum"].toDouble()) < 1e-5);
            const auto mel = whisperLogMel(pcm, fb);
            QCOMPARE(mel.nMels, nMels);
            QCOMPARE(mel.nFrames, 3000);
            double sum = 0, sumSq = 0, maxAbs = 0;
            for (float v : mel.data) sum += v, sumSq += double(v) * v;
            // Float32 DFT against Transformers' float64 numpy STFT: values agree to ~1e-5 where the signal is; the
            // sums over 240000 (384000) values to 1e-5 relative.
            QVERIFY2(std::fabs(sum - gm["sum"].toDouble()) < 1e-5 * std::fabs(gm["sum"].toDouble()),
                     qPrintable(QString("%1 vs %2").arg(sum).arg(gm["sum"].toDouble())));
            QVERIFY(std::fabs(sumSq - gm["sum_sq"].toDouble()) < 1e-5 * gm["sum_sq"].toDouble());
            for (const auto& v : gm["values"].toArray()) {
                const auto a = v.toArray();
                const float got = mel.data[size_t(a[0].toInt()) * 3000 + size_t(a[1].toInt())];
                maxAbs = std::max(maxAbs, std::fabs(double(got) - a[2].toDouble()));
            }
            QVERIFY2(maxAbs < 1e-4, qPrintable(QString("%1 bins: max error %2").arg(nMels).arg(maxAbs)));
        }
    }

    void sileroSegmentsOfJfk() {
        WB_REQUIRE_FIXTURE(kSilero);
        WB_REQUIRE_FIXTURE(kJfk);
        auto vad = SileroVad::load(wbtest::fixture(kSilero));
        QVERIFY2(vad.ok(), vad.ok() ? "" : vad.error().message.c_str());
        QCOMPARE(vad->modelType(), std::string("silero-16k"));
        QCOMPARE(vad->version(), std::string("6.2.0"));
        const auto pcm = jfk16k();
        const auto probs = vad->probabilities(pcm);
        QCOMPARE(probs.size(), (pcm.size() + 511) / 512);
        for (float p : probs) QVERIFY(p >= 0.0f && p <= 1.0f);
        const auto segs = vad->segments(probs);
        // The fixtures README's segments, which whisper.cpp's VAD (through @fugood/whisper.node) gives exactly.
        const double want[4][2] = {{0.32, 2.27}, {3.27, 4.41}, {5.38, 7.68}, {8.16, 10.62}};
        QString got;
        for (const auto& s : segs) got += QString(" %1-%2").arg(s.startSec).arg(s.endSec);
        QVERIFY2(segs.size() == 4, qPrintable(got));
        for (int i = 0; i < 4; ++i) {
            QVERIFY2(std::fabs(segs[size_t(i)].startSec - want[i][0]) <= 0.05, qPrintable(got));
            QVERIFY2(std::fabs(segs[size_t(i)].endSec - want[i][1]) <= 0.05, qPrintable(got));
        }
        qInfo("segments:%s", qPrintable(got));
        // Silence has no speech; the state does not leak between calls (same input, same probabilities).
        QVERIFY(vad->detect(std::vector<float>(16000 * 3, 0.0f)).empty());
        QCOMPARE(vad->probabilities(pcm), probs);
    }

    void corruptVadModelIsAnError() {
        WB_REQUIRE_FIXTURE(kSilero);
        QFile f(QString::fromStdString(wbtest::fixture(kSilero)));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray all = f.readAll();
        for (qsizetype cut : {qsizetype(0), qsizetype(3), qsizetype(40), all.size() / 2, all.size() - 1}) {
            auto v = SileroVad::parse({reinterpret_cast<const uint8_t*>(all.constData()), size_t(cut)}, "vad.bin");
            QVERIFY2(!v.ok(), qPrintable(QString::number(cut)));
            QVERIFY(v.error().message.find("vad.bin") != std::string::npos);
        }
    }

    void windowsForLongAudio() {
        // 70 s of speech segments: packed into windows of at most 30 s cut between segments.
        std::vector<SpeechSegment> segs;
        for (int i = 0; i < 14; ++i) segs.push_back({i * 5.0, i * 5.0 + 4.0});
        segs.push_back({70.0, 140.0});  // one 70 s segment: cut into 30 + 30 + 10
        const auto w = packSpeechWindows(segs, 30.0);
        for (const auto& x : w) QVERIFY(x.endSec - x.startSec <= 30.0 + 1e-9);
        QCOMPARE(w.front().startSec, 0.0);
        QCOMPARE(w.front().endSec, 29.0);  // segments 0..5 (0-4 ... 25-29)
        QCOMPARE(w.back().endSec, 140.0);
        double covered = 0;
        for (const auto& x : w) covered += x.endSec - x.startSec;
        QVERIFY(covered >= 14 * 4.0 + 70.0);
    }

    void cliVadOnly() {
#ifndef WB_EXE
        QSKIP("wb is not built in this configuration");
#else
        WB_REQUIRE_FIXTURE(kSilero);
        WB_REQUIRE_FIXTURE(kJfk);
        QProcess p;
        p.start(QStringLiteral(WB_EXE), {"transcribe", QString::fromStdString(wbtest::fixture(kJfk)), "--vad-model",
                                         QString::fromStdString(wbtest::fixture(kSilero)), "--vad-only", "--json"});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 0);
        const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        QCOMPARE(j["vad_model"].toString(), QString("silero-16k 6.2.0"));
        QCOMPARE(j["duration"].toDouble(), 11.0);
        const QJsonArray segs = j["segments"].toArray();
        QCOMPARE(segs.size(), 4);
        // The library's segments for the same input.
        auto vad = SileroVad::load(wbtest::fixture(kSilero));
        QVERIFY(vad.ok());
        const auto want = vad->detect(jfk16k());
        for (int i = 0; i < 4; ++i) {
            QCOMPARE(segs[i].toObject()["start"].toDouble(), want[size_t(i)].startSec);
            QCOMPARE(segs[i].toObject()["end"].toDouble(), want[size_t(i)].endSec);
        }
        // Errors: a missing file, a model that is not a VAD, no model at all.
        QProcess bad;
        bad.start(QStringLiteral(WB_EXE), {"transcribe", "/nonexistent.wav", "--vad-model",
                                           QString::fromStdString(wbtest::fixture(kSilero)), "--vad-only"});
        QVERIFY(bad.waitForFinished(60000));
        QCOMPARE(bad.exitCode(), 1);
        QVERIFY(bad.readAllStandardError().contains("/nonexistent.wav"));
        QProcess notVad;
        notVad.start(QStringLiteral(WB_EXE),
                     {"transcribe", QString::fromStdString(wbtest::fixture(kJfk)), "--vad-model",
                      QString::fromStdString(wbtest::fixture(kTinyBin)), "--vad-only"});
        QVERIFY(notVad.waitForFinished(60000));
        QCOMPARE(notVad.exitCode(), 1);
        QProcess none;
        none.start(QStringLiteral(WB_EXE), {"transcribe", QString::fromStdString(wbtest::fixture(kJfk)), "--vad-only"});
        QVERIFY(none.waitForFinished(60000));
        QCOMPARE(none.exitCode(), 2);
#endif
    }
};

QTEST_GUILESS_MAIN(TstModelVoice)
#include "tst_model_voice.moc"
