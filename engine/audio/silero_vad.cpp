#include "audio/silero_vad.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>

#include "audio/ggml_legacy.h"
#include "core/dtype.h"

namespace wb::audio {

namespace {

constexpr int kSampleRate = 16000;

float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

// ggml_conv_1d with an F16 kernel multiplies in F16 (im2col takes the kernel's type): inputs are rounded the
// same way so that probabilities near the threshold fall on the side whisper.cpp's do.
float roundF16(float x) {
    return fp16ToFp32(fp32ToFp16(x));
}

}  // namespace

Result<SileroVad> SileroVad::load(const std::string& path) {
    auto bytes = readWholeFile(path, size_t(64) << 20);
    if (!bytes) return bytes.error();
    return parse(**bytes, path);
}

Result<SileroVad> SileroVad::parse(std::span<const uint8_t> bytes, const std::string& what) {
    ByteCursor cur(bytes, what);
    auto magic = cur.u32("magic");
    if (!magic) return magic.error();
    if (*magic != kGgmlMagic) return makeError(what + ": not a whisper.cpp ggml VAD model (bad magic)");
    SileroVad v;
    auto typeLen = cur.i32("model type length");
    if (!typeLen) return typeLen.error();
    if (*typeLen < 0 || *typeLen > 256)
        return makeError(what + ": model type of " + std::to_string(*typeLen) + " bytes");
    auto type = cur.string(size_t(*typeLen), "model type");
    if (!type) return type.error();
    v.m_type = *type;
    int32_t ver[3];
    for (int32_t& x : ver) {
        auto r = cur.i32("version");
        if (!r) return r.error();
        x = *r;
    }
    v.m_version = std::to_string(ver[0]) + "." + std::to_string(ver[1]) + "." + std::to_string(ver[2]);
    auto window = cur.i32("n_window");
    if (!window) return window.error();
    auto context = cur.i32("n_context");
    if (!context) return context.error();
    if (*window != 512) return makeError(what + ": window of " + std::to_string(*window) + " samples (512 expected)");
    v.m_window = *window;
    v.m_context = *context;
    auto nLayers = cur.i32("n_encoder_layers");
    if (!nLayers) return nLayers.error();
    if (*nLayers != 4) return makeError(what + ": " + std::to_string(*nLayers) + " encoder layers (4 expected)");
    const int strides[4] = {1, 2, 2, 1};
    for (int i = 0; i < 4; ++i) {
        int32_t f[3];
        for (int32_t& x : f) {
            auto r = cur.i32("encoder layer shape");
            if (!r) return r.error();
            x = *r;
        }
        if (f[0] < 1 || f[0] > 4096 || f[1] < 1 || f[1] > 4096 || f[2] != 3)
            return makeError(what + ": encoder layer " + std::to_string(i) + " has an unsupported shape");
        v.m_enc[i].cin = f[0], v.m_enc[i].cout = f[1], v.m_enc[i].kernel = f[2], v.m_enc[i].stride = strides[i];
    }
    int32_t tail[4];
    for (int32_t& x : tail) {
        auto r = cur.i32("lstm / final conv sizes");
        if (!r) return r.error();
        x = *r;
    }
    const int lstmIn = tail[0], hidden = tail[1];
    if (lstmIn != 128 || hidden != 128 || tail[2] != hidden || tail[3] != 1 || v.m_enc[0].cin != 129 ||
        v.m_enc[3].cout != hidden || v.m_enc[1].cin != v.m_enc[0].cout || v.m_enc[2].cin != v.m_enc[1].cout ||
        v.m_enc[3].cin != v.m_enc[2].cout)
        return makeError(what + ": layer sizes that do not chain (not Silero v5/v6)");
    v.m_hidden = hidden;
    v.m_hop = lstmIn;  // whisper.cpp passes lstm_input_size as the STFT convolution's stride

    auto records = readGgmlTensorRecords(cur, 64);
    if (!records) return records.error();
    std::map<std::string, const GgmlTensorRecord*> byName;
    for (const auto& t : *records) byName[t.name] = &t;
    auto tensor = [&](const std::string& name, int64_t elements) -> Result<std::vector<float>> {
        auto it = byName.find(name);
        if (it == byName.end()) return makeError(what + ": tensor " + name + " is missing");
        if (it->second->numElements() != elements)
            return makeError(what + ": tensor " + name + " has " + std::to_string(it->second->numElements()) +
                             " elements (" + std::to_string(elements) + " expected)");
        auto data = ggmlTensorToFloat(bytes, *it->second);
        if (!data) return makeError(what + ": " + data.error().message);
        return data;
    };
#define WB_VAD_TENSOR(dst, name, n) \
    do {                            \
        auto t_ = tensor(name, n);  \
        if (!t_) return t_.error(); \
        dst = std::move(*t_);       \
    } while (0)
    WB_VAD_TENSOR(v.m_stftBasis, "_model.stft.forward_basis_buffer", int64_t(v.m_stftOut) * v.m_stftTaps);
    for (int i = 0; i < 4; ++i) {
        auto& c = v.m_enc[i];
        const std::string base = "_model.encoder." + std::to_string(i) + ".reparam_conv.";
        WB_VAD_TENSOR(c.w, base + "weight", int64_t(c.cout) * c.cin * c.kernel);
        WB_VAD_TENSOR(c.b, base + "bias", c.cout);
    }
    WB_VAD_TENSOR(v.m_wih, "_model.decoder.rnn.weight_ih", int64_t(4) * hidden * lstmIn);
    WB_VAD_TENSOR(v.m_whh, "_model.decoder.rnn.weight_hh", int64_t(4) * hidden * hidden);
    WB_VAD_TENSOR(v.m_bih, "_model.decoder.rnn.bias_ih", int64_t(4) * hidden);
    WB_VAD_TENSOR(v.m_bhh, "_model.decoder.rnn.bias_hh", int64_t(4) * hidden);
    WB_VAD_TENSOR(v.m_finalW, "_model.decoder.decoder.2.weight", hidden);
    std::vector<float> fb;
    WB_VAD_TENSOR(fb, "_model.decoder.decoder.2.bias", 1);
#undef WB_VAD_TENSOR
    v.m_finalB = fb[0];
    if (records->size() != 15)
        return makeError(what + ": " + std::to_string(records->size()) + " tensors (15 expected)");
    return v;
}

std::vector<float> SileroVad::probabilities(std::span<const float> samples) const {
    const size_t n = samples.size();
    const size_t chunks = (n + size_t(m_window) - 1) / size_t(m_window);
    std::vector<float> probs(chunks);
    const int pad = 64, padded = m_window + 2 * pad;
    const int nBins = m_stftOut / 2;
    const int stftLen = (padded - m_stftTaps) / m_hop + 1;  // 4
    std::vector<float> x(static_cast<size_t>(padded)), win(static_cast<size_t>(m_window));
    std::vector<float> h(size_t(m_hidden), 0.0f), c(size_t(m_hidden), 0.0f), gates(size_t(4 * m_hidden));
    std::vector<float> a, b;
    for (size_t ci = 0; ci < chunks; ++ci) {
        const size_t start = ci * size_t(m_window);
        const size_t len = std::min(size_t(m_window), n - start);
        std::fill(win.begin(), win.end(), 0.0f);
        std::copy(samples.begin() + long(start), samples.begin() + long(start + len), win.begin());
        for (int i = 0; i < padded; ++i) {
            int j = i - pad;
            if (j < 0) j = -j;
            if (j >= m_window) j = 2 * (m_window - 1) - j;
            x[size_t(i)] = roundF16(win[size_t(j)]);
        }
        // STFT magnitude: [nBins][stftLen].
        a.assign(size_t(nBins) * size_t(stftLen), 0.0f);
        for (int t = 0; t < stftLen; ++t) {
            const float* src = x.data() + size_t(t) * size_t(m_hop);
            for (int k = 0; k < nBins; ++k) {
                const float* wr = m_stftBasis.data() + size_t(k) * size_t(m_stftTaps);
                const float* wi = m_stftBasis.data() + size_t(k + nBins) * size_t(m_stftTaps);
                float re = 0, im = 0;
                for (int j = 0; j < m_stftTaps; ++j) re += wr[j] * src[j], im += wi[j] * src[j];
                a[size_t(k) * size_t(stftLen) + size_t(t)] = std::sqrt(re * re + im * im);
            }
        }
        int len0 = stftLen;
        for (const Conv& conv : m_enc) {
            const int lenOut = (len0 + 2 - conv.kernel) / conv.stride + 1;
            b.assign(size_t(conv.cout) * size_t(lenOut), 0.0f);
            for (float& v : a) v = roundF16(v);
            for (int co = 0; co < conv.cout; ++co)
                for (int t = 0; t < lenOut; ++t) {
                    float sum = conv.b[size_t(co)];
                    for (int ci2 = 0; ci2 < conv.cin; ++ci2) {
                        const float* w =
                            conv.w.data() + (size_t(co) * size_t(conv.cin) + size_t(ci2)) * size_t(conv.kernel);
                        const float* in = a.data() + size_t(ci2) * size_t(len0);
                        for (int k = 0; k < conv.kernel; ++k) {
                            const int pos = t * conv.stride + k - 1;
                            if (pos >= 0 && pos < len0) sum += w[k] * in[pos];
                        }
                    }
                    b[size_t(co) * size_t(lenOut) + size_t(t)] = std::max(sum, 0.0f);
                }
            a.swap(b);
            len0 = lenOut;
        }
        // The first time step of each channel into the LSTM cell.
        const int H = m_hidden;
        for (int r = 0; r < 4 * H; ++r) {
            float sum = m_bih[size_t(r)] + m_bhh[size_t(r)];
            const float* wi = m_wih.data() + size_t(r) * size_t(H);
            const float* wh = m_whh.data() + size_t(r) * size_t(H);
            for (int k = 0; k < H; ++k) sum += wi[k] * a[size_t(k) * size_t(len0)] + wh[k] * h[size_t(k)];
            gates[size_t(r)] = sum;
        }
        float logit = m_finalB;
        for (int k = 0; k < H; ++k) {
            const float ig = sigmoid(gates[size_t(k)]), fg = sigmoid(gates[size_t(H + k)]);
            const float gg = std::tanh(gates[size_t(2 * H + k)]), og = sigmoid(gates[size_t(3 * H + k)]);
            c[size_t(k)] = fg * c[size_t(k)] + ig * gg;
            h[size_t(k)] = og * std::tanh(c[size_t(k)]);
            logit += roundF16(m_finalW[size_t(k)]) * roundF16(std::max(h[size_t(k)], 0.0f));
        }
        probs[ci] = sigmoid(logit);
    }
    return probs;
}

std::vector<SpeechSegment> SileroVad::segments(std::span<const float> probs, const VadParams& params) const {
    // The state machine of whisper.cpp's whisper_vad_segments_from_probs (itself Silero's get_speech_timestamps),
    // in samples, then centiseconds.
    const int nProbs = int(std::min<size_t>(probs.size(), size_t(INT_MAX / m_window - 1)));
    const int64_t window = m_window;
    const int64_t minSilence = int64_t(kSampleRate) * params.minSilenceDurationMs / 1000;
    const int64_t audioLen = int64_t(nProbs) * window;
    const int64_t minSpeech = int64_t(kSampleRate) * params.minSpeechDurationMs / 1000;
    const int64_t speechPad = int64_t(kSampleRate) * params.speechPadMs / 1000;
    int64_t maxSpeech = INT_MAX / 2;
    if (params.maxSpeechDurationSec <= 100000.0f) {
        const int64_t t = int64_t(kSampleRate) * int64_t(params.maxSpeechDurationSec) - window - 2 * speechPad;
        maxSpeech = t > INT_MAX || t < 0 ? INT_MAX / 2 : t;
    }
    const int64_t minSilenceAtMax = int64_t(kSampleRate) * 98 / 1000;
    const float negThreshold = std::max(0.01f, params.threshold - 0.15f);

    struct Seg {
        int64_t start, end;
    };
    std::vector<Seg> speeches;
    bool inSpeech = false, hasCurr = false;
    int64_t tempEnd = 0, prevEnd = 0, nextStart = 0, currStart = 0;
    for (int i = 0; i < nProbs; ++i) {
        const float p = probs[size_t(i)];
        const int64_t sample = window * i;
        if (p >= params.threshold && tempEnd) {
            tempEnd = 0;
            if (nextStart < prevEnd) nextStart = sample;
        }
        if (p >= params.threshold && !inSpeech) {
            inSpeech = hasCurr = true;
            currStart = sample;
            continue;
        }
        if (inSpeech && sample - currStart > maxSpeech) {
            if (prevEnd) {
                speeches.push_back({currStart, prevEnd});
                hasCurr = true;
                if (nextStart < prevEnd)
                    inSpeech = hasCurr = false;
                else
                    currStart = nextStart;
                prevEnd = nextStart = tempEnd = 0;
            } else {
                speeches.push_back({currStart, sample});
                prevEnd = nextStart = tempEnd = 0;
                inSpeech = hasCurr = false;
                continue;
            }
        }
        if (p < negThreshold && inSpeech) {
            if (!tempEnd) tempEnd = sample;
            if (sample - tempEnd > minSilenceAtMax) prevEnd = tempEnd;
            if (sample - tempEnd < minSilence) continue;
            if (tempEnd - currStart > minSpeech) speeches.push_back({currStart, tempEnd});
            prevEnd = nextStart = tempEnd = 0;
            inSpeech = hasCurr = false;
        }
    }
    if (hasCurr && audioLen - currStart > minSpeech) speeches.push_back({currStart, audioLen});
    // Segments less than 200 ms apart are merged.
    const int64_t maxMergeGap = int64_t(kSampleRate) * 200 / 1000;
    for (size_t i = 0; i + 1 < speeches.size();) {
        if (speeches[i + 1].start - speeches[i].end < maxMergeGap) {
            speeches[i].end = speeches[i + 1].end;
            speeches.erase(speeches.begin() + long(i) + 1);
        } else {
            ++i;
        }
    }
    std::erase_if(speeches, [&](const Seg& s) { return s.end - s.start < minSpeech; });
    std::vector<SpeechSegment> out;
    for (size_t i = 0; i < speeches.size(); ++i) {
        if (i == 0) speeches[i].start = speeches[i].start > speechPad ? speeches[i].start - speechPad : 0;
        if (i + 1 < speeches.size()) {
            const int64_t silence = speeches[i + 1].start - speeches[i].end;
            if (silence < 2 * speechPad) {
                speeches[i].end += silence / 2;
                speeches[i + 1].start = speeches[i + 1].start > silence / 2 ? speeches[i + 1].start - silence / 2 : 0;
            } else {
                speeches[i].end = std::min(speeches[i].end + speechPad, audioLen);
                speeches[i + 1].start = speeches[i + 1].start > speechPad ? speeches[i + 1].start - speechPad : 0;
            }
        } else {
            speeches[i].end = std::min(speeches[i].end + speechPad, audioLen);
        }
        auto toCs = [](int64_t s) { return double(int64_t(double(s) / kSampleRate * 100.0 + 0.5)) / 100.0; };
        out.push_back({toCs(speeches[i].start), toCs(speeches[i].end)});
    }
    return out;
}

std::vector<SpeechSegment> packSpeechWindows(std::span<const SpeechSegment> segments, double maxSec) {
    std::vector<SpeechSegment> out;
    for (SpeechSegment s : segments) {
        while (s.endSec - s.startSec > maxSec) {  // one segment longer than a window: cut it
            out.push_back({s.startSec, s.startSec + maxSec});
            s.startSec += maxSec;
        }
        if (!out.empty() && s.endSec - out.back().startSec <= maxSec)
            out.back().endSec = s.endSec;
        else
            out.push_back(s);
    }
    return out;
}

}  // namespace wb::audio
