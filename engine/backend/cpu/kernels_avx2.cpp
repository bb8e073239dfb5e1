// AVX2 + F16C + FMA kernels, the path for x86 CPUs without AVX-512 VNNI. Same dot-product tiling as the AVX-512
// file with 16 ymm registers (tiles of 4 rows × 2 tokens for floats); int8 dot products use the maddubs sign
// trick (|w| as unsigned, sign moved onto x) because AVX2 has no signed×signed byte multiply.
#include <immintrin.h>

#include <cmath>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#ifdef __clang__  // clang ignores GCC's target pragma (the fuzz build, docs/FUZZING.md): the same ISA its own way
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#endif

namespace wb::cpu::detail {
namespace {

constexpr int kRm = 4;
constexpr int kRn = 2;
constexpr int kRmInt = 2;
constexpr int kRnInt = 3;
constexpr int64_t kActBlockBytes = 256 * 1024;

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

struct LoadF32 {
    using T = float;
    static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
    static float scalar(const float* p) { return *p; }
};

struct LoadF16 {
    using T = uint16_t;
    static __m256 load(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static float scalar(const uint16_t* p) { return fp16ToFp32(*p); }
};

struct LoadBF16 {
    using T = uint16_t;
    static __m256 load(const uint16_t* p) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float scalar(const uint16_t* p) { return bf16ToFp32(*p); }
};

template <class L, int RM, int RN>
void tileFloat(const typename L::T* w, int64_t ldw, const float* x, int64_t ldx, int64_t K, float* y, int64_t ldy,
               bool accumulate = false) {
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) wv[i] = L::load(w + i * ldw + k);
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m256 xv = _mm256_loadu_ps(x + j * ldx + k);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) {
            float s = hsum(acc[i][j]);
            for (int64_t kk = k; kk < K; ++kk) s += L::scalar(w + i * ldw + kk) * x[j * ldx + kk];
            y[j * ldy + i] = accumulate ? y[j * ldy + i] + s : s;
        }
}

int64_t tokenBlock(int64_t bytesPerToken, int64_t m, int rn) {
    int64_t tb = std::max<int64_t>(1, kActBlockBytes / std::max<int64_t>(1, bytesPerToken)) / rn * rn;
    return std::clamp<int64_t>(tb, rn, std::max<int64_t>(m, 1));
}

template <class L>
void matmulFloatRows(const typename L::T* wbase, int64_t ldw, const float* x, int64_t m, int64_t K, float* y,
                     int64_t ldy, int64_t r0, int64_t r1) {
    if (m == 1) {
        // One row at a time with a software prefetch, as in the AVX-512 file (rows 4 KiB apart alias in L1).
        for (int64_t r = r0; r < r1; ++r) {
            const typename L::T* w = wbase + r * ldw;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
                   a3 = _mm256_setzero_ps();
            constexpr int64_t kAhead = 8192 / int64_t(sizeof(typename L::T));
            int64_t k = 0;
            for (; k + 32 <= K; k += 32) {
                _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead), _MM_HINT_T0);
                if constexpr (sizeof(typename L::T) == 4)
                    _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead) + 64, _MM_HINT_T0);
                a0 = _mm256_fmadd_ps(L::load(w + k), _mm256_loadu_ps(x + k), a0);
                a1 = _mm256_fmadd_ps(L::load(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
                a2 = _mm256_fmadd_ps(L::load(w + k + 16), _mm256_loadu_ps(x + k + 16), a2);
                a3 = _mm256_fmadd_ps(L::load(w + k + 24), _mm256_loadu_ps(x + k + 24), a3);
            }
            float acc = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
            for (; k < K; ++k) acc += L::scalar(w + k) * x[k];
            y[r] = acc;
        }
        return;
    }
    // GotoBLAS order as in the AVX-512 file: k slices keep the activation tile in L1, weight panels stay in L2.
    const int64_t kc = std::min<int64_t>(K, 1024);
    const int64_t panelRows = std::max<int64_t>(kRm, (512 * 1024) / (kc * int64_t(sizeof(typename L::T))) / kRm * kRm);
    for (int64_t rb = r0; rb < r1; rb += panelRows) {
        const int64_t rbEnd = std::min(r1, rb + panelRows);
        for (int64_t kb = 0; kb < K; kb += kc) {
            const int64_t kLen = std::min(kc, K - kb);
            const bool acc = kb > 0;
            for (int64_t t = 0; t < m; t += kRn) {
                const bool pair = t + kRn <= m;
                const float* xt = x + t * K + kb;
                float* yt = y + t * ldy;
                int64_t r = rb;
                for (; r + kRm <= rbEnd; r += kRm) {
                    if (pair) tileFloat<L, kRm, kRn>(wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, acc);
                    else tileFloat<L, kRm, 1>(wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, acc);
                }
                for (; r < rbEnd; ++r) {
                    if (pair) tileFloat<L, 1, kRn>(wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, acc);
                    else tileFloat<L, 1, 1>(wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, acc);
                }
            }
        }
    }
}

