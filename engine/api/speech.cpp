#include "api/speech.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "audio/audio_decode.h"
#include "audio/log_mel.h"
#include "audio/resample.h"
#include "audio/silero_vad.h"
#include "models/whisper/whisper_decode.h"
#include "models/whisper/whisper_model.h"

namespace wb {

namespace {

Result<SpeechAudio> toSpeech(Result<audio::AudioData> clip, const std::string& what) {
    if (!clip) return clip.error();
    SpeechAudio out;
    out.sourceSampleRate = clip->sampleRate;
    out.sourceChannels = clip->channels;
    auto mono = audio::toSpeechInput(*clip);
    if (!mono) return makeError(what + ": " + mono.error().message);
    out.samples = std::move(*mono);
    return out;
}

}  // namespace

Result<SpeechAudio> loadSpeechAudio(const std::string& path, double maxDurationSec) {
    audio::AudioLimits limits;
    limits.maxDurationSec = maxDurationSec;
    return toSpeech(audio::decodeAudioFile(path, limits), path);
}

Result<SpeechAudio> decodeSpeechAudio(std::span<const uint8_t> bytes, const std::string& what, double maxDurationSec) {
    audio::AudioLimits limits;
    limits.maxDurationSec = maxDurationSec;
    return toSpeech(audio::decodeAudio(bytes, what, limits), what);
}

Result<DecodedAudio> loadAudioFile(const std::string& path, double maxDurationSec) {
    audio::AudioLimits limits;
    limits.maxDurationSec = maxDurationSec;
    auto clip = audio::decodeAudioFile(path, limits);
    if (!clip) return clip.error();
    return DecodedAudio{std::move(clip->samples), clip->sampleRate, clip->channels};
}

struct SpeechDetector::Impl {
    audio::SileroVad vad;
};

SpeechDetector::SpeechDetector(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SpeechDetector::~SpeechDetector() = default;

Result<std::shared_ptr<const SpeechDetector>> SpeechDetector::load(const std::string& path) {
    auto vad = audio::SileroVad::load(path);
    if (!vad) return vad.error();
    auto impl = std::make_unique<Impl>(Impl{std::move(*vad)});
    return std::shared_ptr<const SpeechDetector>(new SpeechDetector(std::move(impl)));
}

std::string SpeechDetector::description() const {
    return m_impl->vad.modelType() + " " + m_impl->vad.version();
}

std::vector<float> SpeechDetector::probabilities(std::span<const float> samples16k) const {
    return m_impl->vad.probabilities(samples16k);
}

std::vector<SpeechSpan> SpeechDetector::detect(std::span<const float> samples16k, const VadSettings& s) const {
    audio::VadParams p;
    p.threshold = s.threshold;
    p.minSpeechDurationMs = s.minSpeechDurationMs;
    p.minSilenceDurationMs = s.minSilenceDurationMs;
    p.speechPadMs = s.speechPadMs;
    p.maxSpeechDurationSec = s.maxSpeechDurationSec;
    std::vector<SpeechSpan> out;
    for (const auto& seg : m_impl->vad.detect(samples16k, p)) out.push_back({seg.startSec, seg.endSec});
    return out;
}

struct SpeechRecognizer::Impl {
    std::unique_ptr<whisper::WhisperModel> model;
    audio::MelFilterbank filters;
    mutable std::mutex mutex;
};

SpeechRecognizer::SpeechRecognizer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SpeechRecognizer::~SpeechRecognizer() = default;

Result<std::unique_ptr<SpeechRecognizer>> SpeechRecognizer::load(const std::string& path, int numThreads) {
    auto m = whisper::WhisperModel::load(path, numThreads);
    if (!m) return m.error();
    auto impl = std::make_unique<Impl>();
    impl->filters = audio::whisperMelFilters((*m)->config().nMels);
    impl->model = std::move(*m);
    return std::unique_ptr<SpeechRecognizer>(new SpeechRecognizer(std::move(impl)));
}

std::string SpeechRecognizer::description() const {
    const auto& c = m_impl->model->config();
    return "whisper d" + std::to_string(c.dModel) + " " + std::to_string(c.encLayers) + "+" +
           std::to_string(c.decLayers) + " layers, " + std::to_string(c.nMels) + " mels, " +
           (c.multilingual() ? "multilingual" : "English-only");
}

Result<Transcript> SpeechRecognizer::transcribe(const SpeechAudio& audio, const TranscribeOptions& options,
                                                const SpeechDetector* detector,
                                                const std::function<void(double)>& progress) const {
    std::lock_guard lock(m_impl->mutex);
    Transcript out;
    out.durationSec = audio.durationSec();
    std::vector<SpeechSpan> windows;
    if (detector) {
        windows = speechWindows(detector->detect(audio.samples), 30.0);
    } else {
        for (double t = 0; t < out.durationSec; t += 30.0) windows.push_back({t, std::min(t + 30.0, out.durationSec)});
    }
    if (options.beamSize < 1 || options.beamSize > 16) return makeError("the beam size must be 1 to 16");
    if (!std::isfinite(options.temperature) || options.temperature < 0 || options.temperature > 2)
        return makeError("the temperature must be 0 to 2");
    whisper::DecodeOptions d;
    d.language = options.language;
    d.timestamps = options.timestamps;
    d.maxTokens = options.maxTokensPerWindow;
    d.beamSize = options.beamSize;
    d.cancel = options.cancel;
    whisper::FallbackOptions fallback;
    fallback.temperatures = fallbackTemperatures(options.temperature, options.temperatureFallback);
    if (!options.temperatureFallback) fallback.compressionRatioThreshold = fallback.noSpeechThreshold = 0;
    for (size_t w = 0; w < windows.size(); ++w) {
        if (options.cancel && options.cancel->load()) return makeError("cancelled");
        d.seed = options.seed + 1000003ull * w;
        const size_t from = std::min(audio.samples.size(), size_t(windows[w].startSec * 16000.0));
        const size_t to = std::min(audio.samples.size(), size_t(windows[w].endSec * 16000.0 + 0.5));
        out.speechSec += double(to - from) / 16000.0;
        const std::span<const float> part(audio.samples.data() + from, to - from);
        const auto mel = audio::whisperLogMel(part, m_impl->filters);
        auto r = whisper::transcribeWindow(*m_impl->model, mel.data, d, fallback);
        if (!r) return r.error();
        out.fallbacks += r->attempts - 1;
        out.silentWindows += r->noSpeech ? 1 : 0;
        if (out.language.empty()) out.language = r->language;
        d.language = out.language;  // the first window's language for the rest
        const double offset = double(from) / 16000.0, windowLen = double(to - from) / 16000.0;
        for (const auto& seg : r->segments) {
            TranscriptSegment s{offset + std::min(seg.startSec, windowLen), offset + std::min(seg.endSec, windowLen),
                                seg.text,        r->temperature, r->avgLogprob, r->compressionRatio,
                                r->noSpeechProb};
            out.segments.push_back(std::move(s));
        }
        out.text += r->text;
        if (progress) progress(double(w + 1) / double(windows.size()));
    }
    // Whisper's text starts with the space of its first word.
    const size_t first = out.text.find_first_not_of(' ');
    out.text = first == std::string::npos ? std::string() : out.text.substr(first);
    return out;
}

std::vector<float> fallbackTemperatures(float first, bool fallback) {
    std::vector<float> t = {first};
    if (fallback)
        for (int i = 1; first + 0.2f * float(i) <= 1.0f + 1e-4f; ++i) t.push_back(first + 0.2f * float(i));
    return t;
}

std::vector<SpeechSpan> speechWindows(std::span<const SpeechSpan> spans, double maxSec) {
    std::vector<audio::SpeechSegment> segs;
    for (const auto& s : spans) segs.push_back({s.startSec, s.endSec});
    std::vector<SpeechSpan> out;
    for (const auto& w : audio::packSpeechWindows(segs, maxSec)) out.push_back({w.startSec, w.endSec});
    return out;
}

}  // namespace wb
