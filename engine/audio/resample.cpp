#include "audio/resample.h"

#include <soxr.h>

#include <cmath>
#include <string>

namespace wb::audio {

std::vector<float> downmixToMono(std::span<const float> interleaved, int channels) {
    if (channels <= 1) return {interleaved.begin(), interleaved.end()};
    const size_t frames = interleaved.size() / size_t(channels);
    std::vector<float> mono(frames);
    const float scale = 1.0f / float(channels);
    for (size_t i = 0; i < frames; ++i) {
        float sum = 0.0f;
        for (int c = 0; c < channels; ++c) sum += interleaved[i * size_t(channels) + size_t(c)];
        mono[i] = sum * scale;
    }
    return mono;
}

Result<std::vector<float>> resampleMono(std::span<const float> mono, int fromRate, int toRate) {
    if (fromRate <= 0 || toRate <= 0) return makeError("resample: invalid sample rate");
    if (fromRate == toRate) return std::vector<float>(mono.begin(), mono.end());
    if (mono.empty()) return std::vector<float>{};
    const double ratio = double(toRate) / double(fromRate);
    // One extra sample of room: soxr rounds the output length of a one-shot conversion to the nearest sample.
    const size_t outCap = size_t(std::ceil(double(mono.size()) * ratio)) + 1;
    std::vector<float> out(outCap);
    size_t done = 0;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    const soxr_error_t err = soxr_oneshot(double(fromRate), double(toRate), 1, mono.data(), mono.size(), nullptr,
                                          out.data(), out.size(), &done, &io, &q, nullptr);
    if (err) return makeError(std::string("resample (libsoxr): ") + err);
    out.resize(done);
    return out;
}

Result<std::vector<float>> toSpeechInput(const AudioData& clip) {
    if (clip.channels <= 0 || clip.sampleRate <= 0) return makeError("audio: no samples");
    const std::vector<float> mono = downmixToMono(clip.samples, clip.channels);
    return resampleMono(mono, clip.sampleRate, kSpeechSampleRate);
}

}  // namespace wb::audio