template <class L>
void matmulFloat(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    matmulFloatRows<L>(reinterpret_cast<const typename L::T*>(w.data), w.cols, job.x, job.m, w.cols, job.y, w.rows,
                       r0, r1);
}

void matmulPanel(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t K = w.cols;
    constexpr int64_t kPanelRows = 8;
    thread_local std::vector<float> panel;
    if (int64_t(panel.size()) < kPanelRows * K) panel.resize(size_t(kPanelRows * K));
    for (int64_t r = r0; r < r1; r += kPanelRows) {
        const int64_t nr = std::min<int64_t>(kPanelRows, r1 - r);
        for (int64_t i = 0; i < nr; ++i) dequantizeRow(w.dtype, w.data + (r + i) * w.rowBytes(), panel.data() + i * K, K);
        matmulFloatRows<LoadF32>(panel.data(), K, job.x, job.m, K, job.y + r, w.rows, 0, nr);
    }
}

// --- Integer paths --------------------------------------------------------------------------------------------

// Σ over 32 bytes of w·x as 8 int32 lanes: maddubs needs an unsigned operand, so feed |w| and x·sign(w).
inline __m256i dotI8(__m256i absW, __m256i signW, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(absW, _mm256_sign_epi8(x, signW));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

inline uint16_t loadU16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

template <int RM, int RN>
void tileQ8(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nb, float* y, int64_t ldy) {
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i wv[RM], wa[RM];
        float wd[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const uint8_t* p = w + i * ldw + b * 34;
            wv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
            wa[i] = _mm256_sign_epi8(wv[i], wv[i]);
            wd[i] = _cvtsh_ss(loadU16(p));
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa.q + (t + j) * qa.ldq + b * 32));
            const float xd = qa.d[(t + j) * qa.ldb + b];
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dotI8(wa[i], wv[i], xv)), _mm256_set1_ps(wd[i] * xd),
                                            acc[i][j]);
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) y[j * ldy + i] = hsum(acc[i][j]);
}

template <int RM, int RN>
void tileI8(const int8_t* w, int64_t ldw, const float* rowScale, const QuantizedActs& qa, int64_t t, int64_t K,
            float* y, int64_t ldy) {
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256i wv[RM], wa[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            wv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * ldw + k));
            wa[i] = _mm256_sign_epi8(wv[i], wv[i]);
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa.q + (t + j) * qa.ldq + k));
            const __m256 xd = _mm256_set1_ps(qa.d[(t + j) * qa.ldb + k / 32]);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dotI8(wa[i], wv[i], xv)), xd, acc[i][j]);
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) {
            float s = hsum(acc[i][j]);
            if (k < K) {  // partial last block
                int32_t si = 0;
                for (int64_t kk = k; kk < K; ++kk) si += int32_t(w[i * ldw + kk]) * int32_t(qa.q[(t + j) * qa.ldq + kk]);
                s += float(si) * qa.d[(t + j) * qa.ldb + k / 32];
            }
            y[j * ldy + i] = s * rowScale[i];
        }
}

template <int RM, int RN>
struct Q8Tile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileQ8<RM, RN>(w.data + r * w.rowBytes(), w.rowBytes(), job.qa, t, w.cols / 32, y, ldy);
    }
};

template <int RM, int RN>
struct I8Tile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileI8<RM, RN>(reinterpret_cast<const int8_t*>(w.data) + r * w.cols, w.cols, w.rowScales + r, job.qa, t,
                       w.cols, y, ldy);
    }
};

