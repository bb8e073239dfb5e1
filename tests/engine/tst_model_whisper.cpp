// The engine's Whisper against Transformers on the same random weights: wb-make-whisper writes a tiny random
// Whisper (d 64, 2 + 2 layers, the 51865-id multilingual vocabulary of the fixtures' for-tests-ggml-tiny.bin) as a
// Hugging Face folder and as whisper.cpp's ggml file; tests/goldens/whisper/tiny-random.json holds what
// WhisperForConditionalGeneration (eager) gave on jfk.wav (tools/hf-goldens/make_whisper_goldens.py): features
// checksum, encoder output at chosen frames, logits of the first four decoder steps, plain greedy tokens, greedy
// tokens with timestamps (generate(return_timestamps=True)) and the detected language. Both layouts must give the
// same numbers.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QtTest>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "api/engine.h"
#include "api/server.h"
#include "api/speech.h"
#include "audio/audio_decode.h"
#include "audio/log_mel.h"
#include "audio/resample.h"
#include "fixtures.h"
#include "models/whisper/whisper_decode.h"
#include "models/whisper/whisper_model.h"

using namespace wb;
using namespace wb::whisper;

namespace {

const char* const kVocab = "audio/for-tests-ggml-tiny.bin";
const char* const kJfk = "audio/jfk.wav";

QJsonObject goldens() {
    QFile f(QStringLiteral(WB_SOURCE_DIR "/tests/goldens/whisper/tiny-random.json"));
    if (!f.open(QIODevice::ReadOnly)) qFatal("tests/goldens/whisper/tiny-random.json is missing");
    return QJsonDocument::fromJson(f.readAll()).object();
}

}  // namespace

