// AVX-512 (F, BW, VL, DQ, VNNI) + F16C + FMA kernels. Everything below the target pragma is compiled for that ISA
// and only reached through avx512Kernels() after the CPU check in cpu_ops.cpp.
//
// Matmul is in "dot-product" form, as llamafile's tinyBLAS: W rows and x rows are both contiguous along k, so a
// tile of RM weight rows × RN tokens keeps RM·RN vector accumulators in registers, loads RM weight vectors and RN
// activation vectors per k step (each reused RN resp. RM times), and reduces horizontally once at the end.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

#pragma GCC push_options
// GCC 12 flags the deliberately undefined upper lanes of _mm512_cast* intrinsics as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#ifdef __clang__  // clang ignores GCC's target pragma (the fuzz build, docs/FUZZING.md): the same ISA its own way
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#endif

#include "backend/cpu/interleaved_lines.h"

namespace wb::cpu::detail {
namespace {

// Tile shapes. 4×6 uses 24 accumulators + 4 weights + 1 activation of the 32 zmm registers; generation (m = 1)
// streams 8 rows at once so that enough independent loads and FMA chains are in flight.
constexpr int kRm = 4;
constexpr int kRn = 6;
constexpr int kRmGemv = 8;
// The integer tiles need more live registers per pair (weight bytes, weight scales, activation scale and bias),
// so 4×4: 16 accumulators + 4 weight vectors + 4 weight-scale vectors + temporaries fit without spilling.
constexpr int kRmInt = 4;
constexpr int kRnInt = 4;
// Float GEMM blocking (GotoBLAS-like): a k slice of kKc keeps the 6-token activation tile (6·kKc·4 bytes = 24 KB)
// in L1 while a panel of weight rows (about kPanelBytes, in L2) sweeps past it; each weight panel then comes from
// DRAM once per matmul however many tokens there are.
constexpr int64_t kKc = 1024;
constexpr int64_t kPanelBytes = 512 * 1024;

inline __mmask16 tailMask16(int64_t n) { return __mmask16((1u << n) - 1); }

struct LoadF32 {
    using T = float;
    static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
    static __m512 loadTail(const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
};

struct LoadF16 {
    using T = uint16_t;
    static __m512 load(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static __m512 loadTail(const uint16_t* p, __mmask16 k) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p)); }
};

struct LoadBF16 {
    using T = uint16_t;
    static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
    static __m512 load(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static __m512 loadTail(const uint16_t* p, __mmask16 k) { return widen(_mm256_maskz_loadu_epi16(k, p)); }
};

// The four horizontal sums of a, b, c, d in one vector: a transpose-and-add tree, a third of the shuffles of four
// separate reductions.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                      _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// y[j*ldy + i] (+)= Σk w[i*ldw + k] · x[j*ldx + k] for i < RM, j < RN.
template <class L, int RM, int RN>
void tileFloat(const typename L::T* w, int64_t ldw, const float* x, int64_t ldx, int64_t K, float* y, int64_t ldy,
               bool accumulate = false) {
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) wv[i] = L::load(w + i * ldw + k);
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m512 xv = _mm512_loadu_ps(x + j * ldx + k);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (k < K) {
        const __mmask16 mask = tailMask16(K - k);
        __m512 wv[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) wv[i] = L::loadTail(w + i * ldw + k, mask);
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m512 xv = _mm512_maskz_loadu_ps(mask, x + j * ldx + k);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if constexpr (RM == 4) {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            __m128 v = reduce4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]);
            if (accumulate) v = _mm_add_ps(v, _mm_loadu_ps(y + j * ldy));
            _mm_storeu_ps(y + j * ldy, v);
        }
    } else {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j)
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]) + (accumulate ? y[j * ldy + i] : 0.0f);
    }
}

template <class L, int RM>
void tileFloatRn(int rn, const typename L::T* w, int64_t ldw, const float* x, int64_t ldx, int64_t K, float* y,
                 int64_t ldy, bool accumulate) {
    switch (rn) {
        case 1: tileFloat<L, RM, 1>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
        case 2: tileFloat<L, RM, 2>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
        case 3: tileFloat<L, RM, 3>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
        case 4: tileFloat<L, RM, 4>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
        case 5: tileFloat<L, RM, 5>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
        default: tileFloat<L, RM, 6>(w, ldw, x, ldx, K, y, ldy, accumulate); break;
    }
}


// Generation (m = 1) is a stream through the weights. One row at a time, not a tile of rows: rows of 2048 F16
// values lie exactly 4 KiB apart, so a tile's rows alias in the L1 sets and the hardware prefetcher tracks one
// stream per row; a single linear stream with a software prefetch about 8 KiB ahead measured 2-3x the
// bandwidth of 8-row tiles here. Four accumulators hide the FMA latency.
constexpr int64_t kGemvPrefetchBytes = 8192;
// The prefetches fill L2, not L1 (T1): an L1 prefetch holds one of the core's few L1 fill buffers for the whole
// DRAM trip, and with the block kernels' 15-20 instructions per 64 bytes those buffers, not DRAM, capped the
// stream. Measured on the full-size Q8_0 stream (2.2 GB of 9B-shaped matrices, 2 threads, interleaved runs):
// 25.6 GB/s with T0, 28.4 with T1, against 29.6 for a bare read loop over the same bytes.
constexpr auto kGemvHint = _MM_HINT_T1;
// Block kernels with many instructions per line also pull lines from L2 into L1 this far ahead.
constexpr int64_t kGemvNearBytes = 1024;