template <template <int, int> class Tile>
void matmulIntRows(const MatmulJob& job, int64_t r0, int64_t r1) {
    const int64_t m = job.m;
    float* y = job.y;
    const int64_t ldy = job.w->rows;
    if (m == 1) {
        for (int64_t r = r0; r < r1; ++r) {
            // One row at a time (see the float path); prefetch the whole row ahead in 64-byte steps.
            const int64_t rowBytes = job.w->dtype == DType::I8 ? job.w->cols : job.w->rowBytes();
            const uint8_t* next = job.w->data + (r + 1) * rowBytes;
            for (int64_t o = 0; r + 1 < r1 && o < rowBytes; o += 64)
                _mm_prefetch(reinterpret_cast<const char*>(next + o), _MM_HINT_T0);
            Tile<1, 1>::run(job, r, 0, y + r, ldy);
        }
        return;
    }
    const int64_t tb = tokenBlock(job.qa.ldq + 8 * job.qa.ldb, m, kRnInt);
    for (int64_t t0 = 0; t0 < m; t0 += tb) {
        const int64_t t1 = std::min(m, t0 + tb);
        int64_t r = r0;
        for (; r + kRmInt <= r1; r += kRmInt) {
            int64_t t = t0;
            for (; t + kRnInt <= t1; t += kRnInt) Tile<kRmInt, kRnInt>::run(job, r, t, y + t * ldy + r, ldy);
            for (; t < t1; ++t) Tile<kRmInt, 1>::run(job, r, t, y + t * ldy + r, ldy);
        }
        for (; r < r1; ++r)
            for (int64_t t = t0; t < t1; ++t) Tile<1, 1>::run(job, r, t, y + t * ldy + r, ldy);
    }
}

void matmulQ8_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q8Tile>(job, r0, r1); }
void matmulI8(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<I8Tile>(job, r0, r1); }

// --- 4-bit, 5-bit and K-quant blocks --------------------------------------------------------------------------
//
// The weights' integer values are unsigned here (0..15, 0..31, 0..63), so maddubs takes them as they are; each
// 32-value step gives 8 int32 lanes of 4 values, scaled per lane in f32. The offsets (Q4_0 -8, Q5_0 -16, Q6_K -32)
// come back through the activations' sums and Q4_K's mins through their dequantized block sums, as in the
// AVX-512 file.

inline __m256i dotU8(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

inline uint32_t loadU32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// The 32 bits of a Q5_0 block's qh as 32 bytes of 0x10 or 0.
inline __m256i highBits5(uint32_t qh) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)), shuf);  // byte i = qh byte i/8
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(0x10));
}

template <int kBits, int RM, int RN>
void tileQ45(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nb, float* y, int64_t ldy) {
    constexpr int64_t kBB = kBits == 4 ? 18 : 22;
    constexpr int kQs = kBits == 4 ? 2 : 6;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i wv[RM];
        float wd[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const uint8_t* p = w + i * ldw + b * kBB;
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kQs));
            wv[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
            if constexpr (kBits == 5) wv[i] = _mm256_or_si256(wv[i], highBits5(loadU32(p + 2)));
            wd[i] = _cvtsh_ss(loadU16(p));
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa.q + (t + j) * qa.ldq + b * 32));
            const float xd = qa.d[(t + j) * qa.ldb + b];
            // Per lane: the offset times the lane's share of Σx (bias = -16·Σx per lane of 8).
            const __m256i off = _mm256_set1_epi32(qa.bias[(t + j) * qa.ldb + b] / (kBits == 4 ? 16 : 8));
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(dotU8(wv[i], xv), off)),
                                            _mm256_set1_ps(wd[i] * xd), acc[i][j]);
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) y[j * ldy + i] = hsum(acc[i][j]);
}

template <int RM, int RN>
void tileQ4K(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nsb, float* y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        alignas(32) float scl[RM][8];
        __m256 mins[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const uint8_t* p = w + i * ldw + sb * 144;
            const uint32_t w0 = loadU32(p + 4), w1 = loadU32(p + 8), w2 = loadU32(p + 12);
            const uint32_t sLo = w0 & 0x3f3f3f3fu, mLo = w1 & 0x3f3f3f3fu;
            const uint32_t sHi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
            const uint32_t mHi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
            const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, int(sHi), int(sLo))));
            const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, int(mHi), int(mLo))));
            _mm256_store_ps(scl[i], _mm256_mul_ps(sc, _mm256_set1_ps(_cvtsh_ss(loadU16(p)))));
            mins[i] = _mm256_mul_ps(mn, _mm256_set1_ps(_cvtsh_ss(loadU16(p + 2))));
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m256 xs = _mm256_loadu_ps(qa.xsum + (t + j) * qa.ldb + sb * 8);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][j] = _mm256_fnmadd_ps(mins[i], xs, acc[i][j]);
        }
        for (int c = 0; c < 4; ++c) {
            __m256i lo[RM], hi[RM];
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) {
                const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * ldw + sb * 144 + 16 + c * 32));
                lo[i] = _mm256_and_si256(q, m4);
                hi[i] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
