#include "backend/cpu/weight_matrix.h"

#include "core/huge_buffer.h"
#include "core/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace wb {

namespace {

// GGUF block layouts, byte for byte as ggml defines them (ggml-common.h).
constexpr int kQK = 32;
constexpr int kQKK = 256;

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];  // bit i: the fifth bit of value i
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ4K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits
    uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

struct BlockQ6K {
    uint8_t ql[kQKK / 2];
    uint8_t qh[kQKK / 4];
    int8_t scales[kQKK / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

// The 6-bit scale and min of sub-block j of a Q4_K super-block: the first four sit in the low 6 bits of bytes
// 0..7, the last four are split between the low/high nibbles of bytes 8..11 and the top 2 bits of bytes 0..7.
inline void scaleMinK4(int j, const uint8_t* q, uint8_t& sc, uint8_t& mn) {
    if (j < 4) {
        sc = q[j] & 63;
        mn = q[j + 4] & 63;
    } else {
        sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        mn = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void dequantQ8_0(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ8_0), sizeof blk);
        const float d = fp16ToFp32(blk.d);
        for (int i = 0; i < kQK; ++i) dst[b * kQK + i] = d * float(blk.qs[i]);
    }
}

void dequantQ4_0(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ4_0), sizeof blk);
        const float d = fp16ToFp32(blk.d);
        float* y = dst + b * kQK;
        for (int i = 0; i < kQK / 2; ++i) {
            y[i] = d * float(int(blk.qs[i] & 0xF) - 8);
            y[i + kQK / 2] = d * float(int(blk.qs[i] >> 4) - 8);
        }
    }
}

void dequantQ5_0(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        BlockQ5_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ5_0), sizeof blk);
        const float d = fp16ToFp32(blk.d);
        uint32_t qh;
        std::memcpy(&qh, blk.qh, 4);
        float* y = dst + b * kQK;
        for (int i = 0; i < kQK / 2; ++i) {
            const int lo = int(blk.qs[i] & 0xF) | int(((qh >> i) & 1u) << 4);
            const int hi = int(blk.qs[i] >> 4) | int(((qh >> (i + 16)) & 1u) << 4);
            y[i] = d * float(lo - 16);
            y[i + kQK / 2] = d * float(hi - 16);
        }
    }
}

void dequantQ4K(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        BlockQ4K blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ4K), sizeof blk);
        const float d = fp16ToFp32(blk.d);
        const float dmin = fp16ToFp32(blk.dmin);
        float* y = dst + b * kQKK;
        const uint8_t* q = blk.qs;
        for (int j = 0, is = 0; j < kQKK; j += 64, is += 2) {
            uint8_t sc, mn;
            scaleMinK4(is, blk.scales, sc, mn);
            const float d1 = d * sc, m1 = dmin * mn;
            scaleMinK4(is + 1, blk.scales, sc, mn);
            const float d2 = d * sc, m2 = dmin * mn;
            for (int l = 0; l < 32; ++l) y[j + l] = d1 * float(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * float(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

void dequantQ6K(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        BlockQ6K blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ6K), sizeof blk);
        const float d = fp16ToFp32(blk.d);
        float* y = dst + b * kQKK;
        const uint8_t* ql = blk.ql;
        const uint8_t* qh = blk.qh;
        const int8_t* sc = blk.scales;
        for (int half = 0; half < 2; ++half) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * float(sc[is + 0]) * float(q1);
                y[l + 32] = d * float(sc[is + 2]) * float(q2);
                y[l + 64] = d * float(sc[is + 4]) * float(q3);
                y[l + 96] = d * float(sc[is + 6]) * float(q4);
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

// Same rounding as ggml's quantize_row_q8_0_ref, so re-quantizing a dequantized Q8_0 row is lossless.
void quantQ8_0(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        const float* x = src + b * kQK;
        float amax = 0.0f;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ8_0 blk;
        blk.d = fp32ToFp16(d);
        for (int i = 0; i < kQK; ++i) blk.qs[i] = int8_t(std::lround(x[i] * id));
        std::memcpy(dst + b * sizeof(BlockQ8_0), &blk, sizeof blk);
    }
}

// ggml's quantize_row_q4_0_ref: the value of largest magnitude maps to -8 so the full 4-bit range is used.
void quantQ4_0(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        const float* x = src + b * kQK;
        float amax = 0.0f, vmax = 0.0f;
        for (int i = 0; i < kQK; ++i) {
            if (std::fabs(x[i]) > amax) {
                amax = std::fabs(x[i]);
                vmax = x[i];
            }
        }
        const float d = vmax / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_0 blk;
        blk.d = fp32ToFp16(d);
        for (int i = 0; i < kQK / 2; ++i) {
            const int x0 = std::min(15, int(int8_t(x[i] * id + 8.5f)));
            const int x1 = std::min(15, int(int8_t(x[i + kQK / 2] * id + 8.5f)));
            blk.qs[i] = uint8_t(x0 | (x1 << 4));
        }
        std::memcpy(dst + b * sizeof(BlockQ4_0), &blk, sizeof blk);
    }
}

