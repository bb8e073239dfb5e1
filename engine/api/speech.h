// Speech input for front ends (wb transcribe, the server, the GUI): audio files to 16 kHz mono, speech detection
// with the Silero VAD (whisper.cpp's ggml file), docs/VOICE.md. Implemented over engine/audio/.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

/// A file decoded as it is (its own rate and channels, interleaved, -1..1), for front ends that show or play it.
struct DecodedAudio {
    std::vector<float> samples;
    int sampleRate = 0;
    int channels = 0;
};

/// Decodes WAV, FLAC, OGG Vorbis or MP3 (by content) without resampling: the decoder loadSpeechAudio uses, with
/// its checks (a lying header, truncation, the length limit). Errors name the file. Blocking; thread-safe.
Result<DecodedAudio> loadAudioFile(const std::string& path, double maxDurationSec = 4 * 3600.0);

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

/// Options of one transcription.
struct TranscribeOptions {
    std::string language;    // "en", "de", ...; empty: detected from the first window (multilingual models)
    bool timestamps = true;  // segment timestamps (otherwise one segment per 30 s window)
    int maxTokensPerWindow = 224;
    int beamSize = 5;                   // whisper.cpp's CLI default (whisper-cli -bs 5); 1: greedy
    float temperature = 0;              // the first temperature; > 0 samples (one sample, no beams)
    bool temperatureFallback = true;    // retry at +0.2 up to 1.0 while the text looks wrong (docs/VOICE.md)
    uint64_t seed = 0;                  // sampling seed: the same seed, the same text
    const std::atomic<bool>* cancel = nullptr;  // set from any thread: transcribe returns the error "cancelled"
};

struct TranscriptSegment {
    double startSec = 0;
    double endSec = 0;
    std::string text;
    // Of the 30 s window the segment came from (as OpenAI's verbose_json reports them).
    float temperature = 0;
    double avgLogprob = 0, compressionRatio = 0, noSpeechProb = 0;
};

struct Transcript {
    std::string language;
    std::string text;
    std::vector<TranscriptSegment> segments;
    double durationSec = 0;
    double speechSec = 0;  // what was transcribed: the VAD's windows, or the whole clip
    int fallbacks = 0;     // windows decoded again at a higher temperature
    int silentWindows = 0; // windows judged silence (no-speech probability)
};

/// The temperatures a transcription tries: `first`, then +0.2 up to 1.0 with `fallback`, else `first` alone.
std::vector<float> fallbackTemperatures(float first, bool fallback);

/// Whisper (a Hugging Face WhisperForConditionalGeneration folder or a whisper.cpp ggml-*.bin) on the CPU.
/// `transcribe` runs one transcription at a time (calls from several threads queue on a mutex).
class SpeechRecognizer {
public:
    static Result<std::unique_ptr<SpeechRecognizer>> load(const std::string& path, int numThreads = 0);
    ~SpeechRecognizer();

    /// "whisper d384 4+4 layers, multilingual"
    std::string description() const;

    /// Transcribes 16 kHz mono audio. With a detector, leading and trailing silence is trimmed and the speech is
    /// cut at speech boundaries into windows of at most 30 s; without one, the clip is cut every 30 s.
    /// `progress` (optional) gets the fraction done after each window, on the calling thread.
    Result<Transcript> transcribe(const SpeechAudio& audio, const TranscribeOptions& options = {},
                                  const SpeechDetector* detector = nullptr,
                                  const std::function<void(double)>& progress = {}) const;

    struct Impl;

private:
    explicit SpeechRecognizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

/// Speech spans joined into windows of at most `maxSec` (Whisper's 30 s), cut between spans where possible.
std::vector<SpeechSpan> speechWindows(std::span<const SpeechSpan> spans, double maxSec = 30.0);

}  // namespace wb