template <class L>
float gemvRow(const typename L::T* w, const float* x, int64_t K) {
    constexpr int64_t kAhead = kGemvPrefetchBytes / int64_t(sizeof(typename L::T));
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead), kGemvHint);
        _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead) + 64, kGemvHint);
        if constexpr (sizeof(typename L::T) == 4) {
            _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead) + 128, kGemvHint);
            _mm_prefetch(reinterpret_cast<const char*>(w + k + kAhead) + 192, kGemvHint);
        }
        a0 = _mm512_fmadd_ps(L::load(w + k), _mm512_loadu_ps(x + k), a0);
        a1 = _mm512_fmadd_ps(L::load(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
        a2 = _mm512_fmadd_ps(L::load(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
        a3 = _mm512_fmadd_ps(L::load(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
    }
    for (; k < K; k += 16) {
        const __mmask16 mask = K - k >= 16 ? __mmask16(0xffff) : tailMask16(K - k);
        a0 = _mm512_fmadd_ps(L::loadTail(w + k, mask), _mm512_maskz_loadu_ps(mask, x + k), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// Rows [r0, r1) of y for a weight whose rows are arrays of L::T.
template <class L>
void matmulFloatRows(const typename L::T* wbase, int64_t ldw, const float* x, int64_t m, int64_t K, float* y,
                     int64_t ldy, int64_t r0, int64_t r1) {
    if (m == 1) {
        for (int64_t r = r0; r < r1; ++r) y[r] = gemvRow<L>(wbase + r * ldw, x, K);
        return;
    }
    const int64_t kc = std::min(K, kKc);
    const int64_t panelRows =
        std::max<int64_t>(kRm, kPanelBytes / (kc * int64_t(sizeof(typename L::T))) / kRm * kRm);
    for (int64_t rb = r0; rb < r1; rb += panelRows) {
        const int64_t rbEnd = std::min(r1, rb + panelRows);
        for (int64_t kb = 0; kb < K; kb += kc) {
            const int64_t kLen = std::min(kc, K - kb);
            const bool accumulate = kb > 0;
            for (int64_t t = 0; t < m; t += kRn) {
                const int rn = int(std::min<int64_t>(kRn, m - t));
                const float* xt = x + t * K + kb;
                float* yt = y + t * ldy;
                int64_t r = rb;
                for (; r + kRm <= rbEnd; r += kRm)
                    tileFloatRn<L, kRm>(rn, wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, accumulate);
                for (; r < rbEnd; ++r)
                    tileFloatRn<L, 1>(rn, wbase + r * ldw + kb, ldw, xt, K, kLen, yt + r, ldy, accumulate);
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

// Other dtypes: decode kRmGemv rows into f32 scratch (once per row tile, reused by every token), then f32 tiles.
void matmulPanel(const MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    const int64_t K = w.cols;
    thread_local std::vector<float> panel;
    if (int64_t(panel.size()) < kRmGemv * K) panel.resize(size_t(kRmGemv * K));
    for (int64_t r = r0; r < r1; r += kRmGemv) {
        const int64_t nr = std::min<int64_t>(kRmGemv, r1 - r);
        for (int64_t i = 0; i < nr; ++i) dequantizeRow(w.dtype, w.data + (r + i) * w.rowBytes(), panel.data() + i * K, K);
        matmulFloatRows<LoadF32>(panel.data(), K, job.x, job.m, K, job.y + r, w.rows, 0, nr);
    }
}

// --- Integer paths --------------------------------------------------------------------------------------------

// Lanes 0-7 take element 0 and lanes 8-15 element 1: one zmm holds two 32-blocks, each spread over 8 int32 lanes.
inline __m512i halvesIndex() { return _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0); }

inline __m512 loadScalePair(const float* d, __m512i idx) {
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d)))));
}

inline __m512i loadBiasPair(const int32_t* b, __m512i idx) {
    return _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
}

inline uint16_t loadU16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// Q8_0 weights × quantized activations; one k step covers two 34-byte blocks (64 values). kFull = false handles
// a final odd block: the upper half of the weight vector and its scale are zero.
template <int RM, int RN, bool kFull>
inline void stepQ8(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t b, __m512 (&acc)[RM][RN],
                   __m512i idx, __m512i flip) {
    __m512i wv[RM];
    __m512 wd[RM];
    if constexpr (RM == 1) {
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34 + kGemvPrefetchBytes), kGemvHint);
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34 + kGemvPrefetchBytes + 64), kGemvHint);
        // and from L2 into L1 a little ahead, so the scale loads (the first use of each line) hit L1.
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34 + kGemvNearBytes), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34 + kGemvNearBytes + 64), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) {
        const uint8_t* p = w + i * ldw + b * 34;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
        const __m256i hi = kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 36)) : _mm256_setzero_si256();
        wv[i] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
        const uint32_t dd = uint32_t(loadU16(p)) | (kFull ? uint32_t(loadU16(p + 34)) << 16 : 0u);
        wd[i] = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(dd)))));
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; ++j) {
        const __m512i xv = _mm512_loadu_si512(qa.q + (t + j) * qa.ldq + b * 32);
        const __m512 xd = loadScalePair(qa.d + (t + j) * qa.ldb + b, idx);
        const __m512i bias = loadBiasPair(qa.bias + (t + j) * qa.ldb + b, idx);
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const __m512i dot = _mm512_dpbusd_epi32(bias, wv[i], xv);
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[i], xd), acc[i][j]);
        }
    }
}

template <int RM, int RN>
void tileQ8(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nb, float* y, int64_t ldy) {
    const __m512i idx = halvesIndex();
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) stepQ8<RM, RN, true>(w, ldw, qa, t, b, acc, idx, flip);
    if (b < nb) stepQ8<RM, RN, false>(w, ldw, qa, t, b, acc, idx, flip);
    constexpr bool accumulate = false;
    if constexpr (RM == 4) {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            __m128 v = reduce4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]);
            if (accumulate) v = _mm_add_ps(v, _mm_loadu_ps(y + j * ldy));
            _mm_storeu_ps(y + j * ldy, v);
        }
    } else {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j)
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]) + (accumulate ? y[j * ldy + i] : 0.0f);
    }
}

