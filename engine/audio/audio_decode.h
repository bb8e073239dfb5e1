// Audio files into float samples, without Qt: WAV, FLAC, OGG Vorbis and MP3 through libsndfile (the format is
// taken from the content, not the name). Untrusted input: every failure is an Error naming the source and the
// cause, and a clip longer than the limit is refused before its samples are held.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb::audio {

struct AudioData {
    std::vector<float> samples;  // interleaved, -1..1
    int sampleRate = 0;
    int channels = 0;

    int64_t frames() const { return channels > 0 ? int64_t(samples.size()) / channels : 0; }
    double durationSec() const { return sampleRate > 0 ? double(frames()) / sampleRate : 0.0; }
};

struct AudioLimits {
    double maxDurationSec = 4 * 3600.0;  // 4 h of 48 kHz stereo is ~5.5 GB of floats: the bound on memory
    int maxChannels = 16;
    int maxSampleRate = 384'000;
};

/// Decodes an encoded file held in memory. `what` names it in errors.
Result<AudioData> decodeAudio(std::span<const uint8_t> bytes, const std::string& what, const AudioLimits& limits = {});

/// Reads and decodes a file.
Result<AudioData> decodeAudioFile(const std::string& path, const AudioLimits& limits = {});

/// Writes 16-bit PCM WAV (tests, `wb transcribe --save-trimmed`).
Result<void> writeWav16(const std::string& path, std::span<const float> samples, int sampleRate, int channels);

}  // namespace wb::audio