// ggml's quantize_row_q5_0_ref rounding: the value of largest magnitude maps to -16.
void quantQ5_0(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        const float* x = src + b * kQK;
        float amax = 0.0f, vmax = 0.0f;
        for (int i = 0; i < kQK; ++i) {
            if (std::fabs(x[i]) > amax) {
                amax = std::fabs(x[i]);
                vmax = x[i];
            }
        }
        const float d = vmax / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ5_0 blk;
        blk.d = fp32ToFp16(d);
        uint32_t qh = 0;
        for (int i = 0; i < kQK / 2; ++i) {
            const int x0 = std::min(31, int(int8_t(x[i] * id + 16.5f)));
            const int x1 = std::min(31, int(int8_t(x[i + kQK / 2] * id + 16.5f)));
            blk.qs[i] = uint8_t((x0 & 0xF) | ((x1 & 0xF) << 4));
            qh |= uint32_t((x0 >> 4) & 1) << i;
            qh |= uint32_t((x1 >> 4) & 1) << (i + kQK / 2);
        }
        std::memcpy(blk.qh, &qh, 4);
        std::memcpy(dst + b * sizeof(BlockQ5_0), &blk, sizeof blk);
    }
}

// Plain K-quant encoders (no importance search, unlike llama.cpp's): enough for files to benchmark and test with.
// Q4_K: per 32-value sub-block, the range [min, max] maps onto 0..15; the 6-bit scales and mins are relative to
// the super-block's largest.
void quantQ4K(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float* x = src + b * kQKK;
        float sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            float lo = x[j * 32], hi = x[j * 32];
            for (int l = 1; l < 32; ++l) {
                lo = std::min(lo, x[j * 32 + l]);
                hi = std::max(hi, x[j * 32 + l]);
            }
            lo = std::min(lo, 0.0f);  // the stored min is subtracted, so it is >= 0
            sc[j] = (hi - lo) / 15.0f;
            mn[j] = -lo;
        }
        const float maxSc = *std::max_element(sc, sc + 8), maxMn = *std::max_element(mn, mn + 8);
        const float d = maxSc / 63.0f, dmin = maxMn / 63.0f;
        BlockQ4K blk{};
        blk.d = fp32ToFp16(d);
        blk.dmin = fp32ToFp16(dmin);
        uint8_t L[8], M[8];
        for (int j = 0; j < 8; ++j) {
            L[j] = uint8_t(std::min(63L, std::lround(d > 0 ? sc[j] / d : 0.0f)));
            M[j] = uint8_t(std::min(63L, std::lround(dmin > 0 ? mn[j] / dmin : 0.0f)));
            if (j < 4) {
                blk.scales[j] = L[j];
                blk.scales[j + 4] = M[j];
            } else {
                blk.scales[j + 4] = uint8_t((L[j] & 0xF) | ((M[j] & 0xF) << 4));
                blk.scales[j - 4] |= uint8_t((L[j] >> 4) << 6);
                blk.scales[j] |= uint8_t((M[j] >> 4) << 6);
            }
        }
        const float dq = fp16ToFp32(blk.d), dmq = fp16ToFp32(blk.dmin);
        uint8_t q[kQKK];
        for (int j = 0; j < 8; ++j) {
            const float s = dq * float(L[j]), m = dmq * float(M[j]);
            for (int l = 0; l < 32; ++l) {
                const long v = s > 0 ? std::lround((x[j * 32 + l] + m) / s) : 0;
                q[j * 32 + l] = uint8_t(std::clamp(v, 0L, 15L));
            }
        }
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) blk.qs[c * 32 + l] = uint8_t(q[c * 64 + l] | (q[c * 64 + 32 + l] << 4));
        std::memcpy(dst + b * sizeof(BlockQ4K), &blk, sizeof blk);
    }
}