// I8 weights (per-row scale) × quantized activations: 64 contiguous int8 per step, masked at the row's end.
template <int RM, int RN>
void tileI8(const int8_t* w, int64_t ldw, const float* rowScale, const QuantizedActs& qa, int64_t t, int64_t K,
            float* y, int64_t ldy) {
    const __m512i idx = halvesIndex();
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 64) {
        if constexpr (RM == 1) _mm_prefetch(reinterpret_cast<const char*>(w + k + kGemvPrefetchBytes), kGemvHint);
        __m512i wv[RM];
        if (k + 64 <= K) {
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) wv[i] = _mm512_xor_si512(_mm512_loadu_si512(w + i * ldw + k), flip);
        } else {
            // Masked-off lanes read 0 ^ 0x80 = 128, multiplied by the zero padding of the activations.
            const __mmask64 mask = (~0ull) >> (64 - (K - k));
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) wv[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, w + i * ldw + k), flip);
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m512i xv = _mm512_loadu_si512(qa.q + (t + j) * qa.ldq + k);
            const __m512 xd = loadScalePair(qa.d + (t + j) * qa.ldb + k / 32, idx);
            const __m512i bias = loadBiasPair(qa.bias + (t + j) * qa.ldb + k / 32, idx);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i)
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bias, wv[i], xv)), xd, acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; ++j)
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]) * rowScale[i];
}

