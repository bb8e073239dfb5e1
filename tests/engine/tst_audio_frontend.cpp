// The engine's audio front end without fixtures: decoding (libsndfile, from memory) and its errors for bad input,
// resampling to 16 kHz mono (libsoxr), the Slaney mel filterbank's shape and Whisper's log-mel features of
// synthetic signals. The fixture-backed checks (the filterbank of whisper.cpp's file, Transformers' features of
// jfk.wav, the Silero VAD) are in tst_model_voice.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numbers>

#include "audio/audio_decode.h"
#include "audio/log_mel.h"
#include "audio/resample.h"
#include "fixtures.h"

using namespace wb;
using namespace wb::audio;

namespace {

std::vector<float> sine(double hz, int rate, double seconds, float amp = 0.5f) {
    std::vector<float> s(size_t(rate * seconds));
    for (size_t i = 0; i < s.size(); ++i) s[i] = amp * float(std::sin(2.0 * std::numbers::pi * hz * double(i) / rate));
    return s;
}

std::vector<uint8_t> readBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string writeTempWav(const std::string& name, const std::vector<float>& s, int rate, int channels) {
    const std::string path = wbtest::tempDir() + "/" + name;
    auto r = writeWav16(path, s, rate, channels);
    if (!r) qFatal("%s", r.error().message.c_str());
    return path;
}

}  // namespace

class TstAudioFrontend : public QObject {
    Q_OBJECT
private slots:
    void wavRoundTrip() {
        const auto s = sine(440.0, 22050, 0.5);
        const auto path = writeTempWav("round.wav", s, 22050, 1);
        auto clip = decodeAudioFile(path);
        QVERIFY2(clip.ok(), clip.ok() ? "" : clip.error().message.c_str());
        QCOMPARE(clip->sampleRate, 22050);
        QCOMPARE(clip->channels, 1);
        QCOMPARE(clip->frames(), int64_t(s.size()));
        for (size_t i = 0; i < s.size(); ++i) QVERIFY(std::fabs(clip->samples[i] - s[i]) < 1.0f / 32000.0f);
    }

    void badInputGivesClearErrors() {
        auto empty = decodeAudio({}, "empty.wav");
        QVERIFY(!empty.ok());
        QVERIFY(empty.error().message.find("empty") != std::string::npos);
        const std::string text = "this is not audio at all, just some text that is long enough to be probed";
        auto garbage = decodeAudio({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "x.mp3");
        QVERIFY(!garbage.ok());
        QVERIFY(garbage.error().message.find("x.mp3") != std::string::npos);
        auto missing = decodeAudioFile(wbtest::tempDir() + "/does-not-exist.wav");
        QVERIFY(!missing.ok());
    }

    void truncatedAndLyingWav() {
        const auto path = writeTempWav("cut.wav", sine(300.0, 16000, 1.0), 16000, 1);
        auto bytes = readBytes(path);
        // Cut to a quarter: the header promises four times the frames there are. libsndfile trims a WAV's frame
        // count to the bytes present, so this decodes what is there (an error is as good); never more.
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(bytes.size() / 4));
        auto r = decodeAudio(cut, "cut.wav");
        if (r.ok()) QVERIFY(r->frames() <= int64_t(cut.size() / 2));
        // Cut inside the header: an error naming the input.
        std::vector<uint8_t> head(bytes.begin(), bytes.begin() + 20);
        auto h = decodeAudio(head, "head.wav");
        QVERIFY(!h.ok());
        QVERIFY(h.error().message.find("head.wav") != std::string::npos);
        // A data chunk size of 0x7fffffff on a short file: refused or decoded to what is there, never a huge buffer.
        std::vector<uint8_t> lie = bytes;
        for (size_t i = 12; i + 8 < lie.size(); ++i)
            if (std::memcmp(lie.data() + i, "data", 4) == 0) {
                const uint32_t huge = 0x7fffffff;
                std::memcpy(lie.data() + i + 4, &huge, 4);
                break;
            }
        auto l = decodeAudio(lie, "lie.wav");
        if (l.ok()) QVERIFY(l->frames() <= 16000);
        // The length limit holds before the samples are kept.
        AudioLimits tight;
        tight.maxDurationSec = 0.25;
        auto longer = decodeAudio(bytes, "long.wav", tight);
        QVERIFY(!longer.ok());
        QVERIFY(longer.error().message.find("limit") != std::string::npos);
    }

