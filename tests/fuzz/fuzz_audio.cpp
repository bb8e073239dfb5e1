// Audio files as a request's input_audio part or a dropped clip goes: decodeAudio (libsndfile: WAV, FLAC, OGG
// Vorbis, MP3 by content; a length limit checked while decoding), then, for short clips, the 16 kHz mono
// resampling (libsoxr). The limit is lowered from 4 hours to 20 s so that one input stays within -rss_limit_mb;
// the checks are the same. The log-mel features are arithmetic over samples already clamped to [-1, 1]
// (tst_audio_frontend): under coverage tracing their 240,000-value passes made each input ~20 ms, so they are
// left out. Seeds: tests/fuzz/seeds/fuzz_audio (tiny WAVs: 16 kHz mono, 44.1 kHz stereo, 8-bit 8 kHz).
#include <cstddef>
#include <cstdint>
#include <span>

#include "audio/audio_decode.h"
#include "audio/resample.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    wb::audio::AudioLimits limits;
    limits.maxDurationSec = 20.0;
    auto clip = wb::audio::decodeAudio(std::span<const uint8_t>(data, size), "fuzz audio", limits);
    if (!clip) return wbfuzz::note(clip.error().message), 0;
    if (clip->channels <= 0 || clip->sampleRate <= 0 || clip->samples.size() % size_t(clip->channels) != 0)
        __builtin_trap();
    for (float s : clip->samples)
        if (!(s >= -1.0f && s <= 1.0f)) __builtin_trap();
    // libsoxr's filter design costs milliseconds per call (more under the sanitizers): short clips only.
    if (clip->frames() > 4096) return wbfuzz::note("decoded"), 0;
    auto mono = wb::audio::toSpeechInput(*clip);
    if (!mono) return wbfuzz::note(mono.error().message), 0;
    // A clip shorter than one 16 kHz sample (one frame at 44.1 kHz: tests/fuzz/regressions/fuzz_audio) resamples
    // to nothing; anything of two output samples' length or more must give some.
    const double outSamples = double(clip->frames()) * 16000.0 / double(clip->sampleRate);
    if (mono->size() > 0 && clip->samples.empty()) __builtin_trap();
    if (mono->empty() && outSamples >= 2.0) __builtin_trap();
    wbfuzz::note("decoded, resampled");
    return 0;
}
