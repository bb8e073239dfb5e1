#include "api/speech.h"

#include "audio/audio_decode.h"
#include "audio/resample.h"
#include "audio/silero_vad.h"

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

std::string SpeechDetector::description() const { return m_impl->vad.modelType() + " " + m_impl->vad.version(); }

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

std::vector<SpeechSpan> speechWindows(std::span<const SpeechSpan> spans, double maxSec) {
    std::vector<audio::SpeechSegment> segs;
    for (const auto& s : spans) segs.push_back({s.startSec, s.endSec});
    std::vector<SpeechSpan> out;
    for (const auto& w : audio::packSpeechWindows(segs, maxSec)) out.push_back({w.startSec, w.endSec});
    return out;
}

}  // namespace wb
