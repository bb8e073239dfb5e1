// Sample-rate conversion to what speech models take: 16 kHz mono, through libsoxr (its HQ preset: a linear-phase
// filter with 20-bit precision, the library's default quality), never a hand-written resampler.
#pragma once

#include <span>
#include <vector>

#include "audio/audio_decode.h"
#include "core/result.h"

namespace wb::audio {

inline constexpr int kSpeechSampleRate = 16000;

/// Averages interleaved channels into one.
std::vector<float> downmixToMono(std::span<const float> interleaved, int channels);

/// Resamples mono samples from `fromRate` to `toRate` (libsoxr, HQ). Equal rates return a copy.
Result<std::vector<float>> resampleMono(std::span<const float> mono, int fromRate, int toRate);

/// A decoded clip as 16 kHz mono.
Result<std::vector<float>> toSpeechInput(const AudioData& clip);

}  // namespace wb::audio