// Q6_K: per 16-value group, max|x| maps to 31 (values -32..31), the int8 group scales relative to the largest.
void quantQ6K(const float* src, uint8_t* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        const float* x = src + b * kQKK;
        float sc[16];
        for (int g = 0; g < 16; ++g) {
            float amax = 0.0f;
            for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[g * 16 + l]));
            sc[g] = amax / 31.0f;
        }
        const float maxSc = *std::max_element(sc, sc + 16);
        const float d = maxSc / 127.0f;
        BlockQ6K blk{};
        blk.d = fp32ToFp16(d);
        const float dq = fp16ToFp32(blk.d);
        uint8_t q[kQKK];
        for (int g = 0; g < 16; ++g) {
            blk.scales[g] = int8_t(std::min(127L, std::lround(d > 0 ? sc[g] / d : 0.0f)));
            const float s = dq * float(blk.scales[g]);
            for (int l = 0; l < 16; ++l) {
                const long v = s > 0 ? std::lround(x[g * 16 + l] / s) : 0;
                q[g * 16 + l] = uint8_t(std::clamp(v, -32L, 31L) + 32);
            }
        }
        // Inverse of dequantQ6K's layout: per 128-value half, ql holds low nibbles of values l and l+32 (low
        // nibble) and l+64, l+96 (high nibble); qh the top two bits of all four.
        for (int half = 0; half < 2; ++half) {
            const uint8_t* v = q + half * 128;
            uint8_t* ql = blk.ql + half * 64;
            uint8_t* qh = blk.qh + half * 32;
            for (int l = 0; l < 32; ++l) {
                ql[l] = uint8_t((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
                ql[l + 32] = uint8_t((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
                qh[l] = uint8_t((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
            }
        }
        std::memcpy(dst + b * sizeof(BlockQ6K), &blk, sizeof blk);
    }
}

// Converted bytes live behind keepAlive rather than in WeightMatrix::owned, so that copying a WeightMatrix
// (which copies `owned` but not the `data` pointer into it) can never leave a dangling pointer.
// An allocator whose value-less construct() leaves the element uninitialised: resize() then costs no zeroing pass
// (one thread touching every page) over storage that is written in full right after.
template <class T>
struct NoInitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = NoInitAllocator<U>;
    };
    NoInitAllocator() = default;
    template <class U>
    NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

struct OwnedStorage {
    std::vector<uint8_t, NoInitAllocator<uint8_t>> bytes;  // every user writes all of it
    std::vector<float> scales;
};

namespace {

// Runs fn(i0, i1) over [0, n) on up to every core, for the load-time work on a matrix of `bytes` (convertWeight,
// moveToHugePages, interleaveBlocks): a 9B checkpoint is 5-8 GB of it, and one thread left the others idle while
// conversions, page faults and byte shuffles took most of a load. Small matrices stay on the calling thread.
template <class Fn>
void forChunks(int64_t n, int64_t bytes, Fn fn) {
    constexpr int64_t kMinBytes = int64_t(4) << 20;
    splitAcrossThreads(n, bytes < kMinBytes ? 1 : std::min(ThreadPool::hardwareThreads(), 16), fn);
}

}  // namespace


void adoptStorage(WeightMatrix& w, std::shared_ptr<OwnedStorage> s) {
    w.data = s->bytes.data();
    w.rowScales = s->scales.empty() ? nullptr : s->scales.data();
    w.owned.clear();
    w.ownedScales.clear();
    w.keepAlive = std::move(s);
}

}  // namespace

void dequantizeRow(DType dtype, const uint8_t* src, float* dst, int64_t n) {
    switch (dtype) {
        case DType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case DType::F16: {
            const auto* h = reinterpret_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16ToFp32(h[i]);
            return;
        }
        case DType::BF16: {
            const auto* h = reinterpret_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16ToFp32(h[i]);
            return;
        }
        case DType::Q8_0: dequantQ8_0(src, dst, n); return;
        case DType::Q4_0: dequantQ4_0(src, dst, n); return;
        case DType::Q5_0: dequantQ5_0(src, dst, n); return;
        case DType::Q4_K: dequantQ4K(src, dst, n); return;
        case DType::Q6_K: dequantQ6K(src, dst, n); return;
        case DType::I8: {  // without its row scale: callers multiply by WeightMatrix::rowScales[row]
            const auto* q = reinterpret_cast<const int8_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = float(q[i]);
            return;
        }
        case DType::I32: {
            const auto* q = reinterpret_cast<const int32_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = float(q[i]);
            return;
        }
    }
}

void quantizeRow(DType dtype, const float* src, uint8_t* dst, int64_t n) {
    switch (dtype) {
        case DType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case DType::F16: {
            auto* h = reinterpret_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32ToFp16(src[i]);
            return;
        }
        case DType::BF16: {
            auto* h = reinterpret_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32ToBf16(src[i]);
            return;
        }
        case DType::Q8_0: quantQ8_0(src, dst, n); return;
        case DType::Q4_0: quantQ4_0(src, dst, n); return;
        case DType::Q5_0: quantQ5_0(src, dst, n); return;
        case DType::Q4_K: quantQ4K(src, dst, n); return;
        case DType::Q6_K: quantQ6K(src, dst, n); return;
        default: std::memset(dst, 0, size_t(dtypeRowBytes(dtype, n))); return;  // not encodable here
    }
}

Result<WeightMatrix> weightFromTensor(const TensorInfo& t, std::shared_ptr<void> keepAlive) {
    if (t.shape.empty() || t.shape.size() > 2)
        return makeError(t.file + ": tensor " + t.name + " has shape " + t.shapeString() + ", expected 1-D or 2-D");
    WeightMatrix w;
    w.name = t.name;
    w.dtype = t.dtype;
    w.rows = t.shape.size() == 2 ? t.shape[0] : 1;
    w.cols = t.shape.back();
    if (w.dtype == DType::I8 || w.dtype == DType::I32)
        return makeError(t.file + ": tensor " + t.name + " has type " + std::string(dtypeName(t.dtype)) +
                         ", which is not a weight type");
    if (w.cols % dtypeBlockSize(w.dtype) != 0)
        return makeError(t.file + ": tensor " + t.name + " has " + std::to_string(w.cols) +
                         " columns, not a multiple of the " + std::string(dtypeName(t.dtype)) + " block size");
    if (t.data == nullptr || t.numBytes < w.rows * w.rowBytes())
        return makeError(t.file + ": tensor " + t.name + " holds " + std::to_string(t.numBytes) + " bytes, expected " +
                         std::to_string(w.rows * w.rowBytes()));
    w.data = t.data;
    w.keepAlive = std::move(keepAlive);
    return w;
}

Result<WeightMatrix> convertWeight(const WeightMatrix& src, DType target) {
    if (target != DType::F32 && target != DType::F16 && target != DType::BF16 && target != DType::Q8_0 &&
        target != DType::Q4_0 && target != DType::Q5_0 && target != DType::Q4_K && target != DType::Q6_K &&
        target != DType::I8)
        return makeError("cannot convert " + src.name + " to " + std::string(dtypeName(target)));
    if (target == src.dtype) {
        WeightMatrix w;  // a view: shares the source's bytes and whatever keeps them alive
        w.name = src.name;
        w.dtype = src.dtype;
        w.rows = src.rows;
        w.cols = src.cols;
        w.data = src.data;
        w.rowScales = src.rowScales;
        w.keepAlive = src.keepAlive;
        if (!src.owned.empty() || !src.ownedScales.empty()) {  // storage owned by src dies with it: copy it
            auto s = std::make_shared<OwnedStorage>();
            s->bytes.assign(src.data, src.data + src.rows * src.rowBytes());
            if (src.rowScales) s->scales.assign(src.rowScales, src.rowScales + src.rows);
            adoptStorage(w, std::move(s));
        }
        return w;
    }
    if (src.cols % dtypeBlockSize(target) != 0)
        return makeError("cannot convert " + src.name + " to " + std::string(dtypeName(target)) + ": " +
                         std::to_string(src.cols) + " columns is not a multiple of the block size");
    WeightMatrix w;
    w.name = src.name;
    w.dtype = target;
    w.rows = src.rows;
    w.cols = src.cols;
    auto storage = std::make_shared<OwnedStorage>();
    storage->bytes.resize(size_t(w.rows * w.rowBytes()));
    if (target == DType::I8) storage->scales.resize(size_t(w.rows));
    // Rows are independent: every core converts its share (each with its own row buffer).
    forChunks(src.rows, w.rows * w.rowBytes(), [&](int64_t r0, int64_t r1) {
        std::vector<float> row(size_t(src.cols));
        for (int64_t r = r0; r < r1; ++r) {
            dequantizeRow(src.dtype, src.data + r * src.rowBytes(), row.data(), src.cols);
            if (src.dtype == DType::I8 && src.rowScales)
                for (float& v : row) v *= src.rowScales[r];
            uint8_t* out = storage->bytes.data() + r * w.rowBytes();
            if (target == DType::I8) {
                float amax = 0.0f;
                for (float v : row) amax = std::max(amax, std::fabs(v));
                const float scale = amax / 127.0f;
                const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
                for (int64_t i = 0; i < src.cols; ++i) out[i] = uint8_t(int8_t(std::lround(row[size_t(i)] * inv)));
                storage->scales[size_t(r)] = scale;
            } else {
                quantizeRow(target, row.data(), out, src.cols);
            }
        }
    });
    adoptStorage(w, std::move(storage));
    return w;
}


void permuteRows(WeightMatrix& w, const std::vector<int64_t>& perm) {
    const int64_t rb = w.rowBytes();
    auto s = std::make_shared<OwnedStorage>();
    s->bytes.resize(size_t(w.rows * rb));
    if (w.dtype == DType::I8 && w.rowScales) s->scales.resize(size_t(w.rows));
    for (int64_t i = 0; i < w.rows; ++i) {
        std::memcpy(s->bytes.data() + i * rb, w.data + perm[size_t(i)] * rb, size_t(rb));
        if (!s->scales.empty()) s->scales[size_t(i)] = w.rowScales[perm[size_t(i)]];
    }
    // The source may be a read-only mapping, so the permuted rows always end up owned.
    adoptStorage(w, std::move(s));
}

void moveToHugePages(WeightMatrix& w) {
    const int64_t dataBytes = w.rows * w.rowBytes();
    const int64_t scaleBytes = w.rowScales ? w.rows * int64_t(sizeof(float)) : 0;
    auto buf = HugeBuffer::allocate(size_t(dataBytes + scaleBytes + 64));
    if (!buf) return;
    constexpr int64_t kChunkBytes = int64_t(1) << 20;
    const int64_t chunks = (dataBytes + kChunkBytes - 1) / kChunkBytes;
    uint8_t* to = buf->data();
    const uint8_t* from = w.data;
    forChunks(chunks, dataBytes, [=](int64_t c0, int64_t c1) {
        const int64_t b0 = c0 * kChunkBytes, b1 = std::min(dataBytes, c1 * kChunkBytes);
        if (b1 > b0) std::memcpy(to + b0, from + b0, size_t(b1 - b0));
    });
    const int64_t scaleOffset = (dataBytes + 63) / 64 * 64;
    if (scaleBytes) std::memcpy(buf->data() + scaleOffset, w.rowScales, size_t(scaleBytes));
    w.data = buf->data();
    w.rowScales = scaleBytes ? reinterpret_cast<const float*>(buf->data() + scaleOffset) : nullptr;
    std::vector<uint8_t>().swap(w.owned);  // clear() would keep the old copy's capacity allocated
    std::vector<float>().swap(w.ownedScales);
    w.keepAlive = std::move(buf);
}

bool canInterleave(const WeightMatrix& w) {
    const int64_t unit = w.dtype == DType::Q4_K || w.dtype == DType::Q6_K ? 256 : 64;
    return (w.dtype == DType::Q8_0 || w.dtype == DType::Q4_0 || w.dtype == DType::Q5_0 || w.dtype == DType::Q4_K ||
            w.dtype == DType::Q6_K) &&
           !w.interleaved &&
           w.rows > 0 && w.rows % 16 == 0 && w.cols > 0 && w.cols % unit == 0;
}

void interleaveBlocks(WeightMatrix& w, bool hugePages) {
    if (!canInterleave(w)) return;
    const int64_t rb = w.rowBytes();  // 16 rows of a pair of blocks: 16 · 68 = 1,088 bytes (Q8_0), 16 · 36 (Q4_0)
    const int64_t bytes = w.rows * rb;
    std::shared_ptr<void> keep;
    uint8_t* dst = nullptr;
    if (hugePages) {
        if (auto buf = HugeBuffer::allocate(size_t(bytes))) {
            dst = buf->data();
            keep = std::move(buf);
        }
    }
    if (!dst) {
        // 64-byte aligned, so that every one of the kernel's loads is a single cache line. Not zeroed: every byte
        // is written below.
        std::shared_ptr<uint8_t[]> v(new uint8_t[size_t(bytes + 64)]);
        dst = v.get() + (64 - reinterpret_cast<uintptr_t>(v.get()) % 64) % 64;
        keep = std::move(v);
    }
    const int64_t pairs = w.cols / 64, pb = interleavedPairBytes(w.dtype);
    const bool q4 = w.dtype == DType::Q4_0;
    // Groups of 16 rows are independent: each writes its own 16 rows' bytes.
    forChunks(w.rows / 16, bytes, [&](int64_t g0, int64_t g1) {
        for (int64_t g = g0; g < g1 && w.dtype == DType::Q4_K; ++g) {
            // Per super-block: d and dmin of the 16 rows, their 12 scale bytes transposed (byte b of row i at
            // 64 + 16·b + i), then per 32-byte chunk of nibbles 8 lines (row i's bytes 4l..4l+3 at 64·l + 4·i).
            const uint8_t* src = w.data + g * 16 * rb;
            uint8_t* out = dst + g * 16 * rb;
            for (int64_t sb = 0; sb < w.cols / 256; ++sb, out += kInterleavedQ4KBytes) {
                for (int i = 0; i < 16; ++i) {
                    const uint8_t* block = src + i * rb + sb * 144;
                    std::memcpy(out + 2 * i, block, 2);
                    std::memcpy(out + 32 + 2 * i, block + 2, 2);
                    for (int b = 0; b < 12; ++b) out[64 + 16 * b + i] = block[4 + b];
                    for (int j = 0; j < 4; ++j)
                        for (int l = 0; l < 8; ++l)
                            std::memcpy(out + 256 + 512 * j + 64 * l + 4 * i, block + 16 + 32 * j + 4 * l, 4);
                }
            }
        }
        for (int64_t g = g0; g < g1 && w.dtype == DType::Q6_K; ++g) {
            // Per super-block: d of the 16 rows, their 16 scales transposed (scale s of row i at 32 + 16·s + i), then
            // per 128-value half its two 32-byte chunks of low bits and its 32 bytes of high bit pairs, 8 lines each
            // (line l = row bytes 4l..4l+3).
            const uint8_t* src = w.data + g * 16 * rb;
            uint8_t* out = dst + g * 16 * rb;
            for (int64_t sb = 0; sb < w.cols / 256; ++sb, out += kInterleavedQ6KBytes) {
                for (int i = 0; i < 16; ++i) {
                    const uint8_t* block = src + i * rb + sb * 210;  // ql[128], qh[64], scales[16], d
                    std::memcpy(out + 2 * i, block + 208, 2);
                    for (int s = 0; s < 16; ++s) out[32 + 16 * s + i] = block[192 + s];
                    for (int n = 0; n < 2; ++n) {
                        uint8_t* half = out + 288 + 1536 * n;
                        for (int l = 0; l < 8; ++l) {
                            std::memcpy(half + 64 * l + 4 * i, block + 64 * n + 4 * l, 4);
                            std::memcpy(half + 512 + 64 * l + 4 * i, block + 64 * n + 32 + 4 * l, 4);
                            std::memcpy(half + 1024 + 64 * l + 4 * i, block + 128 + 32 * n + 4 * l, 4);
                        }
                    }
                }
            }
        }
        for (int64_t g = g0; g < g1 && w.dtype != DType::Q4_K && w.dtype != DType::Q6_K; ++g) {
            const uint8_t* src = w.data + g * 16 * rb;
            uint8_t* out = dst + g * 16 * rb;
            for (int64_t p = 0; p < pairs; ++p, out += pb) {
                for (int i = 0; i < 16; ++i) {
                    const uint8_t* row = src + i * rb + p * 2 * (q4 ? 18 : 34);
                    if (w.dtype == DType::Q5_0) {  // d, qh[4], qs[16] a block
                        for (int h = 0; h < 2; ++h) {
                            const uint8_t* block = src + i * rb + (2 * p + h) * 22;
                            std::memcpy(out + 32 * h + 2 * i, block, 2);
                            std::memcpy(out + 64 + 320 * h + 4 * i, block + 2, 4);
                            for (int j = 0; j < 4; ++j)
                                std::memcpy(out + 128 + 320 * h + 64 * j + 4 * i, block + 6 + 4 * j, 4);
                        }
                        continue;
                    }
                    for (int h = 0; h < 2; ++h) {
                        const uint8_t* block = row + h * (q4 ? 18 : 34);
                        std::memcpy(out + 32 * h + 2 * i, block, 2);
                        for (int j = 0; j < (q4 ? 4 : 8); ++j) {
                            uint32_t q;
                            std::memcpy(&q, block + 2 + 4 * j, 4);
                            if (!q4) q ^= 0x80808080u;
                            std::memcpy(out + 64 + (q4 ? 256 : 512) * h + 64 * j + 4 * i, &q, 4);
                        }
                    }
                }
            }
        }
    });
    w.data = dst;
    std::vector<uint8_t>().swap(w.owned);
    w.keepAlive = std::move(keep);
    w.interleaved = true;
}

void dequantizeMatrixRow(const WeightMatrix& w, int64_t r, float* dst) {
    const int64_t rb = w.rowBytes();
    if (!w.interleaved) {
        dequantizeRow(w.dtype, w.data + r * rb, dst, w.cols);
        if (w.dtype == DType::I8 && w.rowScales)
            for (int64_t k = 0; k < w.cols; ++k) dst[k] *= w.rowScales[r];
        return;
    }
    const uint8_t* g = w.data + r / 16 * 16 * rb;
    const int i = int(r % 16);
    if (w.dtype == DType::Q4_K) {
        for (int64_t sb = 0; sb < w.cols / 256; ++sb) {
            const uint8_t* blk = g + sb * kInterleavedQ4KBytes;
            uint16_t bits;
            std::memcpy(&bits, blk + 2 * i, 2);
            const float d = fp16ToFp32(bits);
            std::memcpy(&bits, blk + 32 + 2 * i, 2);
            const float dmin = fp16ToFp32(bits);
            uint8_t scales[12];
            for (int b = 0; b < 12; ++b) scales[b] = blk[64 + 16 * b + i];
            for (int s = 0; s < 8; ++s) {
                uint8_t sc, mn;
                scaleMinK4(s, scales, sc, mn);
                const float ds = d * float(sc), dm = dmin * float(mn);
                for (int k = 0; k < 32; ++k) {
                    const uint8_t q = blk[256 + 512 * (s / 2) + 64 * (k / 4) + 4 * i + k % 4];
                    dst[sb * 256 + 32 * s + k] = ds * float(s % 2 ? q >> 4 : q & 15) - dm;
                }
            }
        }
        return;
    }
    if (w.dtype == DType::Q6_K) {
        for (int64_t sb = 0; sb < w.cols / 256; ++sb) {
            const uint8_t* blk = g + sb * kInterleavedQ6KBytes;
            uint16_t bits;
            std::memcpy(&bits, blk + 2 * i, 2);
            const float d = fp16ToFp32(bits);
            for (int s = 0; s < 8; ++s) {  // sub-block s: half n, low (k < 2) or high nibbles of chunk k % 2
                const int n = s / 4, k = s % 4;
                const uint8_t* half = blk + 288 + 1536 * n;
                for (int v = 0; v < 32; ++v) {
                    const int at = 64 * (v / 4) + 4 * i + v % 4;
                    const int lo = (half[512 * (k % 2) + at] >> (4 * (k / 2))) & 0xF;
                    const int hi = (half[1024 + at] >> (2 * k)) & 3;
                    const int8_t sc = int8_t(blk[32 + 16 * (2 * s + v / 16) + i]);
                    dst[sb * 256 + 32 * s + v] = d * float(sc) * float((lo | (hi << 4)) - 32);
                }
            }
        }
        return;
    }
    const int64_t pb = interleavedPairBytes(w.dtype);
    for (int64_t p = 0; p < w.cols / 64; ++p) {
        const uint8_t* blk = g + p * pb;
        for (int h = 0; h < 2; ++h) {
            uint16_t bits;
            std::memcpy(&bits, blk + 32 * h + 2 * i, 2);
            const float d = fp16ToFp32(bits);
            float* out = dst + p * 64 + h * 32;
            if (w.dtype == DType::Q5_0) {
                uint32_t qh;
                std::memcpy(&qh, blk + 64 + 320 * h + 4 * i, 4);
                for (int j = 0; j < 4; ++j)
                    for (int b = 0; b < 4; ++b) {
                        const uint8_t q = blk[128 + 320 * h + 64 * j + 4 * i + b];
                        const int k = 4 * j + b;
                        out[k] = d * float((int(q & 15) | int(((qh >> k) & 1u) << 4)) - 16);
                        out[16 + k] = d * float((int(q >> 4) | int(((qh >> (k + 16)) & 1u) << 4)) - 16);
                    }
                continue;
            }
            if (w.dtype == DType::Q4_0) {
                for (int j = 0; j < 4; ++j)
                    for (int b = 0; b < 4; ++b) {
                        const uint8_t q = blk[64 + 256 * h + 64 * j + 4 * i + b];
                        out[4 * j + b] = d * float(int(q & 15) - 8);
                        out[16 + 4 * j + b] = d * float(int(q >> 4) - 8);
                    }
                continue;
            }
            for (int j = 0; j < 8; ++j)
                for (int b = 0; b < 4; ++b)
                    out[4 * j + b] = d * float(int8_t(uint8_t(blk[64 + 512 * h + 64 * j + 4 * i + b] ^ 0x80u)));
        }
    }
}

Result<WeightMatrix> sliceWeight(const WeightMatrix& w, int64_t rowBegin, int64_t rowEnd, int64_t colBegin,
                                 int64_t colEnd) {
    const int64_t block = dtypeBlockSize(w.dtype);
    if (w.interleaved)
        return makeError(w.name + ": an interleaved " + std::string(dtypeName(w.dtype)) +
                         " matrix (one CPU device's layout) cannot be split");
    if (rowBegin < 0 || rowEnd > w.rows || rowBegin >= rowEnd || colBegin < 0 || colEnd > w.cols || colBegin >= colEnd)
        return makeError("slice [" + std::to_string(rowBegin) + ", " + std::to_string(rowEnd) + ") x [" +
                         std::to_string(colBegin) + ", " + std::to_string(colEnd) + ") is outside the " +
                         std::to_string(w.rows) + " x " + std::to_string(w.cols) + " matrix");
    if (colBegin % block != 0 || (colEnd - colBegin) % block != 0)
        return makeError("cannot split columns at " + std::to_string(colBegin) + ".." + std::to_string(colEnd) + " of a " +
                         std::string(dtypeName(w.dtype)) + " matrix (blocks of " + std::to_string(block) + ")");
    WeightMatrix out;
    out.name = w.name;
    out.dtype = w.dtype;
    out.rows = rowEnd - rowBegin;
    out.cols = colEnd - colBegin;
    const int64_t srcRb = w.rowBytes(), rb = out.rowBytes(), off = dtypeRowBytes(w.dtype, colBegin);
    auto s = std::make_shared<OwnedStorage>();
    s->bytes.resize(size_t(out.rows * rb));
    for (int64_t i = 0; i < out.rows; ++i)
        std::memcpy(s->bytes.data() + i * rb, w.data + (rowBegin + i) * srcRb + off, size_t(rb));
    if (w.dtype == DType::I8 && w.rowScales) s->scales.assign(w.rowScales + rowBegin, w.rowScales + rowEnd);
    adoptStorage(out, std::move(s));
    return out;
}

}  // namespace wb
