#include "formats/kquant_encode.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace wb {

namespace {

constexpr int kQKK = 256;

int clampRound(float v, int lo, int hi) { return std::clamp(int(std::lround(v)), lo, hi); }

}  // namespace

void quantizeRowQ4K(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float* x = src + b * kQKK;
        uint8_t* blk = dst + b * 144;  // d (2), dmin (2), scales (12), qs (128)
        // Each 32-value sub-block j: x ≈ scale_j * q - min_j with q in 0..15 and min_j >= 0.
        float scale[8], mins[8];
        for (int j = 0; j < 8; ++j) {
            float lo = 0.0f, hi = 0.0f;  // the range always holds 0, as ggml's (min <= 0)
            for (int l = 0; l < 32; ++l) lo = std::min(lo, x[j * 32 + l]), hi = std::max(hi, x[j * 32 + l]);
            scale[j] = (hi - lo) / 15.0f;
            mins[j] = -lo;
        }
        const float maxScale = *std::max_element(scale, scale + 8), maxMin = *std::max_element(mins, mins + 8);
        const uint16_t dh = fp32ToFp16(maxScale / 63.0f), mh = fp32ToFp16(maxMin / 63.0f);
        const float d = fp16ToFp32(dh), dmin = fp16ToFp32(mh);
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            sc[j] = d > 0 ? uint8_t(clampRound(scale[j] / d, 0, 63)) : 0;
            mn[j] = dmin > 0 ? uint8_t(clampRound(mins[j] / dmin, 0, 63)) : 0;
            // A sub-block whose scale rounds to 0 but has values: the smallest step keeps it from collapsing.
            if (sc[j] == 0 && scale[j] > 0 && d > 0) sc[j] = 1;
        }
        std::memcpy(blk, &dh, 2);
        std::memcpy(blk + 2, &mh, 2);
        uint8_t* scales = blk + 4;
        for (int j = 0; j < 4; ++j) {
            scales[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            scales[j + 4] = uint8_t((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
            scales[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
        }
        uint8_t q[kQKK];
        for (int j = 0; j < 8; ++j) {
            const float dj = d * float(sc[j]), mj = dmin * float(mn[j]);
            for (int l = 0; l < 32; ++l)
                q[j * 32 + l] = dj > 0 ? uint8_t(clampRound((x[j * 32 + l] + mj) / dj, 0, 15)) : 0;
        }
        // Bytes 32k..32k+31 hold sub-block 2k in their low nibbles and 2k+1 in their high ones.
        uint8_t* qs = blk + 16;
        for (int k = 0; k < 4; ++k)
            for (int l = 0; l < 32; ++l) qs[k * 32 + l] = uint8_t(q[64 * k + l] | (q[64 * k + 32 + l] << 4));
    }
}

void quantizeRowQ6K(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float* x = src + b * kQKK;
        uint8_t* blk = dst + b * 210;  // ql (128), qh (64), scales (16), d (2)
        // Each 16-value sub-block i: x ≈ scale_i * q with q in -32..31.
        float scale[16];
        for (int i = 0; i < 16; ++i) {
            float amax = 0.0f;
            for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[i * 16 + l]));
            scale[i] = amax / 31.0f;
        }
        const float maxScale = *std::max_element(scale, scale + 16);
        const uint16_t dh = fp32ToFp16(maxScale / 127.0f);
        const float d = fp16ToFp32(dh);
        int8_t sc[16];
        for (int i = 0; i < 16; ++i) {
            sc[i] = d > 0 ? int8_t(clampRound(scale[i] / d, 0, 127)) : 0;
            if (sc[i] == 0 && scale[i] > 0 && d > 0) sc[i] = 1;
        }
        uint8_t q[kQKK];  // q + 32, 0..63
        for (int i = 0; i < 16; ++i) {
            const float di = d * float(sc[i]);
            for (int l = 0; l < 16; ++l)
                q[i * 16 + l] = uint8_t((di > 0 ? clampRound(x[i * 16 + l] / di, -32, 31) : 0) + 32);
        }
        uint8_t* ql = blk;
        uint8_t* qh = blk + 128;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* h = q + half * 128;
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = h[l], q2 = h[l + 32], q3 = h[l + 64], q4 = h[l + 96];
                ql[half * 64 + l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[half * 64 + l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[half * 32 + l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
        std::memcpy(blk + 192, sc, 16);
        std::memcpy(blk + 208, &dh, 2);
    }
}

DType q4KMTypeFor(const std::string& name, int layer, int numLayers, int64_t cols) {
    auto moreBits = [&] {
        return layer < numLayers / 8 || layer >= 7 * numLayers / 8 || (layer - numLayers / 8) % 3 == 2;
    };
    auto endsWith = [&](const char* s) {
        const std::string suf = s;
        return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    DType t = DType::Q4_K;
    if (name == "output.weight") t = DType::Q6_K;
    else if (layer >= 0 && (endsWith("attn_v.weight") || endsWith("ffn_down.weight")) && moreBits()) t = DType::Q6_K;
    if (cols % kQKK != 0) return t == DType::Q6_K ? DType::Q8_0 : DType::Q4_0;
    return t;
}

}  // namespace wb
