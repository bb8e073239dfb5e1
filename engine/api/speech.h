// Speech input for front ends (wb transcribe, the server, the GUI): audio files to 16 kHz mono, speech detection
// with the Silero VAD (whisper.cpp's ggml file), docs/VOICE.md. Implemented over engine/audio/.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb {

/// A decoded clip as speech models take it: 16 kHz mono float samples, and what the file was.
struct SpeechAudio {
    std::vector<float> samples;  // 16 kHz mono, -1..1
    int sourceSampleRate = 0;
    int sourceChannels = 0;
    double durationSec() const { return double(samples.size()) / 16000.0; }
};

/// Decodes WAV, FLAC, OGG Vorbis or MP3 (by content) and resamples to 16 kHz mono (libsoxr). Clips longer than
/// `maxDurationSec` are refused before their samples are kept. Blocking; thread-safe.
Result<SpeechAudio> loadSpeechAudio(const std::string& path, double maxDurationSec = 4 * 3600.0);
Result<SpeechAudio> decodeSpeechAudio(std::span<const uint8_t> bytes, const std::string& what,
                                      double maxDurationSec = 4 * 3600.0);

/// One stretch of speech, in seconds from the start of the clip.
struct SpeechSpan {
    double startSec = 0;
    double endSec = 0;
};

/// whisper.cpp's VAD parameters and defaults.
struct VadSettings {
    float threshold = 0.5f;
    int minSpeechDurationMs = 250;
    int minSilenceDurationMs = 100;
    int speechPadMs = 30;
    float maxSpeechDurationSec = std::numeric_limits<float>::max();
};

/// The Silero VAD (v5/v6 in whisper.cpp's ggml layout, e.g. ggml-silero-v6.2.0.bin). Immutable once loaded:
/// `detect` may run on several threads at once.
class SpeechDetector {
public:
    static Result<std::shared_ptr<const SpeechDetector>> load(const std::string& path);
    ~SpeechDetector();

    /// "silero-16k 6.2.0"
    std::string description() const;
    std::vector<SpeechSpan> detect(std::span<const float> samples16k, const VadSettings& settings = {}) const;
    /// Per 32 ms window (512 samples), the probability of speech.
    std::vector<float> probabilities(std::span<const float> samples16k) const;

    struct Impl;

private:
    explicit SpeechDetector(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

/// Speech spans joined into windows of at most `maxSec` (Whisper's 30 s), cut between spans where possible.
std::vector<SpeechSpan> speechWindows(std::span<const SpeechSpan> spans, double maxSec = 30.0);

}  // namespace wb
