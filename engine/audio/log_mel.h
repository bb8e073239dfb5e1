// Whisper's input features: a log-mel spectrogram of 16 kHz mono audio as the reference computes it (OpenAI's
// whisper/audio.py, Transformers' WhisperFeatureExtractor): the window padded with zeros (or cut) to 30 s, a
// centred STFT (reflect padding of n_fft/2, periodic Hann window, n_fft 400, hop 160), power spectrum, the last
// frame dropped (3000 frames), a Slaney-normalised mel filterbank (80 or 128 bins, 0-8 kHz), log10 with a 1e-10
// floor, clamped to (max - 8), then (x + 4) / 4.
#pragma once

#include <span>
#include <vector>

namespace wb::audio {

inline constexpr int kWhisperNfft = 400;
inline constexpr int kWhisperHop = 160;
inline constexpr int kWhisperChunkSamples = 30 * 16000;                         // one 30 s window
inline constexpr int kWhisperChunkFrames = kWhisperChunkSamples / kWhisperHop;  // 3000

/// A mel filterbank, row-major [nMels][nFreqs] (nFreqs = n_fft/2 + 1): whisper.cpp's file layout, the transpose
/// of Transformers' `mel_filters`.
struct MelFilterbank {
    int nMels = 0;
    int nFreqs = 0;
    std::vector<float> weights;
};

/// The filterbank librosa.filters.mel(sr, n_fft, n_mels) gives (Slaney mel scale and area normalisation, 0 Hz to
/// sr/2), computed in double precision and rounded to float as whisper's mel_filters.npz stores it.
MelFilterbank whisperMelFilters(int nMels, int nFft = kWhisperNfft, int sampleRate = 16000);

/// Log-mel features, row-major [nMels][nFrames] (Transformers' `input_features[0]`).
struct LogMel {
    int nMels = 0;
    int nFrames = 0;
    std::vector<float> data;
};

/// Features of one 30 s window: `samples` (16 kHz mono) are zero-padded or cut to 480000 samples first.
LogMel whisperLogMel(std::span<const float> samples, const MelFilterbank& filters);

}  // namespace wb::audio
