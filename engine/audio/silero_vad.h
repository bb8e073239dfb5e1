// Silero VAD v6 (snakers4/silero-vad) in whisper.cpp's ggml layout (models/convert-silero-vad-to-ggml.py): the
// same graph whisper.cpp runs, on the CPU in plain C++ (the model is 300k parameters). Per 512-sample window of
// 16 kHz audio: reflect padding of 64, an STFT as a convolution with the stored basis (256 taps, hop 128, 129
// bins, magnitude), four Conv1d+ReLU layers (129->128->64->64->128, kernel 3, strides 1,2,2,1), the first time
// step into an LSTM cell (128 hidden, state carried across windows), ReLU, a 1x1 conv and a sigmoid: the speech
// probability of the window. Segments from the probabilities follow whisper.cpp's whisper_vad_segments_from_probs
// (threshold with hysteresis, minimum speech and silence, merging of close segments, padding).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb::audio {

/// whisper.cpp's whisper_vad_params and their defaults.
struct VadParams {
    float threshold = 0.5f;
    int minSpeechDurationMs = 250;
    int minSilenceDurationMs = 100;
    float maxSpeechDurationSec = std::numeric_limits<float>::max();
    int speechPadMs = 30;
};

struct SpeechSegment {
    double startSec = 0;
    double endSec = 0;
};

class SileroVad {
public:
    static Result<SileroVad> load(const std::string& path);
    static Result<SileroVad> parse(std::span<const uint8_t> bytes, const std::string& what);

    int windowSamples() const { return m_window; }
    const std::string& modelType() const { return m_type; }
    const std::string& version() const { return m_version; }

    /// Speech probability of each 512-sample window of 16 kHz mono audio (the last one zero-padded); the LSTM
    /// state starts at zero. Thread-safe: the model is read-only.
    std::vector<float> probabilities(std::span<const float> samples16k) const;

    /// Speech segments from the probabilities, times in seconds rounded to centiseconds as whisper.cpp reports.
    std::vector<SpeechSegment> segments(std::span<const float> probs, const VadParams& params = {}) const;

    /// probabilities + segments.
    std::vector<SpeechSegment> detect(std::span<const float> samples16k, const VadParams& params = {}) const {
        return segments(probabilities(samples16k), params);
    }

private:
    struct Conv {
        int cin = 0, cout = 0, kernel = 0, stride = 1;
        std::vector<float> w, b;  // w[cout][cin][kernel]
    };
    std::string m_type, m_version;
    int m_window = 512, m_context = 64;
    std::vector<float> m_stftBasis;  // [258][256]
    int m_stftTaps = 256, m_stftOut = 258, m_hop = 128;
    Conv m_enc[4];
    int m_hidden = 128;
    std::vector<float> m_wih, m_whh, m_bih, m_bhh;  // [4H][in], [4H][H], [4H], [4H]
    std::vector<float> m_finalW;
    float m_finalB = 0;
};

/// Speech segments joined into windows of at most `maxSec` (Whisper's 30 s), cut only between segments (a single
/// longer segment is cut at maxSec). Each window is [start, end] in seconds.
std::vector<SpeechSegment> packSpeechWindows(std::span<const SpeechSegment> segments, double maxSec = 30.0);

}  // namespace wb::audio