// Shared driver for the integer tiles: Tile<RM, RN>::run(r, t, y) computes rows r.., tokens t.. .
template <template <int, int> class Tile>
void matmulIntRows(const MatmulJob& job, int64_t r0, int64_t r1, int64_t rowBytes) {
    const int64_t m = job.m;
    float* y = job.y;
    const int64_t ldy = job.w->rows;
    if (m == 1) {
        // One row at a time, a single prefetched stream (see gemvRow).
        for (int64_t r = r0; r < r1; ++r) Tile<1, 1>::run(job, r, 0, y + r, ldy);
        return;
    }
    // Same order as the float GEMM: a panel of weight rows stays in L2 while each 4-token tile of int8
    // activations (4·cols bytes, L1-sized for any cols up to ~8k) sweeps it, so weights leave DRAM once.
    const int64_t panelRows = std::max<int64_t>(kRmInt, kPanelBytes / std::max<int64_t>(1, rowBytes) / kRmInt * kRmInt);
    for (int64_t rb = r0; rb < r1; rb += panelRows) {
        const int64_t rbEnd = std::min(r1, rb + panelRows);
        for (int64_t t = 0; t < m; t += kRnInt) {
            const int64_t rn = std::min<int64_t>(kRnInt, m - t);
            auto sweep = [&](auto rnTag) {
                constexpr int RN = decltype(rnTag)::value;
                int64_t r = rb;
                for (; r + kRmInt <= rbEnd; r += kRmInt) Tile<kRmInt, RN>::run(job, r, t, y + t * ldy + r, ldy);
                for (; r < rbEnd; ++r) Tile<1, RN>::run(job, r, t, y + t * ldy + r, ldy);
            };
            switch (rn) {
                case 1: sweep(std::integral_constant<int, 1>{}); break;
                case 2: sweep(std::integral_constant<int, 2>{}); break;
                case 3: sweep(std::integral_constant<int, 3>{}); break;
                default: sweep(std::integral_constant<int, kRnInt>{}); break;
            }
        }
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

// Interleaved Q8_0, Q4_0 and Q5_0 (weight_matrix.h, interleaveBlocks): the 16 rows of one group against RN
// tokens. Per 64-byte line one load and one vpdpbusd per token (the 4 activation bytes it needs broadcast to every
// row's lane), two int32 chains per token to cover vpdpbusd's latency; per block one int->float conversion and one
// FMA with the 16 rows' scales times the token's. Q8_0's int32 lanes start at 8·bias = -128·Σq, which cancels the
// +128 of the stored quants over the block's 32 values; Q4_0's lines are split into their low and high nibbles (an
// AND and a shift, shared by the tokens) and its lanes start at bias/2 = -8·Σq, the -8 of its values; Q5_0's lines
// get their fifth bits too (q5Line) and start at bias = -16·Σq.
constexpr int64_t kGroupPrefetchBytes = 4096;  // 4 KiB measured 1-3 % over 8 KiB in the streaming test

inline int32_t loadI32(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Two weight lines into the tokens' two int32 chains: w0 against the activation dword at x[j] + at, w1 against the
// one at x[j] + at + step (the next 4 values, or the same 4 values' place in a later 16 or 32).
template <int RN>
inline void dotLines(__m512i w0, __m512i w1, const int8_t* const (&x)[RN], int64_t at, int64_t step, __m512i (&i0)[RN],
                     __m512i (&i1)[RN]) {
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) {
        i0[j] = _mm512_dpbusd_epi32(i0[j], w0, _mm512_set1_epi32(loadI32(x[j] + at)));
        i1[j] = _mm512_dpbusd_epi32(i1[j], w1, _mm512_set1_epi32(loadI32(x[j] + at + step)));
    }
}

// A 64-byte line of nibbles as two lines of values: low nibbles, high nibbles.
inline void splitNibbles(const uint8_t* p, __m512i& lo, __m512i& hi) {
    const __m512i v = _mm512_loadu_si512(p), low4 = _mm512_set1_epi8(0x0F);
    lo = _mm512_and_si512(v, low4);
    hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
}

template <DType kType, int RN>
void tileX16(const uint8_t* g, int64_t pairs, const QuantizedActs& qa, int64_t t, float* y, int64_t ldy) {
    constexpr bool kQ4 = kType == DType::Q4_0, kQ5 = kType == DType::Q5_0;
    constexpr int64_t kPair = interleavedPairBytes(kType);
    __m512 acc[RN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        const uint8_t* blk = g + p * kPair;
        if constexpr (RN == 1) {
#pragma GCC unroll 17
            for (int l = 0; l < int(kPair / 64); ++l)
                _mm_prefetch(reinterpret_cast<const char*>(blk + kGroupPrefetchBytes + 64 * l), kGemvHint);
        }
        const __m512 scale[2] = {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk))),
                                 _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)))};
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const int64_t b = 2 * p + h;
            __m512i i0[RN], i1[RN];
            const int8_t* x[RN];
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j) {
                const int32_t bias = qa.bias[(t + j) * qa.ldb + b];
                i0[j] = _mm512_set1_epi32(kQ4 ? bias / 2 : kQ5 ? bias : 8 * bias);
                i1[j] = _mm512_setzero_si512();
                x[j] = qa.q + (t + j) * qa.ldq + b * 32;
            }
            if constexpr (kQ5) {
                const uint8_t* q = blk + 64 + 320 * h;
#pragma GCC unroll 4
                for (int l = 0; l < 4; ++l) dotLines<RN>(q5Line(q, l), q5Line(q, l + 4), x, 4 * l, 16, i0, i1);
            } else if constexpr (kQ4) {
                const uint8_t* q = blk + 64 + 256 * h;
#pragma GCC unroll 4
                for (int l = 0; l < 4; ++l) {
                    __m512i lo, hi;
                    splitNibbles(q + 64 * l, lo, hi);
                    dotLines<RN>(lo, hi, x, 4 * l, 16, i0, i1);
                }
            } else {
                const uint8_t* q = blk + 64 + 512 * h;
#pragma GCC unroll 4
                for (int l = 0; l < 8; l += 2)
                    dotLines<RN>(_mm512_loadu_si512(q + 64 * l), _mm512_loadu_si512(q + 64 * l + 64), x, 4 * l, 4, i0,
                                 i1);
            }
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j)
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(i0[j], i1[j])),
                                         _mm512_mul_ps(scale[h], _mm512_set1_ps(qa.d[(t + j) * qa.ldb + b])), acc[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

// Whole groups: r0 and r1 are multiples of 16 (the matrix's rows are). Tokens 4 at a time; a group's bytes (16
// rows, 233 KB of Q8_0 at 13,696 columns) stay in L2 between the token tiles. tile.operator()<RN>(group, t, y).
template <typename Tile>
void forGroupTiles(const MatmulJob& job, int64_t r0, int64_t r1, const Tile& tile) {
    const WeightMatrix& w = *job.w;
    const int64_t rb = w.rowBytes(), ldy = w.rows;
    for (int64_t r = r0; r < r1; r += 16) {
        const uint8_t* g = w.data + r * rb;
        for (int64_t t = 0; t < job.m; t += 4) {
            float* y = job.y + t * ldy + r;
            switch (std::min<int64_t>(4, job.m - t)) {
                case 1: tile.template operator()<1>(g, t, y); break;
                case 2: tile.template operator()<2>(g, t, y); break;
                case 3: tile.template operator()<3>(g, t, y); break;
                default: tile.template operator()<4>(g, t, y); break;
            }
        }
    }
}

template <DType kType>
void matmulX16(const MatmulJob& job, int64_t r0, int64_t r1) {
    const int64_t pairs = job.w->cols / 64, ldy = job.w->rows;
    forGroupTiles(job, r0, r1, [&]<int RN>(const uint8_t* g, int64_t t, float* y) {
        tileX16<kType, RN>(g, pairs, job.qa, t, y, ldy);
    });
}

void matmulQ8_0x16(const MatmulJob& job, int64_t r0, int64_t r1) { matmulX16<DType::Q8_0>(job, r0, r1); }
void matmulQ4_0x16(const MatmulJob& job, int64_t r0, int64_t r1) { matmulX16<DType::Q4_0>(job, r0, r1); }
void matmulQ5_0x16(const MatmulJob& job, int64_t r0, int64_t r1) { matmulX16<DType::Q5_0>(job, r0, r1); }

// Interleaved Q4_K: per super-block the 8 sub-blocks' scales and mins of the 16 rows (q4kScales16, shared by the
// tokens), then per 32-byte chunk of nibbles its 8 lines, whose low nibbles are sub-block 2j and high nibbles
// sub-block 2j + 1 (one int32 chain each). Per sub-block and token: the dots to f32 times the rows' d·sc times
// the token's scale, less the rows' dmin·mn times the token's block sum (qa.xsum): the AMX kernel's steps.
template <int RN>
void tileQ4Kx16(const uint8_t* g, int64_t supers, const QuantizedActs& qa, int64_t t, float* y, int64_t ldy) {
    __m512 acc[RN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) acc[j] = _mm512_setzero_ps();
    alignas(64) float sc[8][16], mn[8][16];
    for (int64_t s = 0; s < supers; ++s) {
        const uint8_t* blk = g + s * kInterleavedQ4KBytes;
        if constexpr (RN == 1) {
            for (int l = 0; l < int(kInterleavedQ4KBytes / 64); ++l)
                _mm_prefetch(reinterpret_cast<const char*>(blk + kGroupPrefetchBytes + 64 * l), kGemvHint);
        }
        q4kScales16(blk, sc, mn);
        for (int c = 0; c < 4; ++c) {
            const uint8_t* q = blk + 256 + 512 * c;
            const int64_t b = 8 * s + 2 * c;  // the chunk's low-nibble sub-block (the high one is b + 1)
            __m512i i0[RN], i1[RN];
            const int8_t* x[RN];
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j) {
                i0[j] = _mm512_setzero_si512();
                i1[j] = _mm512_setzero_si512();
                x[j] = qa.q + (t + j) * qa.ldq + b * 32;
            }
#pragma GCC unroll 8
            for (int l = 0; l < 8; ++l) {
                __m512i lo, hi;
                splitNibbles(q + 64 * l, lo, hi);
                dotLines<RN>(lo, hi, x, 4 * l, 32, i0, i1);
            }
            const __m512 s0 = _mm512_load_ps(sc[2 * c]), s1 = _mm512_load_ps(sc[2 * c + 1]);
            const __m512 m0 = _mm512_load_ps(mn[2 * c]), m1 = _mm512_load_ps(mn[2 * c + 1]);
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j) {
                const int64_t at = (t + j) * qa.ldb + b;
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[j]), _mm512_mul_ps(s0, _mm512_set1_ps(qa.d[at])),
                                         acc[j]);
                acc[j] = _mm512_fnmadd_ps(m0, _mm512_set1_ps(qa.xsum[at]), acc[j]);
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[j]), _mm512_mul_ps(s1, _mm512_set1_ps(qa.d[at + 1])),
                                         acc[j]);
                acc[j] = _mm512_fnmadd_ps(m1, _mm512_set1_ps(qa.xsum[at + 1]), acc[j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

// Interleaved Q6_K: per super-block the 16 scales of the 16 rows times d (q6kScales16), then per sub-block its 8
// lines built from the low and high bits (q6kLine, shared by the tokens), one int32 chain per 16 values (each its
// own scale), starting at 4·bias16 = -32·Σq of the 16 (the values' -32). The AMX kernel's steps.
template <int RN>
void tileQ6Kx16(const uint8_t* g, int64_t supers, const QuantizedActs& qa, int64_t t, float* y, int64_t ldy) {
    __m512 acc[RN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) acc[j] = _mm512_setzero_ps();
    alignas(64) float sc[16][16];
    const int64_t ld16 = qa.ldq / 16;
    for (int64_t s = 0; s < supers; ++s) {
        const uint8_t* blk = g + s * kInterleavedQ6KBytes;
        if constexpr (RN == 1) {
            for (int l = 0; l < int(kInterleavedQ6KBytes / 64) + 1; ++l)
                _mm_prefetch(reinterpret_cast<const char*>(blk + kGroupPrefetchBytes + 64 * l), kGemvHint);
        }
        q6kScales16(blk, sc);
#pragma GCC unroll 8
        for (int u = 0; u < 8; ++u) {
            const uint8_t* half = blk + 288 + 1536 * (u / 4);
            const int64_t b = 8 * s + u;
            __m512i i0[RN], i1[RN];
            const int8_t* x[RN];
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j) {
                i0[j] = _mm512_set1_epi32(4 * qa.bias16[(t + j) * ld16 + 2 * b]);
                i1[j] = _mm512_set1_epi32(4 * qa.bias16[(t + j) * ld16 + 2 * b + 1]);
                x[j] = qa.q + (t + j) * qa.ldq + b * 32;
            }
#pragma GCC unroll 4
            for (int l = 0; l < 4; ++l) {
                const __m512i v0 = q6kLine(half, u % 4, l), v1 = q6kLine(half, u % 4, l + 4);
#pragma GCC unroll 4
                for (int j = 0; j < RN; ++j) {
                    i0[j] = _mm512_dpbusd_epi32(i0[j], v0, _mm512_set1_epi32(loadI32(x[j] + 4 * l)));
                    i1[j] = _mm512_dpbusd_epi32(i1[j], v1, _mm512_set1_epi32(loadI32(x[j] + 16 + 4 * l)));
                }
            }
            const __m512 s0 = _mm512_load_ps(sc[2 * u]), s1 = _mm512_load_ps(sc[2 * u + 1]);
#pragma GCC unroll 4
            for (int j = 0; j < RN; ++j) {
                const __m512 d = _mm512_set1_ps(qa.d[(t + j) * qa.ldb + b]);
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[j]), _mm512_mul_ps(s0, d), acc[j]);
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[j]), _mm512_mul_ps(s1, d), acc[j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

template <bool kQ6>
void matmulKx16(const MatmulJob& job, int64_t r0, int64_t r1) {
    const int64_t supers = job.w->cols / 256, ldy = job.w->rows;
    forGroupTiles(job, r0, r1, [&]<int RN>(const uint8_t* g, int64_t t, float* y) {
        if constexpr (kQ6) tileQ6Kx16<RN>(g, supers, job.qa, t, y, ldy);
        else tileQ4Kx16<RN>(g, supers, job.qa, t, y, ldy);
    });
}

void matmulQ4_Kx16(const MatmulJob& job, int64_t r0, int64_t r1) { matmulKx16<false>(job, r0, r1); }
void matmulQ6_Kx16(const MatmulJob& job, int64_t r0, int64_t r1) { matmulKx16<true>(job, r0, r1); }

void matmulQ8_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q8Tile>(job, r0, r1, job.w->rowBytes()); }
void matmulI8(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<I8Tile>(job, r0, r1, job.w->rowBytes()); }

// --- 4-bit, 5-bit and K-quant blocks --------------------------------------------------------------------------
//
// The same dot-product form as Q8_0: weights become 64 unsigned bytes per step (their integer values, no offset),
// vpdpbusd multiplies them with 64 int8 activations into 16 int32 lanes (4 values per lane), and each lane is
// scaled by (weight scale × activation block scale) into an f32 accumulator. What the unsigned form leaves out
// comes back through the activations' sums:
//   Q4_0 / Q5_0: value = q - 8 (q - 16), one scale per 32 -> lanes start at -8·Σx / 8 (-16·Σx / 8) of their
//     block, i.e. bias/16 (bias/8) of the Q8 bias (= -16·Σx per lane);
//   Q6_K: value = q - 32, scales per 16 -> lanes start at -8·Σx of their 16-group (bias16);
//   Q4_K: value = d·sc·q - dmin·mn per 32 -> the mins are subtracted in f32 once per super-block, dmin·mn times
//     the activation block's sum (xsum), in the low 8 lanes of the same accumulator.

inline void storeTile(float* y, int64_t ldy, const auto& acc, auto rmTag, auto rnTag) {
    constexpr int RM = decltype(rmTag)::value, RN = decltype(rnTag)::value;
    if constexpr (RM == 4) {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) _mm_storeu_ps(y + j * ldy, reduce4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
    } else {
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j)
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
    }
}

// 16 bytes of nibbles -> 32 bytes: low nibbles, then high nibbles (the order of a Q4_0/Q5_0 block's values).
inline __m256i nibbles16(const uint8_t* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

inline uint32_t loadU32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Q4_0 (kBits 4, 18-byte blocks) and Q5_0 (kBits 5, 22-byte blocks: d, 32 high bits, 16 bytes of nibbles).
template <int kBits, int RM, int RN, bool kFull>
inline void stepQ45(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t b, __m512 (&acc)[RM][RN],
                    __m512i idx) {
    constexpr int64_t kBB = kBits == 4 ? 18 : 22;
    constexpr int kQs = kBits == 4 ? 2 : 6;
    __m512i wv[RM];
    __m512 wd[RM];
    if constexpr (RM == 1)
        _mm_prefetch(reinterpret_cast<const char*>(w + b * kBB + kGemvPrefetchBytes), kGemvHint);
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) {
        const uint8_t* p = w + i * ldw + b * kBB;
        const __m256i lo = nibbles16(p + kQs);
        const __m256i hi = kFull ? nibbles16(p + kBB + kQs) : _mm256_setzero_si256();
        wv[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        if constexpr (kBits == 5) {
            const uint64_t bits = uint64_t(loadU32(p + 2)) | (kFull ? uint64_t(loadU32(p + kBB + 2)) << 32 : 0);
            wv[i] = _mm512_or_si512(wv[i], _mm512_maskz_set1_epi8(__mmask64(bits), 0x10));
        }
        const uint32_t dd = uint32_t(loadU16(p)) | (kFull ? uint32_t(loadU16(p + kBB)) << 16 : 0u);
        wd[i] = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(dd)))));
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; ++j) {
        const __m512i xv = _mm512_loadu_si512(qa.q + (t + j) * qa.ldq + b * 32);
        const __m512 xd = loadScalePair(qa.d + (t + j) * qa.ldb + b, idx);
        const __m512i bias = _mm512_srai_epi32(loadBiasPair(qa.bias + (t + j) * qa.ldb + b, idx), kBits == 4 ? 4 : 3);
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const __m512i dot = _mm512_dpbusd_epi32(bias, wv[i], xv);
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[i], xd), acc[i][j]);
        }
    }
}