class TstModelWhisper : public QObject {
    Q_OBJECT
    std::string m_hf, m_ggml;
    std::vector<float> m_mel;
    QJsonObject m_g;

private slots:
    void initTestCase() {
#ifndef WB_MAKE_WHISPER
        QSKIP("wb-make-whisper is not built in this configuration");
#else
        WB_REQUIRE_FIXTURE(kVocab);
        WB_REQUIRE_FIXTURE(kJfk);
        m_hf = wbtest::tempDir() + "/whisper-hf";
        m_ggml = wbtest::tempDir() + "/ggml-whisper-random.bin";
        QProcess p;
        // The arguments recorded in the goldens' "made_with".
        p.start(QStringLiteral(WB_MAKE_WHISPER),
                {"--vocab-from", QString::fromStdString(wbtest::fixture(kVocab)), "--hf", QString::fromStdString(m_hf),
                 "--ggml", QString::fromStdString(m_ggml), "--d", "64", "--layers", "2", "--heads", "2", "--mels", "80",
                 "--seed", "1"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        auto clip = audio::decodeAudioFile(wbtest::fixture(kJfk));
        QVERIFY(clip.ok());
        auto pcm = audio::toSpeechInput(*clip);
        QVERIFY(pcm.ok());
        m_mel = audio::whisperLogMel(*pcm, audio::whisperMelFilters(80)).data;
        m_g = goldens();
        double sum = 0;
        for (float v : m_mel) sum += v;
        QVERIFY(std::fabs(sum - m_g["features_sum"].toDouble()) < 1e-5 * std::fabs(m_g["features_sum"].toDouble()));
#endif
    }

    void matchesTransformers_data() {
        QTest::addColumn<QString>("layout");
        QTest::newRow("hf-folder") << "hf";
        QTest::newRow("whisper.cpp-ggml") << "ggml";
    }

    void matchesTransformers() {
        QFETCH(QString, layout);
        auto m = WhisperModel::load(layout == "hf" ? m_hf : m_ggml, 2);
        QVERIFY2(m.ok(), m.ok() ? "" : m.error().message.c_str());
        WhisperModel& model = **m;
        QCOMPARE(model.config().dModel, 64);
        QCOMPARE(model.config().sot, 50258);
        QCOMPARE(model.config().timestampBegin, 50364);
        QCOMPARE(model.tokenText(264), std::string(" the"));
        const auto enc = model.encode(m_mel);
        // Encoder: float32 here against Transformers' float32 on the CPU, summed in other orders: the values
        // (O(1) after the final LayerNorm) agree to ~1e-5; 1e-3 leaves room for other ISAs.
        const QJsonObject ge = m_g["encoder"].toObject();
        double maxErr = 0;
        const QJsonObject frames = ge["frames"].toObject();
        for (auto it = frames.begin(); it != frames.end(); ++it) {
            const int frame = it.key().toInt();
            const QJsonArray want = it.value().toArray();
            for (int i = 0; i < want.size(); ++i)
                maxErr = std::max(maxErr, std::fabs(double(enc[size_t(frame) * 64 + size_t(i)]) - want[i].toDouble()));
        }
        QVERIFY2(maxErr < 1e-3, qPrintable(QString("encoder max error %1").arg(maxErr)));
        // The first four decoder steps' logits: the same top-8 ids, values within 1e-3.
        for (const auto& stepV : m_g["logits"].toArray()) {
            const QJsonObject step = stepV.toObject();
            std::vector<int> input;
            for (const auto& t : step["input"].toArray()) input.push_back(t.toInt());
            auto s = model.startSession(enc);
            auto logits = model.decode(s, input);
            QVERIFY(logits.ok());
            const QJsonArray topIds = step["top_ids"].toArray(), topVals = step["top_values"].toArray();
            std::vector<int> order(logits->size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
            std::partial_sort(order.begin(), order.begin() + 8, order.end(),
                              [&](int a, int b) { return (*logits)[size_t(a)] > (*logits)[size_t(b)]; });
            for (int i = 0; i < 8; ++i) {
                QCOMPARE(order[size_t(i)], topIds[i].toInt());
                QVERIFY(std::fabs((*logits)[size_t(order[size_t(i)])] - topVals[i].toDouble()) < 1e-3);
            }
            const QJsonObject vals = step["values"].toObject();
            for (auto it = vals.begin(); it != vals.end(); ++it)
                QVERIFY2(std::fabs((*logits)[size_t(it.key().toInt())] - it.value().toDouble()) < 1e-3,
                         qPrintable(it.key()));
        }
        // Plain greedy (no logit rules) from <|startoftranscript|><|en|><|transcribe|><|notimestamps|>.
        DecodeOptions plain;
        plain.language = "en";
        plain.timestamps = false;
        plain.applyRules = false;
        plain.maxTokens = 24;
        auto g = decodeGreedy(model, enc, plain);
        QVERIFY(g.ok());
        std::vector<int> want;
        for (const auto& t : m_g["greedy_plain"].toObject()["tokens"].toArray()) want.push_back(t.toInt());
        QCOMPARE(g->tokens, want);
        // Greedy with timestamps, Transformers' logit rules (generate(return_timestamps=True), 40 new tokens).
        DecodeOptions ts;
        ts.language = "en";
        ts.maxTokens = 40;
        auto t = decodeGreedy(model, enc, ts);
        QVERIFY(t.ok());
        want.clear();
        for (const auto& x : m_g["greedy_timestamps"].toObject()["tokens"].toArray()) want.push_back(x.toInt());
        QCOMPARE(t->tokens, want);
        QVERIFY(t->tokens.front() >= model.config().timestampBegin);  // a window opens with a timestamp
        QVERIFY(!t->segments.empty());
        // Language detection.
        auto lang = detectLanguage(model, enc);
        QVERIFY(lang.ok());
        QCOMPARE(*lang, m_g["language_token"].toInt());
        // Beam search, 5 beams, as generate(num_beams=5): with timestamps (the tokens) and without (the tokens
        // and sequences_scores, the length-normalised sum of log-probabilities).
        auto tokensOf = [&](const char* key, bool dropPrompt) {
            std::vector<int> v;
            for (const auto& x : m_g[key].toObject()["tokens"].toArray()) v.push_back(x.toInt());
            if (dropPrompt) v.erase(v.begin(), v.begin() + 4);  // <|sot|><|en|><|transcribe|><|notimestamps|>
            while (!v.empty() && v.back() == model.config().eot) v.pop_back();
            return v;
        };
        DecodeOptions beams = ts;
        beams.beamSize = 5;
        auto bt = decodeOnce(model, enc, beams);
        QVERIFY2(bt.ok(), bt.ok() ? "" : bt.error().message.c_str());
        QCOMPARE(bt->tokens, tokensOf("beam5_timestamps", false));
        QVERIFY(bt->tokens != t->tokens);  // the goldens' beams differ from greedy: the search is exercised
        beams.timestamps = false;
        auto bn = decodeOnce(model, enc, beams);
        QVERIFY(bn.ok());
        QCOMPARE(bn->tokens, tokensOf("beam5_notimestamps", true));
        const double wantScore = m_g["beam5_notimestamps"].toObject()["sequences_score"].toDouble();
        QVERIFY2(std::fabs(bn->avgLogprob - wantScore) < 1e-3,
                 qPrintable(QString("beam score %1, Transformers %2").arg(bn->avgLogprob).arg(wantScore)));
        // What the temperature fallback looks at, on greedy without timestamps: Transformers'
        // _retrieve_compression_ratio, _retrieve_avg_logprobs and WhisperNoSpeechDetection.
        const QJsonObject fi = m_g["fallback_inputs"].toObject();
        DecodeOptions gn = ts;
        gn.timestamps = false;
        auto gr = decodeOnce(model, enc, gn);
        QVERIFY(gr.ok());
        std::vector<int> gen;
        for (const auto& x : fi["generated"].toArray()) gen.push_back(x.toInt());
        QCOMPARE(gr->tokens, gen);
        QVERIFY(std::fabs(gr->compressionRatio - fi["compression_ratio"].toDouble()) < 1e-9);
        QVERIFY(std::fabs(tokenCompressionRatio(gen, model.config().vocab) - fi["compression_ratio"].toDouble()) <
                1e-9);
        QVERIFY2(std::fabs(gr->avgLogprob - fi["avg_logprob"].toDouble()) < 1e-3,
                 qPrintable(QString("avg log-prob %1").arg(gr->avgLogprob)));
        QVERIFY(std::fabs(gr->noSpeechProb - fi["no_speech_prob"].toDouble()) <
                1e-3 * fi["no_speech_prob"].toDouble() + 1e-12);
    }

    void batchedStepEqualsOneByOne() {
        // The beams' batched decoder step gives each session what decode() gives it alone.
        auto m = WhisperModel::load(m_hf, 2);
        QVERIFY(m.ok());
        WhisperModel& model = **m;
        const auto enc = model.encode(m_mel);
        auto base = model.startSession(enc);
        QVERIFY(model.decode(base, {50258, 50259, 50359}).ok());
        std::vector<WhisperModel::Session> batch(3), single(3);
        const std::vector<int> next = {50364, 264, 9037};
        std::vector<WhisperModel::Session*> rows;
        for (int i = 0; i < 3; ++i) {
            model.copySession(batch[size_t(i)], base);
            model.copySession(single[size_t(i)], base);
            rows.push_back(&batch[size_t(i)]);
        }
        auto step = model.decodeStep(rows, next);
        QVERIFY(step.ok());
        for (int i = 0; i < 3; ++i) {
            auto one = model.decode(single[size_t(i)], {next[size_t(i)]});
            QVERIFY(one.ok());
            double maxErr = 0;
            for (size_t v = 0; v < one->size(); ++v)
                maxErr = std::max(maxErr, std::fabs(double((*step)[size_t(i)][v]) - double((*one)[v])));
            QVERIFY2(maxErr < 1e-4, qPrintable(QString("row %1: %2").arg(i).arg(maxErr)));
            QCOMPARE(batch[size_t(i)].length, single[size_t(i)].length);
        }
        // Sessions of other lengths, or one token short: errors.
        rows[1]->length += 1;
        QVERIFY(!model.decodeStep(rows, next).ok());
        QVERIFY(!model.decodeStep({rows[0]}, next).ok());
    }

    void temperatureFallback() {
        auto m = WhisperModel::load(m_ggml, 2);
        QVERIFY(m.ok());
        WhisperModel& model = **m;
        const auto enc = model.encode(m_mel);
        DecodeOptions o;
        o.language = "en";
        o.timestamps = false;
        o.maxTokens = 40;
        // Greedy on these random weights repeats itself (compression ratio 2.29, mean log-prob -0.49): with
        // Transformers' thresholds it is kept at temperature 0.
        FallbackOptions f;
        auto keep = decodeWithFallback(model, enc, o, f);
        QVERIFY(keep.ok());
        QCOMPARE(keep->attempts, 1);
        QCOMPARE(keep->temperature, 0.0f);
        // A compression-ratio threshold below that: every temperature is tried and the last (1.0) is kept.
        f.compressionRatioThreshold = 1.01;
        o.seed = 7;
        auto climb = decodeWithFallback(model, enc, o, f);
        QVERIFY(climb.ok());
        QCOMPARE(climb->attempts, 6);
        QCOMPARE(climb->temperature, 1.0f);
        QVERIFY(climb->tokens != keep->tokens);  // sampled at 1.0, not the greedy text
        // Seeded: the same seed gives the same sample, another seed (almost surely) another one.
        auto again = decodeWithFallback(model, enc, o, f);
        QVERIFY(again.ok());
        QCOMPARE(again->tokens, climb->tokens);
        o.seed = 8;
        auto other = decodeWithFallback(model, enc, o, f);
        QVERIFY(other.ok());
        QVERIFY(other->tokens != climb->tokens);
        // A log-prob threshold above every decoding's, with the no-speech threshold below this window's
        // no-speech probability: the window is silence after the first attempt.
        FallbackOptions silent;
        silent.logprobThreshold = 1.0;
        silent.noSpeechThreshold = keep->noSpeechProb / 2;
        auto quiet = decodeWithFallback(model, enc, o, silent);
        QVERIFY(quiet.ok());
        QVERIFY(quiet->noSpeech);
        QCOMPARE(quiet->attempts, 1);
        QVERIFY(quiet->text.empty() && quiet->segments.empty());
        // Cancel: an error, not a partial text.
        std::atomic<bool> stop{true};
        o.cancel = &stop;
        auto c = decodeOnce(model, enc, o);
        QVERIFY(!c.ok());
        QCOMPARE(QString::fromStdString(c.error().message), QString("cancelled"));
        o.cancel = nullptr;
        o.beamSize = 0;
        QVERIFY(!decodeOnce(model, enc, o).ok());
        // The API's temperature ladder.
        QCOMPARE(fallbackTemperatures(0.0f, true).size(), size_t(6));
        QCOMPARE(fallbackTemperatures(0.5f, true), (std::vector<float>{0.5f, 0.7f, 0.9f}));
        QCOMPARE(fallbackTemperatures(0.5f, false), (std::vector<float>{0.5f}));
    }

    void cliAndApiAgree() {
        // `wb transcribe -m` prints what SpeechRecognizer gives, and both layouts transcribe alike.
        auto audio = loadSpeechAudio(wbtest::fixture(kJfk));
        QVERIFY(audio.ok());
        TranscribeOptions o;
        o.language = "en";
        o.maxTokensPerWindow = 24;
        auto hf = SpeechRecognizer::load(m_hf, 2);
        auto gg = SpeechRecognizer::load(m_ggml, 2);
        QVERIFY(hf.ok() && gg.ok());
        double lastProgress = 0;
        auto a = (*hf)->transcribe(*audio, o, nullptr, [&](double p) { lastProgress = p; });
        auto b = (*gg)->transcribe(*audio, o);
        QVERIFY(a.ok() && b.ok());
        QCOMPARE(lastProgress, 1.0);
        QCOMPARE(a->text, b->text);
        QVERIFY(!a->text.empty());
        QCOMPARE(a->language, std::string("en"));
        QCOMPARE(a->segments.size(), b->segments.size());
        QVERIFY(a->segments.front().startSec >= 0 && a->segments.back().endSec <= 11.0 + 1e-9);
        // Without a language: the detected one (the goldens' language token, 50300 = <|fa|> for these weights).
        TranscribeOptions auto24;
        auto24.maxTokensPerWindow = 24;
        auto detected = (*gg)->transcribe(*audio, auto24);
        QVERIFY(detected.ok());
        QCOMPARE(QString::fromStdString(detected->language), QString("fa"));
#ifdef WB_EXE
        QProcess p;
        p.start(QStringLiteral(WB_EXE), {"transcribe", QString::fromStdString(wbtest::fixture(kJfk)), "-m",
                                         QString::fromStdString(m_ggml), "-l", "en", "-t", "2", "-n", "24", "--json"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        QCOMPARE(j["language"].toString(), QString("en"));
        auto full = (*gg)->transcribe(*audio, [] {
            TranscribeOptions x;
            x.language = "en";
            x.maxTokensPerWindow = 24;
            return x;
        }());
        QVERIFY(full.ok());
        QCOMPARE(j["text"].toString().toStdString(), full->text);
        QCOMPARE(j["segments"].toArray().size(), qsizetype(full->segments.size()));
#endif
    }

    void whisperCppParity() {
        // whisper.cpp itself (the prebuilt linux-x64 build in the npm package @fugood/whisper.node,
        // tools/whisper-cpp-parity) on the same ggml file: the same text, and its Silero VAD's segments of jfk.wav.
        // Skips where npm or the registry cannot be reached.
#ifndef WB_EXE
        QSKIP("wb is not built in this configuration");
#else
        const QString tool = QStringLiteral(WB_SOURCE_DIR "/tools/whisper-cpp-parity");
        QProcess setup;
        setup.start("bash", {tool + "/setup.sh"});
        if (!setup.waitForFinished(300000) || setup.exitCode() != 0)
            QSKIP(qPrintable("whisper.cpp through npm is not available here: " + setup.readAllStandardError()));
        auto run = [](const QString& program, const QStringList& args) {
            QProcess p;
            p.start(program, args);
            p.waitForFinished(300000);
            if (p.exitCode() != 0) qWarning("%s", p.readAllStandardError().constData());
            return QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        };
        const QString jfk = QString::fromStdString(wbtest::fixture(kJfk));
        const QJsonObject theirs =
            run("node", {tool + "/run.mjs", "transcribe", QString::fromStdString(m_ggml), jfk, "--threads", "2"});
        QVERIFY2(!theirs.isEmpty(), "whisper.cpp gave no result");
        // This model has two decoder layers, which whisper.cpp takes for a distilled model and decodes without
        // timestamps; its limit is n_text_ctx / 2 - 4 = 220 tokens per window.
        const QJsonObject ours =
            run(QStringLiteral(WB_EXE), {"transcribe", jfk, "-m", QString::fromStdString(m_ggml), "-l", "en",
                                         "--no-timestamps", "-n", "220", "-t", "2", "-bs", "1", "-nf", "--json"});
        QVERIFY(!theirs["text"].toString().trimmed().isEmpty());
        QCOMPARE(ours["text"].toString(), theirs["text"].toString().trimmed());
        // (No beam comparison: @fugood/whisper.node 1.1.3 takes beamSize but always runs whisper.cpp's
        // WHISPER_SAMPLING_GREEDY strategy, src/common.cpp, so its "beams" are greedy.)
        const QJsonObject vad = run(
            "node",
            {tool + "/run.mjs", "vad", QString::fromStdString(wbtest::fixture("audio/silero-v6.2.0-ggml.bin")), jfk});
        const QJsonObject ourVad =
            run(QStringLiteral(WB_EXE),
                {"transcribe", jfk, "--vad-model",
                 QString::fromStdString(wbtest::fixture("audio/silero-v6.2.0-ggml.bin")), "--vad-only", "--json"});
        const QJsonArray a = vad["segments"].toArray(), b = ourVad["segments"].toArray();
        QCOMPARE(a.size(), b.size());
        for (int i = 0; i < a.size(); ++i) {
            QVERIFY(std::fabs(a[i].toArray()[0].toDouble() - b[i].toObject()["start"].toDouble()) < 0.011);
            QVERIFY(std::fabs(a[i].toArray()[1].toDouble() - b[i].toObject()["end"].toDouble()) < 0.011);
        }
#endif
    }

    void serverTranscriptionDoesNotHoldAHandler() {
        // wb serve with one handler thread: a long transcription (jfk.wav 20 times, on 30 s windows with the
        // fallback, minutes on these random weights) runs on the transcription worker, so /health and /v1/models
        // are answered while it runs; the client leaving cancels it (stop() then drains at once).
        using Clock = std::chrono::steady_clock;
        const std::string gguf = "models/stories260K/stories260K.gguf";
        WB_REQUIRE_FIXTURE(gguf);
        wb::EngineOptions eo;
        eo.modelPath = wbtest::fixture(gguf);
        eo.load.numThreads = 1;
        auto e = wb::Engine::create(eo);
        QVERIFY2(e.ok(), e.ok() ? "" : e.error().message.c_str());
        auto asr = SpeechRecognizer::load(m_ggml, 1);
        QVERIFY(asr.ok());
        wb::ServeOptions so;
        so.port = 0;
        so.handlerThreads = 1;
        so.drainSeconds = 30;
        so.asr = std::shared_ptr<const SpeechRecognizer>(std::move(*asr));
        auto srv = wb::OpenAiServer::create(**e, so);
        QVERIFY(srv.ok());
        auto port = (*srv)->bind();
        QVERIFY(port.ok());
        std::thread runner([&] { (void)(*srv)->run(); });
        auto clip = audio::decodeAudioFile(wbtest::fixture(kJfk));
        QVERIFY(clip.ok());
        std::vector<float> longClip;
        for (int i = 0; i < 20; ++i) longClip.insert(longClip.end(), clip->samples.begin(), clip->samples.end());
        const std::string wavPath = wbtest::tempDir() + "/jfk-x20.wav";
        QVERIFY(audio::writeWav16(wavPath, longClip, clip->sampleRate, clip->channels).ok());
        QFile wf(QString::fromStdString(wavPath));
        QVERIFY(wf.open(QIODevice::ReadOnly));
        const QByteArray wav = wf.readAll();
        const std::string b = "wbtestboundary";
        std::string body = "--" + b + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--" + b +
                           "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n"
                           "Content-Type: audio/wav\r\n\r\n" + std::string(wav.constData(), size_t(wav.size())) +
                           "\r\n--" + b + "--\r\n";
        auto connectTo = [](int p) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(uint16_t(p));
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(fd);
                return -1;
            }
            return fd;
        };
        auto sendAll = [](int fd, const std::string& data) {
            for (size_t off = 0; off < data.size();) {
                const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
                if (n <= 0) return false;
                off += size_t(n);
            }
            return true;
        };
        auto recvFor = [](int fd, const std::string& until, int ms) {
            std::string out;
            const auto end = Clock::now() + std::chrono::milliseconds(ms);
            while (Clock::now() < end && out.find(until) == std::string::npos) {
                pollfd pf{fd, POLLIN, 0};
                if (::poll(&pf, 1, 20) <= 0) continue;
                char buf[4096];
                const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                out.append(buf, size_t(n));
            }
            return out;
        };
        const int post = connectTo(*port);
        QVERIFY(post >= 0);
        QVERIFY(sendAll(post, "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                              "boundary=" + b + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                              body));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the handler has taken it by now
        for (const char* path : {"/health", "/v1/models", "/health"}) {
            const int fd = connectTo(*port);
            QVERIFY(fd >= 0);
            QVERIFY(sendAll(fd, std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
            const std::string r = recvFor(fd, "}", 3000);
            ::close(fd);
            QVERIFY2(r.rfind("HTTP/1.1 200", 0) == 0, (std::string(path) + ": " + r).c_str());
        }
        // The transcription is still running (nothing answered yet): the GETs did not wait behind it.
        QVERIFY(recvFor(post, "HTTP/1.1", 50).empty());
        ::close(post);  // leaving cancels it
        const auto t0 = Clock::now();
        (*srv)->stop();
        runner.join();
        const double stopSec = std::chrono::duration<double>(Clock::now() - t0).count();
        QVERIFY2(stopSec < 10.0, std::to_string(stopSec).c_str());  // not the 30 s drain, not the whole file
        srv->reset();
    }

    void badModelsAreErrors() {
        // The fixture without weights, a missing folder.
        auto noWeights = WhisperModel::load(wbtest::fixture(kVocab));
        QVERIFY(!noWeights.ok());
        QVERIFY(noWeights.error().message.find("no weights") != std::string::npos);
        QVERIFY(!WhisperModel::load(wbtest::tempDir() + "/no-such-model").ok());
    }
};

QTEST_GUILESS_MAIN(TstModelWhisper)
#include "tst_model_whisper.moc"