#pragma GCC unroll 8
            for (int j = 0; j < RN; ++j) {
                const int64_t b = sb * 8 + c * 2;
                const int8_t* xq = qa.q + (t + j) * qa.ldq + b * 32;
                const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
                const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32));
                const float xd0 = qa.d[(t + j) * qa.ldb + b], xd1 = qa.d[(t + j) * qa.ldb + b + 1];
#pragma GCC unroll 8
                for (int i = 0; i < RM; ++i) {
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dotU8(lo[i], x0)), _mm256_set1_ps(scl[i][2 * c] * xd0), acc[i][j]);
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dotU8(hi[i], x1)), _mm256_set1_ps(scl[i][2 * c + 1] * xd1), acc[i][j]);
                }
            }
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) y[j * ldy + i] = hsum(acc[i][j]);
}

template <int RM, int RN>
void tileQ6K(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nsb, float* y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    const __m256i pairIdx = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        for (int half = 0; half < 2; ++half) {
            // Chunk c of the half (32 values): ql bytes (c & 1)·32.., nibble c / 2, qh bits 2c, 2c+1.
            for (int c = 0; c < 4; ++c) {
                __m256i wv[RM];
                __m256 ws[RM];
#pragma GCC unroll 8
                for (int i = 0; i < RM; ++i) {
                    const uint8_t* p = w + i * ldw + sb * 210;
                    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + half * 64 + (c & 1) * 32));
                    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + half * 32));
                    const __m256i lo = _mm256_and_si256(c < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
                    const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m2);
                    wv[i] = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4));
                    const auto* sc = reinterpret_cast<const int8_t*>(p + 192 + half * 8 + c * 2);
                    const float d = _cvtsh_ss(loadU16(p + 208));
                    ws[i] = _mm256_set_m128(_mm_set1_ps(d * float(sc[1])), _mm_set1_ps(d * float(sc[0])));
                }
#pragma GCC unroll 8
                for (int j = 0; j < RN; ++j) {
                    const int64_t v0 = sb * 256 + half * 128 + c * 32;
                    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa.q + (t + j) * qa.ldq + v0));
                    const __m256 xd = _mm256_set1_ps(qa.d[(t + j) * qa.ldb + v0 / 32]);
                    const __m256i off = _mm256_permutevar8x32_epi32(
                        _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qa.bias16 + (t + j) * (qa.ldq / 16) + v0 / 16))),
                        pairIdx);
#pragma GCC unroll 8
                    for (int i = 0; i < RM; ++i)
                        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(dotU8(wv[i], xv), off)),
                                                    _mm256_mul_ps(ws[i], xd), acc[i][j]);
                }
            }
        }
    }
    for (int j = 0; j < RN; ++j)
        for (int i = 0; i < RM; ++i) y[j * ldy + i] = hsum(acc[i][j]);
}

template <int RM, int RN>
struct Q4_0Tile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileQ45<4, RM, RN>(w.data + r * w.rowBytes(), w.rowBytes(), job.qa, t, w.cols / 32, y, ldy);
    }
};

template <int RM, int RN>
struct Q5_0Tile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileQ45<5, RM, RN>(w.data + r * w.rowBytes(), w.rowBytes(), job.qa, t, w.cols / 32, y, ldy);
    }
};

template <int RM, int RN>
struct Q4KTile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileQ4K<RM, RN>(w.data + r * w.rowBytes(), w.rowBytes(), job.qa, t, w.cols / 256, y, ldy);
    }
};

template <int RM, int RN>
struct Q6KTile {
    static void run(const MatmulJob& job, int64_t r, int64_t t, float* y, int64_t ldy) {
        const WeightMatrix& w = *job.w;
        tileQ6K<RM, RN>(w.data + r * w.rowBytes(), w.rowBytes(), job.qa, t, w.cols / 256, y, ldy);
    }
};

void matmulQ4_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q4_0Tile>(job, r0, r1); }
void matmulQ5_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q5_0Tile>(job, r0, r1); }
void matmulQ4_K(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q4KTile>(job, r0, r1); }
void matmulQ6_K(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q6KTile>(job, r0, r1); }

float dotAvx2(const float* a, const float* b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpyAvx2(float a, const float* x, float* y, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

// exp as in kernels_avx512.cpp; 2^n built in the exponent bits (n >= -126 after the clamp).
inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365447505531f));
    // Cody-Waite: r = x - n ln2 with ln2 in two parts, so r is exact to float rounding whatever |x|.
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.3888888888888889e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3333333333333333e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1666666666666667e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666666666666667e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