template <int kBits, int RM, int RN>
void tileQ45(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nb, float* y, int64_t ldy) {
    const __m512i idx = halvesIndex();
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) stepQ45<kBits, RM, RN, true>(w, ldw, qa, t, b, acc, idx);
    if (b < nb) stepQ45<kBits, RM, RN, false>(w, ldw, qa, t, b, acc, idx);
    storeTile(y, ldy, acc, std::integral_constant<int, RM>{}, std::integral_constant<int, RN>{});
}

// Q4_K's eight 6-bit scales (bytes 0-7) and mins (bytes 8-15) of a super-block, from its 12 packed bytes: scales
// 0-3 and mins 0-3 are the low 6 bits of bytes 0-3 / 4-7; scales and mins 4-7 take their low 4 bits from the
// nibbles of bytes 8-11 and their top 2 bits from the top of bytes 0-3 / 4-7.
inline __m128i unpackScalesMinsK4(const uint8_t* p) {
    const uint32_t w0 = loadU32(p), w1 = loadU32(p + 4), w2 = loadU32(p + 8);
    const uint32_t sLo = w0 & 0x3f3f3f3fu, mLo = w1 & 0x3f3f3f3fu;
    const uint32_t sHi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t mHi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    return _mm_set_epi32(int(mHi), int(mLo), int(sHi), int(sLo));
}