    void resampleKeepsPitchAndLength() {
        // 1 s of 1 kHz at 44.1 kHz stereo -> 16 kHz mono: 16000 samples whose zero crossings say 1 kHz.
        auto left = sine(1000.0, 44100, 1.0);
        std::vector<float> stereo(left.size() * 2);
        for (size_t i = 0; i < left.size(); ++i) stereo[2 * i] = stereo[2 * i + 1] = left[i];
        AudioData clip{stereo, 44100, 2};
        auto mono = toSpeechInput(clip);
        QVERIFY(mono.ok());
        QVERIFY(std::abs(int(mono->size()) - 16000) <= 1);
        int crossings = 0;
        for (size_t i = 2000; i + 1 < 14000; ++i) crossings += (mono->at(i) < 0) != (mono->at(i + 1) < 0);
        QVERIFY2(std::abs(crossings - 1500) <= 2, qPrintable(QString::number(crossings)));  // 0.75 s x 2 x 1000 Hz
        // Amplitude kept (the passband is flat): within 1 %.
        float peak = 0;
        for (size_t i = 2000; i < 14000; ++i) peak = std::max(peak, std::fabs(mono->at(i)));
        QVERIFY(std::fabs(peak - 0.5f) < 0.005f);
        // Equal rates copy.
        auto same = resampleMono(left, 44100, 44100);
        QVERIFY(same.ok() && *same == left);
        QVERIFY(!resampleMono(left, 0, 16000).ok());
    }

    void melFilterbankShape() {
        for (int nMels : {80, 128}) {
            const auto fb = whisperMelFilters(nMels);
            QCOMPARE(fb.nFreqs, 201);
            QCOMPARE(int(fb.weights.size()), nMels * 201);
            // Every filter is a non-negative triangle with a single peak; Slaney normalisation makes each filter's
            // area (in Hz) 1, so sum(weights) x 40 Hz per bin is ~1 per filter except where bins are coarse.
            for (int m = 0; m < nMels; ++m) {
                int peaks = 0;
                float prev = 0, maxW = 0;
                bool rising = true;
                for (int f = 0; f < 201; ++f) {
                    const float w = fb.weights[size_t(m) * 201 + size_t(f)];
                    QVERIFY(w >= 0.0f);
                    if (rising && w < prev) rising = false, ++peaks;
                    maxW = std::max(maxW, w);
                    prev = w;
                }
                QVERIFY(peaks <= 1);
                QVERIFY(maxW > 0.0f);
            }
        }
    }

    void logMelOfToneAndSilence() {
        const auto fb = whisperMelFilters(80);
        // Silence: every value is the floor, log10(1e-10) = -10, scaled to (-10 + 4) / 4.
        const std::vector<float> silence(16000, 0.0f);
        const auto s = whisperLogMel(silence, fb);
        QCOMPARE(s.nFrames, 3000);
        for (float v : s.data) QCOMPARE(v, -1.5f);
        // A 1 kHz tone peaks in the mel bin whose centre is nearest 1 kHz (bin 24 of 80: centres 25.3 Hz apart in
        // mel, 1000 Hz = 15 mel, 15 / (45.24 / 81) = 26.9 -> filter 26 centred at 1.0 kHz +- a bin) while it lasts,
        // and the frames after it are the floor clamped at max - 8.
        const auto tone = whisperLogMel(sine(1000.0, 16000, 2.0), fb);
        int best = 0;
        for (int m = 1; m < 80; ++m)
            if (tone.data[size_t(m) * 3000 + 100] > tone.data[size_t(best) * 3000 + 100]) best = m;
        QVERIFY2(best >= 25 && best <= 27, qPrintable(QString::number(best)));
        float maxV = -100;
        for (float v : tone.data) maxV = std::max(maxV, v);
        QCOMPARE(tone.data[size_t(best) * 3000 + 2500], maxV - 2.0f);  // (max*4-4 - 8 + 4)/4 = max - 2
    }
};

QTEST_GUILESS_MAIN(TstAudioFrontend)
#include "tst_audio_frontend.moc"