float expShiftSumAvx2(float* x, float shift, int64_t n) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float sum = 0;
    for (float v : lanes) sum += v;
    for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
    return sum;
}

// Lane i of the result: the sum of v[i]'s 8 lanes.
inline __m256 sum8(const __m256* v) {
    const __m256 h0 = _mm256_hadd_ps(v[0], v[1]), h1 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 h2 = _mm256_hadd_ps(v[4], v[5]), h3 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 h01 = _mm256_hadd_ps(h0, h1), h23 = _mm256_hadd_ps(h2, h3);  // [v0..v3 low halves | high halves]
    return _mm256_add_ps(_mm256_permute2f128_ps(h01, h23, 0x20), _mm256_permute2f128_ps(h01, h23, 0x31));
}

inline __m256i tailMask8(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void groupScoresAvx2(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd, float scale,
                     float* s, int64_t ls) {
    const __m256 vscale = _mm256_set1_ps(scale);
    const int64_t full = hd / 8 * 8;
    const __m256i tail = tailMask8(hd - full);
    for (int64_t p0 = 0; p0 < n; p0 += 8) {
        const int64_t m = std::min<int64_t>(8, n - p0);
        const float* rows[8];
        for (int p = 0; p < 8; ++p) rows[p] = k + (p0 + (p < m ? p : 0)) * kStride;
        for (int64_t g = 0; g < G; ++g) {
            const float* qg = q + g * hd;
            __m256 acc[8];
#pragma GCC unroll 8
            for (int p = 0; p < 8; ++p) acc[p] = _mm256_setzero_ps();
            for (int64_t c = 0; c < full; c += 8) {
                const __m256 qc = _mm256_loadu_ps(qg + c);
#pragma GCC unroll 8
                for (int p = 0; p < 8; ++p) acc[p] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(rows[p] + c), acc[p]);
            }
            if (full < hd) {
                const __m256 qc = _mm256_maskload_ps(qg + full, tail);
#pragma GCC unroll 8
                for (int p = 0; p < 8; ++p) acc[p] = _mm256_fmadd_ps(qc, _mm256_maskload_ps(rows[p] + full, tail), acc[p]);
            }
            const __m256 r = _mm256_mul_ps(sum8(acc), vscale);
            if (m == 8) {
                _mm256_storeu_ps(s + g * ls + p0, r);
            } else {
                _mm256_maskstore_ps(s + g * ls + p0, tailMask8(m), r);
            }
        }
    }
}

void groupAccumAvx2(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n, int64_t hd,
                    float* out) {
    // Up to 8 heads' 8-column slices of out in registers; each value slice is loaded once for all of them.
    for (int64_t g0 = 0; g0 < G; g0 += 8) {
        const int64_t gb = std::min<int64_t>(8, G - g0);
        for (int64_t c = 0; c < hd; c += 8) {
            const __m256i m = tailMask8(std::min<int64_t>(8, hd - c));
            __m256 acc[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j)
                acc[j] = j < gb ? _mm256_maskload_ps(out + (g0 + j) * hd + c, m) : _mm256_setzero_ps();
            for (int64_t p = 0; p < n; ++p) {
                const __m256 x = _mm256_maskload_ps(v + p * vStride + c, m);
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j)
                    if (j < gb) acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + (g0 + j) * ls + p), x, acc[j]);
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j)
                if (j < gb) _mm256_maskstore_ps(out + (g0 + j) * hd + c, m, acc[j]);
        }
    }
}

}  // namespace

const KernelTable& avx2Kernels() {
    static const KernelTable table = [] {
        KernelTable t;
        t.matmulF32 = matmulFloat<LoadF32>;
        t.matmulF16 = matmulFloat<LoadF16>;
        t.matmulBF16 = matmulFloat<LoadBF16>;
        t.matmulQ8_0 = matmulQ8_0;
        t.matmulI8 = matmulI8;
        t.matmulQ4_0 = matmulQ4_0;
        t.matmulQ5_0 = matmulQ5_0;
        t.matmulQ4_K = matmulQ4_K;
        t.matmulQ6_K = matmulQ6_K;
        t.matmulPanel = matmulPanel;
        t.quantizeActs = quantizeActs;
        t.dot = dotAvx2;
        t.axpy = axpyAvx2;
        t.expShiftSum = expShiftSumAvx2;
        t.groupScores = groupScoresAvx2;
        t.groupAccum = groupAccumAvx2;
        return t;
    }();
    return table;
}

}  // namespace wb::cpu::detail

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