template <int RM, int RN>
void tileQ4K(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nsb, float* y, int64_t ldy) {
    const __m512i mask4 = _mm512_set1_epi8(0x0F);
    // Step s of a super-block covers sub-blocks 2s (lanes 0-7) and 2s+1 (lanes 8-15).
    const __m512i pairIdx[4] = {_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
                                _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
                                _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6)};
    const __m512i idx = halvesIndex();
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        __m512 scl[RM], mins[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const uint8_t* p = w + i * ldw + sb * 144;
            if constexpr (RM == 1) {
                _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes), kGemvHint);
                _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes + 64), kGemvHint);
                _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes + 128), kGemvHint);
            }
            const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(unpackScalesMinsK4(p + 4)));
            // lanes 0-7: d·scale_j; lanes 8-15: dmin·min_j
            const __m512 dd = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(loadU16(p))), _mm256_set1_ps(_cvtsh_ss(loadU16(p + 2))), 1);
            const __m512 prod = _mm512_mul_ps(sm, dd);
            scl[i] = prod;
            mins[i] = _mm512_zextps256_ps512(_mm512_extractf32x8_ps(prod, 1));
        }
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) {
            const __m512 xs = _mm512_zextps256_ps512(_mm256_loadu_ps(qa.xsum + (t + j) * qa.ldb + sb * 8));
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][j] = _mm512_fnmadd_ps(mins[i], xs, acc[i][j]);
        }
#pragma GCC unroll 4
        for (int s = 0; s < 4; ++s) {
            __m512i wv[RM];
            __m512 ws[RM];
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) {
                const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * ldw + sb * 144 + 16 + s * 32));
                const __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                wv[i] = _mm512_and_si512(qq, mask4);
                ws[i] = _mm512_permutexvar_ps(pairIdx[s], scl[i]);
            }
#pragma GCC unroll 8
            for (int j = 0; j < RN; ++j) {
                const int64_t b = sb * 8 + s * 2;
                const __m512i xv = _mm512_loadu_si512(qa.q + (t + j) * qa.ldq + b * 32);
                const __m512 xd = loadScalePair(qa.d + (t + j) * qa.ldb + b, idx);
#pragma GCC unroll 8
                for (int i = 0; i < RM; ++i) {
                    const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], xv);
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[i], xd), acc[i][j]);
                }
            }
        }
    }
    storeTile(y, ldy, acc, std::integral_constant<int, RM>{}, std::integral_constant<int, RN>{});
}

