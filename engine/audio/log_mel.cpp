#include "audio/log_mel.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace wb::audio {

namespace {

double hzToMelSlaney(double hz) {
    constexpr double kMinLogHz = 1000.0, kMinLogMel = 15.0;  // 3 * 1000 / 200
    const double logstep = std::log(6.4) / 27.0;
    return hz >= kMinLogHz ? kMinLogMel + std::log(hz / kMinLogHz) / logstep : 3.0 * hz / 200.0;
}

double melToHzSlaney(double mel) {
    constexpr double kMinLogHz = 1000.0, kMinLogMel = 15.0;
    const double logstep = std::log(6.4) / 27.0;
    return mel >= kMinLogMel ? kMinLogHz * std::exp(logstep * (mel - kMinLogMel)) : 200.0 * mel / 3.0;
}

}  // namespace

MelFilterbank whisperMelFilters(int nMels, int nFft, int sampleRate) {
    MelFilterbank fb;
    fb.nMels = nMels;
    fb.nFreqs = nFft / 2 + 1;
    fb.weights.assign(size_t(nMels) * size_t(fb.nFreqs), 0.0f);
    std::vector<double> fftFreqs(size_t(fb.nFreqs));
    for (int i = 0; i < fb.nFreqs; ++i) fftFreqs[size_t(i)] = double(i) * sampleRate / nFft;
    const double melMin = hzToMelSlaney(0.0), melMax = hzToMelSlaney(sampleRate / 2.0);
    std::vector<double> hz(size_t(nMels) + 2);
    for (int i = 0; i < nMels + 2; ++i) hz[size_t(i)] = melToHzSlaney(melMin + (melMax - melMin) * i / (nMels + 1));
    for (int m = 0; m < nMels; ++m) {
        const double lower = hz[size_t(m)], centre = hz[size_t(m) + 1], upper = hz[size_t(m) + 2];
        const double enorm = 2.0 / (upper - lower);
        for (int f = 0; f < fb.nFreqs; ++f) {
            const double down = (fftFreqs[size_t(f)] - lower) / (centre - lower);
            const double up = (upper - fftFreqs[size_t(f)]) / (upper - centre);
            fb.weights[size_t(m) * size_t(fb.nFreqs) + size_t(f)] = float(std::max(0.0, std::min(down, up)) * enorm);
        }
    }
    return fb;
}

LogMel whisperLogMel(std::span<const float> samples, const MelFilterbank& filters) {
    constexpr int n = kWhisperNfft, hop = kWhisperHop, pad = n / 2, nBins = n / 2 + 1;
    const int len = kWhisperChunkSamples;
    const int used = int(std::min<size_t>(samples.size(), size_t(len)));
    // The padded signal, reflected at both ends (the end reflects the zero padding, as the reference's does).
    std::vector<float> x(size_t(len) + 2 * pad, 0.0f);
    std::copy(samples.begin(), samples.begin() + used, x.begin() + pad);
    for (int i = 0; i < pad; ++i) {
        x[size_t(pad - 1 - i)] = x[size_t(pad + 1 + i)];
        x[size_t(pad + len + i)] = x[size_t(pad + len - 2 - i)];
    }
    // DFT tables, made once: n = 400 is not a power of two; a table-driven real DFT over 201 bins is small and
    // exact enough.
    struct Tables {
        std::vector<float> cosT, sinT, window;
    };
    static const Tables tables = [] {
        Tables t{std::vector<float>(size_t(nBins) * n), std::vector<float>(size_t(nBins) * n), std::vector<float>(n)};
        for (int i = 0; i < n; ++i) t.window[size_t(i)] = float(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n));
        for (int k = 0; k < nBins; ++k)
            for (int i = 0; i < n; ++i) {
                const double a = 2.0 * std::numbers::pi * double((int64_t(k) * i) % n) / n;
                t.cosT[size_t(k) * n + size_t(i)] = float(std::cos(a));
                t.sinT[size_t(k) * n + size_t(i)] = float(std::sin(a));
            }
        return t;
    }();
    const std::vector<float>&cosT = tables.cosT, &sinT = tables.sinT, &window = tables.window;
    LogMel out;
    out.nMels = filters.nMels;
    out.nFrames = kWhisperChunkFrames;
    out.data.assign(size_t(out.nMels) * size_t(out.nFrames), 0.0f);
    std::vector<float> frame(n), power(nBins), mel(size_t(out.nMels));
    // Frames that see only padding have zero power: their log is the floor, computed once.
    const int lastLive = used > 0 ? (pad + used - 1 + pad) / hop : -1;
    for (int t = 0; t < out.nFrames; ++t) {
        if (t > lastLive) {
            for (int m = 0; m < out.nMels; ++m) out.data[size_t(m) * size_t(out.nFrames) + size_t(t)] = -10.0f;
            continue;
        }
        const float* src = x.data() + size_t(t) * hop;
        for (int i = 0; i < n; ++i) frame[size_t(i)] = src[i] * window[size_t(i)];
        for (int k = 0; k < nBins; ++k) {
            const float* c = cosT.data() + size_t(k) * n;
            const float* s = sinT.data() + size_t(k) * n;
            float re = 0.0f, im = 0.0f;
            for (int i = 0; i < n; ++i) {
                re += frame[size_t(i)] * c[i];
                im += frame[size_t(i)] * s[i];
            }
            power[size_t(k)] = re * re + im * im;
        }
        for (int m = 0; m < out.nMels; ++m) {
            const float* w = filters.weights.data() + size_t(m) * size_t(filters.nFreqs);
            float sum = 0.0f;
            for (int k = 0; k < std::min(nBins, filters.nFreqs); ++k) sum += w[k] * power[size_t(k)];
            out.data[size_t(m) * size_t(out.nFrames) + size_t(t)] = std::log10(std::max(sum, 1e-10f));
        }
    }
    float maxVal = -1e30f;
    for (float v : out.data) maxVal = std::max(maxVal, v);
    for (float& v : out.data) v = (std::max(v, maxVal - 8.0f) + 4.0f) / 4.0f;
    return out;
}

}  // namespace wb::audio