template <int RM, int RN>
void tileQ6K(const uint8_t* w, int64_t ldw, const QuantizedActs& qa, int64_t t, int64_t nsb, float* y, int64_t ldy) {
    const __m512i mask4 = _mm512_set1_epi8(0x0F), mask2 = _mm512_set1_epi8(0x03);
    // qh's 2-bit fields: the first 32 bytes of a step read bits (0,1) / (4,5), the second 32 bytes (2,3) / (6,7).
    const __m512i shA = _mm512_set_epi16(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0);
    const __m512i shB = _mm512_add_epi16(shA, _mm512_set1_epi16(4));
    // Lanes 4g..4g+3 take group g's scale; the step's 4 groups are element 0-3 (first step) or 4-7 (second).
    const __m512i quadA = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i quadB = _mm512_add_epi32(quadA, _mm512_set1_epi32(4));
    const __m512i idx = halvesIndex();
    __m512 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
            __m512i wa[RM], wb[RM];
            __m512 sa[RM], sbv[RM];
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) {
                const uint8_t* p = w + i * ldw + sb * 210;
                if constexpr (RM == 1) {
                    if (half == 0) {
                        _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes), kGemvHint);
                        _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes + 64), kGemvHint);
                        _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes + 128), kGemvHint);
                        _mm_prefetch(reinterpret_cast<const char*>(p + kGemvPrefetchBytes + 192), kGemvHint);
                    }
                }
                const __m512i ql = _mm512_loadu_si512(p + half * 64);
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + half * 32));
                const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
                const __m512i hA = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh2, shA), mask2), 4);
                const __m512i hB = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh2, shB), mask2), 4);
                wa[i] = _mm512_or_si512(_mm512_and_si512(ql, mask4), hA);
                wb[i] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), mask4), hB);
                const __m512 d = _mm512_set1_ps(_cvtsh_ss(loadU16(p + 208)));
                const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 192 + half * 8));
                const __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8)));
                sa[i] = _mm512_permutexvar_ps(quadA, sc);
                sbv[i] = _mm512_permutexvar_ps(quadB, sc);
            }
#pragma GCC unroll 8
            for (int j = 0; j < RN; ++j) {
                const int64_t v0 = sb * 256 + half * 128;  // first value of this half
                const int8_t* xq = qa.q + (t + j) * qa.ldq + v0;
                const float* xdp = qa.d + (t + j) * qa.ldb + v0 / 32;
                const int32_t* b16 = qa.bias16 + (t + j) * (qa.ldq / 16) + v0 / 16;
                const __m512i xa = _mm512_loadu_si512(xq), xb = _mm512_loadu_si512(xq + 64);
                const __m512 xda = loadScalePair(xdp, idx), xdb = loadScalePair(xdp + 2, idx);
                const __m512i ba = _mm512_permutexvar_epi32(quadA, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b16))));
                const __m512i bb = _mm512_permutexvar_epi32(quadB, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b16))));
#pragma GCC unroll 8
                for (int i = 0; i < RM; ++i) {
                    const __m512i da = _mm512_dpbusd_epi32(ba, wa[i], xa);
                    const __m512i db = _mm512_dpbusd_epi32(bb, wb[i], xb);
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(da), _mm512_mul_ps(sa[i], xda), acc[i][j]);
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(db), _mm512_mul_ps(sbv[i], xdb), acc[i][j]);
                }
            }
        }
    }
    storeTile(y, ldy, acc, std::integral_constant<int, RM>{}, std::integral_constant<int, RN>{});
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

void matmulQ4_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q4_0Tile>(job, r0, r1, job.w->rowBytes()); }
void matmulQ5_0(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q5_0Tile>(job, r0, r1, job.w->rowBytes()); }
void matmulQ4_K(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q4KTile>(job, r0, r1, job.w->rowBytes()); }
void matmulQ6_K(const MatmulJob& job, int64_t r0, int64_t r1) { matmulIntRows<Q6KTile>(job, r0, r1, job.w->rowBytes()); }

// Per token, blocks of 32: scale = max|x|/127, q = round-to-nearest-even(x/scale), bias = -16·Σq (the rule of
// backend/int8_act_quant.h, bit for bit; tst_int8_act_quant holds them together); full blocks with vector code,
// a partial last block and the zero padding up to ldq through the portable routine's rules.
void quantizeActsAvx512(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, int32_t* bias, int64_t ldq,
                        int64_t ldb) {
    const int64_t fullBlocks = cols / 32;
    for (int64_t t = 0; t < m; ++t) {
        const float* xr = x + t * cols;
        int8_t* qr = q + t * ldq;
        for (int64_t b = 0; b < fullBlocks; ++b) {
            const __m512 a = _mm512_loadu_ps(xr + b * 32), c = _mm512_loadu_ps(xr + b * 32 + 16);
            const __m512 absA = _mm512_abs_ps(a), absC = _mm512_abs_ps(c);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(absA, absC));
            const float scale = amax / 127.0f;
            const float invS = scale != 0.0f ? 1.0f / scale : 0.0f;
            // NaN or inf in the block, or a subnormal scale whose inverse overflows: the shared rule's edge cases
            // (backend/int8_act_quant.h), rare enough for the portable routine (compiled outside this ISA's pragma).
            const __m512 fltMax = _mm512_set1_ps(3.40282347e+38f);
            if ((_mm512_cmp_ps_mask(absA, fltMax, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(absC, fltMax, _CMP_NLE_UQ)) != 0 ||
                !(invS <= 3.40282347e+38f)) {
                quantizeActs(xr + b * 32, 1, 32, qr + b * 32, d + t * ldb + b, bias + t * ldb + b, 32, 1);
                continue;
            }
            const __m512 inv = _mm512_set1_ps(invS);
            const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv));  // MXCSR default: nearest even
            const __m512i qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, inv));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + b * 32), _mm512_cvtsepi32_epi8(qa));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + b * 32 + 16), _mm512_cvtsepi32_epi8(qc));
            d[t * ldb + b] = scale;
            bias[t * ldb + b] = -16 * _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc));
        }
        if (fullBlocks < ldb)
            quantizeActs(xr + fullBlocks * 32, 1, cols - fullBlocks * 32, qr + fullBlocks * 32, d + t * ldb + fullBlocks,
                         bias + t * ldb + fullBlocks, ldq - fullBlocks * 32, ldb - fullBlocks);
    }
}

// --- Vector helpers -------------------------------------------------------------------------------------------

float dotAvx512(const float* a, const float* b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? __mmask16(0xffff) : tailMask16(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void axpyAvx512(float a, const float* x, float* y, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 k = tailMask16(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}

// exp(x) = 2^n e^r, n = round(x log2 e), |r| <= ln2 / 2, e^r by its Taylor polynomial to degree 6 (~1.2e-7).
inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.3365447505531f));
    // Cody-Waite: r = x - n ln2 with ln2 in two parts, so r is exact to float rounding whatever |x|.
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.3888888888888889e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3333333333333333e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1666666666666667e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666666666666667e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

float expShiftSumAvx512(float* x, float shift, int64_t n) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
        _mm512_storeu_ps(x + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        const __mmask16 k = __mmask16((1u << (n - i)) - 1);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(acc);
}

// Sums of 16 vectors at once: lane i of the result is the sum of v[i]'s 16 lanes (45 shuffles and adds in all,
// against 16 x 8 for sixteen separate horizontal sums).
inline __m512 sum16(const __m512* v) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; ++i)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; ++i)  // per 128-bit lane: that lane's partial sum of v[4i..4i+3]
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // Add the four 128-bit lanes: lane i of the result gathers u[i]'s.
    const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}

void groupScoresAvx512(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd, float scale,
                       float* s, int64_t ls) {
    // Rows past n repeat row 0 (valid memory); their sums are computed and not stored.
    const float* rows[16];
    for (int p = 0; p < 16; ++p) rows[p] = k + (p < n ? p : 0) * kStride;
    const __mmask16 outMask = n >= 16 ? __mmask16(0xffff) : tailMask16(n);
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int64_t g = 0; g < G; ++g) {
        const float* qg = q + g * hd;
        __m512 acc[16];
#pragma GCC unroll 16
        for (int p = 0; p < 16; ++p) acc[p] = _mm512_setzero_ps();
        int64_t c = 0;
        for (; c + 16 <= hd; c += 16) {
            const __m512 qc = _mm512_loadu_ps(qg + c);
#pragma GCC unroll 16
            for (int p = 0; p < 16; ++p) acc[p] = _mm512_fmadd_ps(qc, _mm512_loadu_ps(rows[p] + c), acc[p]);
        }
        if (c < hd) {
            const __mmask16 m = tailMask16(hd - c);
            const __m512 qc = _mm512_maskz_loadu_ps(m, qg + c);
#pragma GCC unroll 16
            for (int p = 0; p < 16; ++p) acc[p] = _mm512_fmadd_ps(qc, _mm512_maskz_loadu_ps(m, rows[p] + c), acc[p]);
        }
        _mm512_mask_storeu_ps(s + g * ls, outMask, _mm512_mul_ps(sum16(acc), vscale));
    }
}

void groupAccumAvx512(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n, int64_t hd,
                      float* out) {
    // Up to 8 heads' 16-column slices of out in registers; each value slice is loaded once for all of them.
    for (int64_t g0 = 0; g0 < G; g0 += 8) {
        const int64_t gb = std::min<int64_t>(8, G - g0);
        for (int64_t c = 0; c < hd; c += 16) {
            const __mmask16 m = hd - c >= 16 ? __mmask16(0xffff) : tailMask16(hd - c);
            __m512 acc[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j)
                acc[j] = j < gb ? _mm512_maskz_loadu_ps(m, out + (g0 + j) * hd + c) : _mm512_setzero_ps();
            for (int64_t p = 0; p < n; ++p) {
                const __m512 x = _mm512_maskz_loadu_ps(m, v + p * vStride + c);
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j)
                    if (j < gb) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(s[(g0 + j) * ls + p]), x, acc[j]);
            }
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j)
                if (j < gb) _mm512_mask_storeu_ps(out + (g0 + j) * hd + c, m, acc[j]);
        }
    }
}

}  // namespace

const KernelTable& avx512Kernels() {
    static const KernelTable table = [] {
        KernelTable t;
        t.matmulF32 = matmulFloat<LoadF32>;
        t.matmulF16 = matmulFloat<LoadF16>;
        t.matmulBF16 = matmulFloat<LoadBF16>;
        t.matmulQ8_0 = matmulQ8_0;
        t.matmulQ8_0x16 = matmulQ8_0x16;
        t.matmulQ4_0x16 = matmulQ4_0x16;
        t.matmulQ5_0x16 = matmulQ5_0x16;
        t.matmulQ4_Kx16 = matmulQ4_Kx16;
        t.matmulQ6_Kx16 = matmulQ6_Kx16;
        t.matmulI8 = matmulI8;
        t.matmulQ4_0 = matmulQ4_0;
        t.matmulQ5_0 = matmulQ5_0;
        t.matmulQ4_K = matmulQ4_K;
        t.matmulQ6_K = matmulQ6_K;
        t.matmulPanel = matmulPanel;
        t.quantizeActs = quantizeActsAvx512;
        t.dot = dotAvx512;
        t.axpy = axpyAvx512;
        t.expShiftSum = expShiftSumAvx512;
        t.groupScores = groupScoresAvx512;
        t.groupAccum = groupAccumAvx512;
        return t;
    }();
    return table;
}

}  // namespace wb::cpu::detail

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
