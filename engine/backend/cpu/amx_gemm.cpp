#include "backend/cpu/amx_gemm.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/dtype.h"

// GCC only: the clang build (the fuzz targets, docs/FUZZING.md) has no tile path and reports it unavailable.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WB_HAVE_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define WB_HAVE_AMX 0
#endif

namespace wb::cpu::amx {

namespace {

#if WB_HAVE_AMX
bool probe() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = (d >> 24) & 1u, tileBf16 = (d >> 22) & 1u;
    if (!tile || !tileBf16) return false;
    // AVX512_BF16 (leaf 7, subleaf 1, EAX bit 5) converts the activations.
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1u)) return false;
    // Linux hands out the 8 KB tile state only on request (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); the
    // grant holds for the whole process.
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}
// AMX-INT8 (leaf 7, EDX bit 25), on top of what probe() grants.
bool probeInt8() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 25) & 1u);
}
#else
bool probe() { return false; }
bool probeInt8() { return false; }
#endif

bool envAllows() {
    const char* e = std::getenv("WB_CPU_AMX");
    if (!e) return true;
    const std::string_view v(e);
    return !(v == "0" || v == "off" || v == "false" || v == "no");
}

std::atomic<bool> g_switch{true};

}  // namespace

bool available() {
    static const bool ok = probe();
    return ok;
}

bool enabled() {
    static const bool env = envAllows();
    return env && available() && g_switch.load(std::memory_order_relaxed) && activeIsa() == Isa::Avx512;
}

bool int8Enabled() {
    static const bool int8 = probeInt8();
    return int8 && enabled();
}

bool setEnabled(bool on) {
    g_switch.store(on, std::memory_order_relaxed);
    return enabled();
}

namespace {
// Block-quantized types whose weights the tile path decodes to BF16 per panel.
bool takesBlocks(DType t) {
    return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q5_0 || t == DType::Q4_K || t == DType::Q6_K;
}
}  // namespace

bool suitsInt8Tiles(const WeightMatrix& w, int64_t m) {
    const int64_t most = w.dtype == DType::Q6_K ? kInt8TileMaxTokensQ6K : kInt8TileMaxTokens;
    return w.interleaved && m >= kMinTokens && m <= most && int8Enabled();
}

bool suits(const WeightMatrix& w, int64_t m) {
    const bool type = w.dtype == DType::BF16 || w.dtype == DType::F16 || (w.dtype == DType::I8 && w.rowScales) ||
                      takesBlocks(w.dtype);
    return type && m >= kMinTokens && w.rows > 0 && w.rows % 16 == 0 && w.cols > 0 &&
           w.cols % 32 == 0 && enabled();
}

#if WB_HAVE_AMX

#pragma GCC push_options
// GCC 12 flags the deliberately undefined source lanes of its gather intrinsics as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,f16c,amx-tile,amx-bf16,amx-int8")

}  // namespace wb::cpu::amx
#include "backend/cpu/interleaved_lines.h"  // compiled for the target above
namespace wb::cpu::amx {

namespace {

// k values per weight chunk held in L1 (a multiple of 256, the K-quants' super-block).
constexpr int64_t kChunkMax = 512;

struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t startRow = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Tiles 0-3: C (16 × 16 f32), 4-5: A (16 weight rows × 32 BF16), 6-7: B (16 pairs × 16 tokens × 2 BF16).
// Every tile is 16 rows of 64 bytes.
void configureTiles() {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

// 16 f32 values less their BF16 rounding (exact in f32), the low half of a two-BF16 split v = hi + lo.
inline __m512 bf16Residual(__m512 v) {
    const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
    return _mm512_sub_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
}

// 32 f32 values as 32 BF16 (round to nearest even), lo in the low half.
inline __m512i bf16Pair(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }

// The index that turns bf16Pair(a, b) (a's 16 values, then b's) into the pairs (a[c], b[c]): dword c of the result.
inline __m512i pairInterleaveIndex() {
    return _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19,
                            3, 18, 2, 17, 1, 16, 0);
}

// Transposes a 16 × 16 matrix of 32-bit elements held in 16 registers (row i in r[i]): 32-bit then 64-bit
// interleaves transpose each 128-bit lane's 4 × 4 blocks, then two rounds of 128-bit lane shuffles move the blocks.
inline void transpose16x16(__m512i (&r)[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // r[4i + j], lane L: column 4L + j of rows 4i .. 4i + 3.
    for (int i = 0; i < 4; ++i) {
        r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // Column 4L + j gathers lane L of r[j], r[4 + j], r[8 + j], r[12 + j].
    for (int j = 0; j < 4; ++j) {
        const __m512i s0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), s1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
        const __m512i s2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44),
                      s3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
        t[j] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        t[4 + j] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
        t[8 + j] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        t[12 + j] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Packs tokens [16·g0, 16·g1) of x (K values a token, row stride ldx floats, mb real tokens; each value times
// `scale`) into B tiles: group g at xp + g·16·K·split (BF16 values) laid out [K·split/2 pairs][16 tokens][2].
// Missing tokens of the last group are zeros. With split 3 (F16 weights, see matmulBf16) each 32 values of a
// token's row become three steps of 32: bf16(x), bf16(x), bf16(x - bf16(x)). Per 32 k values the group's 16
// tokens × 16 pairs are converted in registers and transposed, 16 full-line stores (a scatter per token and k step
// cost 5% of a vision tower's time).
void packTokens(const float* x, int64_t ldx, int64_t K, int split, int64_t mb, uint16_t* xp, int64_t g0, int64_t g1,
                float scale = 1.0f) {
    const int64_t Kv = K * split;
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t g = g0; g < g1; ++g) {
        int32_t* base = reinterpret_cast<int32_t*>(xp + g * 16 * Kv);
        const int valid = int(std::min<int64_t>(16, mb - g * 16));
        for (int64_t k = 0; k < K; k += 32) {
            __m512i v[16], r[16];
            for (int tok = 0; tok < 16; ++tok) {
                if (tok >= valid) {
                    v[tok] = r[tok] = _mm512_setzero_si512();
                    continue;
                }
                const float* row = x + (g * 16 + tok) * ldx + k;
                __m512 lo = _mm512_loadu_ps(row), hi = _mm512_loadu_ps(row + 16);
                if (scale != 1.0f) {
                    lo = _mm512_mul_ps(lo, vs);
                    hi = _mm512_mul_ps(hi, vs);
                }
                v[tok] = bf16Pair(lo, hi);
                if (split == 3) r[tok] = bf16Pair(bf16Residual(lo), bf16Residual(hi));
            }
            transpose16x16(v);
            const int64_t kv = split * k;  // the step's first virtual k
            for (int p = 0; p < 16; ++p) _mm512_storeu_si512(base + (kv / 2 + p) * 16, v[p]);
            if (split == 3) {
                for (int p = 0; p < 16; ++p) _mm512_storeu_si512(base + ((kv + 32) / 2 + p) * 16, v[p]);
                transpose16x16(r);
                for (int p = 0; p < 16; ++p) _mm512_storeu_si512(base + ((kv + 64) / 2 + p) * 16, r[p]);
            }
        }
    }
}

// Copies weight rows [0, 16·ra) × k [k0, k1) (row stride K) into tile order: step s (32 k values), row tile a at
// dst + (2s + a)·512, each tile 16 rows × 64 bytes contiguous. Strided rows would map to few L1 sets (a 4,096-wide
// BF16 row is 8 KB: every row of a block starts in the same set) and cost a TLB entry each.
void copyWeightTiles(const uint16_t* w, int64_t K, int ra, int64_t k0, int64_t k1, uint16_t* dst) {
    for (int64_t k = k0; k < k1; k += 32, dst += 1024)
        for (int a = 0; a < ra; ++a)
            for (int r = 0; r < 16; ++r)
                _mm512_store_si512(dst + a * 512 + r * 32,
                                   _mm512_loadu_si512(w + (16 * int64_t(a) + r) * K + k));
}

// The same for int8 weights (I8: per-row scales applied to the output), each value widened to BF16 exactly
// (|q| <= 127 needs 7 bits; BF16 has 8).
void copyWeightTilesI8(const int8_t* w, int64_t K, int ra, int64_t k0, int64_t k1, uint16_t* dst) {
    for (int64_t k = k0; k < k1; k += 32, dst += 1024)
        for (int a = 0; a < ra; ++a)
            for (int r = 0; r < 16; ++r) {
                const int8_t* src = w + (16 * int64_t(a) + r) * K + k;
                const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
                const __m512 hi =
                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16))));
                _mm512_store_si512(dst + a * 512 + r * 32, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
            }
}

// The same for block-quantized weights (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K): each value decoded to f32 (scale ×
// quant, the mins of the K-quants subtracted) and rounded to BF16. k0 falls on a block boundary (kChunk is a
// multiple of every block's width). The decode is paid once per weight value and token block (up to 256 tokens).

// 32 int8 quants times a scale per 16 (dLo for the first 16, dHi for the rest), as 32 BF16 values.
inline __m512i scaleBlock(__m256i q, float dLo, float dHi) {
    const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))),
                                    _mm512_set1_ps(dLo));
    const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))),
                                    _mm512_set1_ps(dHi));
    return bf16Pair(lo, hi);
}
inline __m512i scaleBlock(__m256i q, float d) { return scaleBlock(q, d, d); }

// 32 unsigned quants (0..15) as d·q - m, 32 BF16 values (a Q4_K sub-block).
inline __m512i scaleMinBlock(__m256i q, float d, float m) {
    const __m512 vd = _mm512_set1_ps(d), vm = _mm512_set1_ps(m);
    const __m512 lo = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q))), vd, vm);
    const __m512 hi =
            _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1))), vd, vm);
    return bf16Pair(lo, hi);
}

// The 6-bit scale and min of sub-block j of a Q4_K super-block (ggml's get_scale_min_k4).
inline void scaleMinK4(int j, const uint8_t* q, int& sc, int& mn) {
    if (j < 4) {
        sc = q[j] & 63;
        mn = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

inline float halfToFloat(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// One row's k values [k0, k1) into `out` (BF16, contiguous).
void decodeRowBf16(DType dtype, const uint8_t* row, int64_t k0, int64_t k1, uint16_t* out, float* scratch) {
    switch (dtype) {
        case DType::Q8_0: {
            const uint8_t* b = row + (k0 / 32) * 34;
            for (int64_t k = k0; k < k1; k += 32, b += 34, out += 32) {
                const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
                _mm512_storeu_si512(out, scaleBlock(q, halfToFloat(b)));
            }
            return;
        }
        case DType::Q4_0: {
            const uint8_t* b = row + (k0 / 32) * 18;
            const __m128i mask = _mm_set1_epi8(0xF);
            const __m256i eight = _mm256_set1_epi8(8);
            for (int64_t k = k0; k < k1; k += 32, b += 18, out += 32) {
                const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
                const __m256i q = _mm256_sub_epi8(
                        _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(p, 4), mask), _mm_and_si128(p, mask)), eight);
                _mm512_storeu_si512(out, scaleBlock(q, halfToFloat(b)));
            }
            return;
        }
        case DType::Q5_0: {
            const uint8_t* b = row + (k0 / 32) * 22;
            const __m128i mask = _mm_set1_epi8(0xF);
            const __m256i sixteen = _mm256_set1_epi8(16);
            for (int64_t k = k0; k < k1; k += 32, b += 22, out += 32) {
                uint32_t qh;
                std::memcpy(&qh, b + 2, 4);
                const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 6));
                __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(p, 4), mask), _mm_and_si128(p, mask));
                q = _mm256_mask_add_epi8(q, __mmask32(qh), q, sixteen);
                _mm512_storeu_si512(out, scaleBlock(_mm256_sub_epi8(q, sixteen), halfToFloat(b)));
            }
            return;
        }
        case DType::Q4_K: {  // 144-byte super-blocks of 256: d, dmin, 12 bytes of 6-bit scales/mins, 128 of nibbles
            const uint8_t* b = row + (k0 / 256) * 144;
            const __m256i mask = _mm256_set1_epi8(0xF);
            for (int64_t k = k0; k < k1; k += 256, b += 144) {
                const float d = halfToFloat(b), dmin = halfToFloat(b + 2);
                const uint8_t* sc = b + 4;
                for (int j = 0; j < 4; ++j, out += 64) {
                    const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * j));
                    int s1, m1, s2, m2;
                    scaleMinK4(2 * j, sc, s1, m1);
                    scaleMinK4(2 * j + 1, sc, s2, m2);
                    _mm512_storeu_si512(out, scaleMinBlock(_mm256_and_si256(p, mask), d * float(s1), dmin * float(m1)));
                    _mm512_storeu_si512(out + 32, scaleMinBlock(_mm256_and_si256(_mm256_srli_epi16(p, 4), mask),
                                                                d * float(s2), dmin * float(m2)));
                }
            }
            return;
        }
        case DType::Q6_K: {  // 210-byte super-blocks of 256: 128 bytes of low nibbles, 64 of high bit pairs,
                             // 16 int8 scales (one per 16 values), d
            const uint8_t* b = row + (k0 / 256) * 210;
            const __m256i mask = _mm256_set1_epi8(0xF), hmask = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
            for (int64_t k = k0; k < k1; k += 256, b += 210) {
                const float d = halfToFloat(b + 208);
                const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
                for (int half = 0; half < 2; ++half, out += 128) {
                    const uint8_t* ql = b + 64 * half;
                    const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
                    const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
                    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * half));
                    const __m256i q[4] = {
                            _mm256_or_si256(_mm256_and_si256(l0, mask), _mm256_and_si256(_mm256_slli_epi16(h, 4), hmask)),
                            _mm256_or_si256(_mm256_and_si256(l1, mask), _mm256_and_si256(_mm256_slli_epi16(h, 2), hmask)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), mask), _mm256_and_si256(h, hmask)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), mask),
                                            _mm256_and_si256(_mm256_srli_epi16(h, 2), hmask))};
                    const int8_t* sc = scales + 8 * half;
                    for (int i = 0; i < 4; ++i)
                        _mm512_storeu_si512(out + 32 * i, scaleBlock(_mm256_sub_epi8(q[i], off), d * float(sc[2 * i]),
                                                                     d * float(sc[2 * i + 1])));
                }
            }
            return;
        }
        default: {
            // Any other block type: the reference decoder to f32, then rounded to BF16.
            const int64_t n = k1 - k0;
            dequantizeRow(dtype, row + dtypeRowBytes(dtype, k0), scratch, n);
            for (int64_t i = 0; i < n; i += 32)
                _mm512_storeu_si512(out + i, bf16Pair(_mm512_loadu_ps(scratch + i), _mm512_loadu_ps(scratch + i + 16)));
            return;
        }
    }
}

// One group of an interleaved Q8_0 or Q4_0 matrix (weight_matrix.h, interleaveBlocks: 16 rows starting at
// `group`), k [k0, k1), into tile order at dst (row r at r·32, a k step of 32 every 1,024). A block's 8 lines
// (Q4_0: its 4 lines' low nibbles, then their high ones, less 8) hold 4 quants of each row per line (dword r of
// line l = values 4l..4l+3 of row r): an 8 × 16 dword transpose brings each row's 32 quants together (unpacks
// within 128-bit lanes, then one two-source permute per pair of rows). A gather per row (tried first) made Q8_0
// prefill 23 % slower than the plain rows.
constexpr int64_t kInterleavedAhead = 2;  // block pairs: Q8_0 pp64 +15-20 % over the plain rows (4 pairs: less)

template <DType kType>
void copyInterleavedTiles(const uint8_t* group, int64_t k0, int64_t k1, uint16_t* dst) {
    constexpr bool kQ4 = kType == DType::Q4_0, kQ5 = kType == DType::Q5_0, kQ4K = kType == DType::Q4_K;
    constexpr bool kQ6K = kType == DType::Q6_K;
    constexpr int64_t kPair = kQ4K   ? kInterleavedQ4KBytes / 4
                              : kQ6K ? kInterleavedQ6KBytes / 4
                                     : interleavedPairBytes(kType);
    constexpr int64_t kBlockLines = kQ4 ? 4 : 8;
    const __m512i flip = _mm512_set1_epi8(char(0x80)), low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    const __m512i lanes01 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i lanes23 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (int64_t k = k0; k < k1; k += 32, dst += 1024) {
        const int64_t b = k / 32;
        const uint8_t* blk = group + b / 2 * kPair;
        const int h = int(b % 2);
        // K-quants: sub-block b % 8 of super-block sb (Q4_K: the low (h = 0) or high nibbles of its chunk's 8 lines;
        // Q6_K: its half's 1,536 bytes, q6kLine).
        const uint8_t* sb = group + b / 8 * (kQ6K ? kInterleavedQ6KBytes : kInterleavedQ4KBytes);
        const uint8_t* q = kQ4K ? sb + 256 + 512 * (b % 8 / 2)
                           : kQ6K ? sb + 288 + 1536 * (b % 8 / 4)
                           : kQ5  ? blk + 64 + 320 * h
                                  : blk + 64 + 64 * kBlockLines * h;
        // The group's bytes are one stream across the k chunks: fetch ahead of it (without this, a quarter of
        // the decode waited on these loads at 16-64 tokens).
        for (int l = 0; l <= kBlockLines; ++l)
            _mm_prefetch(reinterpret_cast<const char*>(q + kInterleavedAhead * kPair + 64 * l), _MM_HINT_T0);
        __m512i L[8];
        if constexpr (kQ4) {
            for (int l = 0; l < 4; ++l) {
                const __m512i v = _mm512_loadu_si512(q + 64 * l);
                L[l] = _mm512_sub_epi8(_mm512_and_si512(v, low4), eight);
                L[l + 4] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4), eight);
            }
        } else if constexpr (kQ4K) {
            for (int l = 0; l < 8; ++l) {
                const __m512i v = _mm512_loadu_si512(q + 64 * l);
                L[l] = _mm512_and_si512(h ? _mm512_srli_epi16(v, 4) : v, low4);
            }
        } else if constexpr (kQ5) {
            for (int l = 0; l < 8; ++l) L[l] = _mm512_sub_epi8(detail::q5Line(q, l), _mm512_set1_epi8(16));
        } else if constexpr (kQ6K) {
            const __m512i off = _mm512_set1_epi8(32);
            for (int l = 0; l < 8; ++l) L[l] = _mm512_sub_epi8(detail::q6kLine(q, int(b % 4), l), off);
        } else {
            for (int l = 0; l < 8; ++l) L[l] = _mm512_xor_si512(_mm512_loadu_si512(q + 64 * l), flip);
        }
        __m512i T[2][4];  // T[half][j], lane i: lines 4·half..4·half+3 of row 4i + j
        for (int hf = 0; hf < 2; ++hf) {
            const __m512i a = _mm512_unpacklo_epi32(L[4 * hf], L[4 * hf + 1]);
            const __m512i bb = _mm512_unpackhi_epi32(L[4 * hf], L[4 * hf + 1]);
            const __m512i c = _mm512_unpacklo_epi32(L[4 * hf + 2], L[4 * hf + 3]);
            const __m512i d = _mm512_unpackhi_epi32(L[4 * hf + 2], L[4 * hf + 3]);
            T[hf][0] = _mm512_unpacklo_epi64(a, c);
            T[hf][1] = _mm512_unpackhi_epi64(a, c);
            T[hf][2] = _mm512_unpacklo_epi64(bb, d);
            T[hf][3] = _mm512_unpackhi_epi64(bb, d);
        }
        for (int j = 0; j < 4; ++j) {
            // rows j, 4 + j (lanes 0, 1) and 8 + j, 12 + j (lanes 2, 3): 32 quants each, in k order.
            const __m512i p01 = _mm512_permutex2var_epi64(T[0][j], lanes01, T[1][j]);
            const __m512i p23 = _mm512_permutex2var_epi64(T[0][j], lanes23, T[1][j]);
            const __m256i rows[4] = {_mm512_castsi512_si256(p01), _mm512_extracti64x4_epi64(p01, 1),
                                     _mm512_castsi512_si256(p23), _mm512_extracti64x4_epi64(p23, 1)};
            for (int i = 0; i < 4; ++i) {
                const int r = 4 * i + j;
                if constexpr (kQ4K) {  // d·sc and dmin·mn of the row's sub-block, as decodeRowBf16 forms them
                    uint8_t scales[12];
                    for (int s = 0; s < 12; ++s) scales[s] = sb[64 + 16 * s + r];
                    int sc, mn;
                    scaleMinK4(int(b % 8), scales, sc, mn);
                    _mm512_store_si512(dst + r * 32, scaleMinBlock(rows[i], halfToFloat(sb + 2 * r) * float(sc),
                                                                   halfToFloat(sb + 32 + 2 * r) * float(mn)));
                } else if constexpr (kQ6K) {  // d·scale of each 16, as decodeRowBf16 forms them
                    const float d = halfToFloat(sb + 2 * r);
                    const auto* scales = reinterpret_cast<const int8_t*>(sb + 32 + r);
                    const int64_t s = b % 8;
                    _mm512_store_si512(dst + r * 32, scaleBlock(rows[i], d * float(scales[16 * (2 * s)]),
                                                                d * float(scales[16 * (2 * s + 1)])));
                } else {
                    _mm512_store_si512(dst + r * 32, scaleBlock(rows[i], halfToFloat(blk + 32 * h + 2 * r)));
                }
            }
        }
    }
}

// Rows [r0, r0 + 16·ra) of w, k [k0, k1), decoded into tile order as copyWeightTiles lays them out.
void copyWeightTilesBlocks(const WeightMatrix& w, int64_t r0, int ra, int64_t k0, int64_t k1, uint16_t* dst) {
    alignas(64) uint16_t row[kChunkMax];
    alignas(64) float scratch[kChunkMax];
    const int64_t rb = w.rowBytes();
    if (w.interleaved) {  // r0 is a multiple of 16: whole groups
        for (int a = 0; a < ra; ++a) {
            const uint8_t* group = w.data + (r0 + 16 * a) * rb;
            if (w.dtype == DType::Q4_0) copyInterleavedTiles<DType::Q4_0>(group, k0, k1, dst + a * 512);
            else if (w.dtype == DType::Q5_0) copyInterleavedTiles<DType::Q5_0>(group, k0, k1, dst + a * 512);
            else if (w.dtype == DType::Q4_K) copyInterleavedTiles<DType::Q4_K>(group, k0, k1, dst + a * 512);
            else if (w.dtype == DType::Q6_K) copyInterleavedTiles<DType::Q6_K>(group, k0, k1, dst + a * 512);
            else copyInterleavedTiles<DType::Q8_0>(group, k0, k1, dst + a * 512);
        }
        return;
    }
    for (int a = 0; a < ra; ++a)
        for (int r = 0; r < 16; ++r) {
            decodeRowBf16(w.dtype, w.data + (r0 + 16 * a + r) * rb, k0, k1, row, scratch);
            uint16_t* d = dst + a * 512 + r * 32;
            for (int64_t k = 0; k < k1 - k0; k += 32, d += 1024)
                _mm512_store_si512(d, _mm512_load_si512(row + k));
        }
}

// F16 weights as two BF16 matrices, w = hi + lo exactly (F16 has 11 significant bits, hi keeps 8, the rest fits
// lo): rows [r0, r0 + 16·ra) over the virtual k range [k0, k1) (3K columns, see matmulBf16: each 32 values of a
// row become the steps hi, lo, hi), laid out as copyWeightTiles lays them out. A whole triple comes from one
// load and one conversion (each step converted on its own, the three parts K apart: F16 16-token prompts at
// 81-82 tokens/s against 100-103, 4-layer file, 2 threads).
void copyWeightTilesF16Split(const uint16_t* w, int64_t K, int ra, int64_t k0, int64_t k1, uint16_t* dst) {
    for (int64_t k = k0; k < k1;) {
        const int part = int(k % 96 / 32);
        const int64_t kr = k / 96 * 32;
        const bool triple = part == 0 && k + 96 <= k1;
        for (int a = 0; a < ra; ++a)
            for (int r = 0; r < 16; ++r) {
                const uint16_t* src = w + (16 * int64_t(a) + r) * K + kr;
                const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
                const __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 16)));
                uint16_t* d = dst + a * 512 + r * 32;
                if (triple) {
                    const __m512i h = bf16Pair(lo, hi);
                    _mm512_store_si512(d, h);
                    _mm512_store_si512(d + 1024, bf16Pair(bf16Residual(lo), bf16Residual(hi)));
                    _mm512_store_si512(d + 2048, h);
                } else {
                    _mm512_store_si512(d, part == 1 ? bf16Pair(bf16Residual(lo), bf16Residual(hi)) : bf16Pair(lo, hi));
                }
            }
        k += triple ? 96 : 32;
        dst += triple ? 3072 : 1024;
    }
}

// One k chunk [k0, k1) of the C tiles of RA (1 or 2) × 16 weight rows and RB (1 or 2) token groups starting at
// xa. The weights come copied tile by tile (see copyWeightTiles): tile (step s, rows 16a) at ab + (2s + a)·512. The
// accumulators start at zero (first chunk) or from `acc` (4 tiles of 16 × 16 f32), and end in `acc` or, after the last
// chunk, transposed into y (token t of group b at y + (16·b + t)·ldy, features contiguous), times rowScale[row] when
// given (int8 weights); tokens at or past `valid` (counted from the first group) are not written.
template <int RA, int RB>
void tileBlock(const uint16_t* ab, int64_t K, const uint16_t* xa, int64_t k0, int64_t k1, bool first, bool last,
               float (*acc)[256], float* y, int64_t ldy, int64_t valid, const float* rowScale) {
    if (first) {
        _tile_zero(0);
        if constexpr (RB == 2) _tile_zero(1);
        if constexpr (RA == 2) _tile_zero(2);
        if constexpr (RA == 2 && RB == 2) _tile_zero(3);
    } else {
        _tile_loadd(0, acc[0], 64);
        if constexpr (RB == 2) _tile_loadd(1, acc[1], 64);
        if constexpr (RA == 2) _tile_loadd(2, acc[2], 64);
        if constexpr (RA == 2 && RB == 2) _tile_loadd(3, acc[3], 64);
    }
    const uint16_t* xb = xa + 16 * K;
    for (int64_t k = k0; k < k1; k += 32, ab += 1024) {
        _tile_loadd(4, ab, 64);
        _tile_loadd(6, xa + k * 16, 64);
        if constexpr (RB == 2) _tile_loadd(7, xb + k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        if constexpr (RB == 2) _tile_dpbf16ps(1, 4, 7);
        if constexpr (RA == 2) {
            _tile_loadd(5, ab + 512, 64);
            _tile_dpbf16ps(2, 5, 6);
            if constexpr (RB == 2) _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, acc[0], 64);
    if constexpr (RB == 2) _tile_stored(1, acc[1], 64);
    if constexpr (RA == 2) _tile_stored(2, acc[2], 64);
    if constexpr (RA == 2 && RB == 2) _tile_stored(3, acc[3], 64);
    if (!last) return;
    // acc[a·2 + b][i][j]: weight row 16a + i, token 16b + j.
    const __m512i column =
            _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    for (int b = 0; b < RB; ++b)
        for (int j = 0; j < 16; ++j) {
            const int64_t tok = 16 * b + j;
            if (tok >= valid) break;
            float* out = y + tok * ldy;
            for (int a = 0; a < RA; ++a) {
                __m512 col = _mm512_i32gather_ps(column, acc[a * 2 + b] + j, 4);
                if (rowScale) col = _mm512_mul_ps(col, _mm512_loadu_ps(rowScale + 16 * a));
                _mm512_storeu_ps(out + 16 * a, col);
            }
        }
}

}  // namespace

void matmulBf16(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
    const int64_t K = w.cols, N = w.rows;
    const bool i8 = w.dtype == DType::I8;
    const bool blocks = takesBlocks(w.dtype);
    // F16 weights keep their precision: w = hi + lo in two BF16 parts and x = xh + xl likewise, and the tiles sum
    // xh·hi + xh·lo + xl·hi as one product over a 3K-long k (each 32 values: [xh, xh, xl] · [hi, lo, hi]): F16
    // weights exact, activations to about 2^-16 (the dropped xl·lo term), three times the tile work of BF16.
    // Rounding the F16 weights to BF16 instead moved a precision comparison's FP16 logits as far as BF16's
    // (tst_glm_parallel).
    const int split = w.dtype == DType::F16 ? 3 : 1;
    const int64_t Kv = K * split;
    const auto* W = reinterpret_cast<const uint16_t*>(w.data);
    const auto* W8 = reinterpret_cast<const int8_t*>(w.data);
    // Tokens per packed block: the block is reused by every weight row, so the larger the fewer passes over the
    // weights (each pass streams all of W); 256 tokens make a pass cost far less than its arithmetic.
    constexpr int64_t kBlockTokens = 256;
    constexpr int64_t kMaxGroups = kBlockTokens / 16;
    constexpr int64_t kChunk = kChunkMax;
    thread_local std::vector<uint16_t> packed;
    const int64_t maxGroups = (std::min(m, kBlockTokens) + 15) / 16;
    if (int64_t(packed.size()) < maxGroups * 16 * Kv) packed.resize(size_t(maxGroups * 16 * Kv));
    uint16_t* xp = packed.data();
    const int64_t rowBlocks = (N + 31) / 32;
    for (int64_t t0 = 0; t0 < m; t0 += kBlockTokens) {
        const int64_t mb = std::min(kBlockTokens, m - t0), groups = (mb + 15) / 16;
        const float* xb = x + t0 * K;
        pool.parallelFor(groups, 1, [&](int64_t g0, int64_t g1, int) { packTokens(xb, K, K, split, mb, xp, g0, g1); });
        std::atomic<int64_t> next{0};
        pool.runOnAll([&](int, int) {
            configureTiles();
            // Per 32-row block, k in chunks of kChunk: the block's weights for one chunk (32 × kChunk BF16 = 32 KB)
            // stay in L1 while every token group of the packed block passes; partial sums wait in `acc`.
            alignas(64) float acc[kMaxGroups / 2][4][256];
            alignas(64) uint16_t ab[kChunk / 32 * 1024];
            for (;;) {
                const int64_t rb = next.fetch_add(1, std::memory_order_relaxed);
                if (rb >= rowBlocks) break;
                const int64_t r0 = rb * 32;
                const bool two = r0 + 32 <= N;
                const float* scales = i8 ? w.rowScales + r0 : nullptr;
                float* yr = y + t0 * N + r0;
                for (int64_t k0 = 0; k0 < Kv; k0 += kChunk) {
                    const int64_t k1 = std::min(Kv, k0 + kChunk);
                    const bool first = k0 == 0, last = k1 == Kv;
                    if (blocks) copyWeightTilesBlocks(w, r0, two ? 2 : 1, k0, k1, ab);
                    else if (i8) copyWeightTilesI8(W8 + r0 * K, K, two ? 2 : 1, k0, k1, ab);
                    else if (split == 3) copyWeightTilesF16Split(W + r0 * K, K, two ? 2 : 1, k0, k1, ab);
                    else copyWeightTiles(W + r0 * K, K, two ? 2 : 1, k0, k1, ab);
                    for (int64_t g = 0; g < groups; g += 2) {
                        const uint16_t* xg = xp + g * 16 * Kv;
                        float* yg = yr + g * 16 * N;
                        const int64_t valid = mb - g * 16;
                        float(*a)[256] = acc[g / 2];
                        if (g + 1 < groups) {
                            if (two) tileBlock<2, 2>(ab, Kv, xg, k0, k1, first, last, a, yg, N, valid, scales);
                            else tileBlock<1, 2>(ab, Kv, xg, k0, k1, first, last, a, yg, N, valid, scales);
                        } else {
                            if (two) tileBlock<2, 1>(ab, Kv, xg, k0, k1, first, last, a, yg, N, valid, scales);
                            else tileBlock<1, 1>(ab, Kv, xg, k0, k1, first, last, a, yg, N, valid, scales);
                        }
                    }
                }
            }
            _tile_release();
        });
    }
}

namespace {

// Interleaved Q8_0, Q4_0 and Q4_K on AMX-INT8 tiles. A Q8_0 block's 8 lines are, as they are stored, the B operand
// of a K = 32 int8 product (line l = row byte-quads for values 4l..4l+3, unsigned q + 128); a Q4_0 block's 4 lines
// become those 8 (low nibbles, then high ones: unsigned q, value q - 8) through an AND and a shift into a 1 KB
// buffer per block pair, and so do a Q4_K chunk's 8 lines for its two sub-blocks (whose scales and mins are applied
// per 32 values, the mins against the tokens' block sums). 16 tokens' int8 activations of the block (cpu_ops'
// quantizeActs, repacked 512 bytes a block: QuantizedActs::tiles) are its A operand: one product per block gives
// the 16 × 16 int32 dots the VNNI kernel builds from 8 vpdpbusd per token. Per block the int32 tile goes through
// memory into the f32 accumulators as the VNNI kernel does it (+ the offset's correction, times the rows' scales
// times the token's), so the result is the same, bit for bit. The products of the next block pair are issued
// before this pair's results are scaled, into the other two C tiles. No weight is converted to BF16: at 16-64 tokens
// the BF16 tiles spent most of their time turning quants into BF16.
// Tiles for K = `k` int8 products (32: a block; 16: half of one, Q6_K).
void configureInt8Tiles(int k = 32) {
    TileConfig cfg;
    for (int t = 0; t < 4; ++t) {  // C: 16 tokens × 16 rows of int32
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    for (int t = 4; t < 6; ++t) {  // A: 16 tokens × k int8
        cfg.colsb[t] = uint16_t(k);
        cfg.rows[t] = 16;
    }
    for (int t = 6; t < 8; ++t) {  // B: k / 4 lines × 64 bytes (k values of the 16 rows)
        cfg.colsb[t] = 64;
        cfg.rows[t] = uint8_t(k / 4);
    }
    _tile_loadconfig(&cfg);
}

// Two products (B operands at b0 and b1, the 16 tokens' activations at a0 and a1, rows 32 bytes apart) into C
// tiles 0-1 (C0 = 0) or 2-3 (C0 = 2), stored to out[2][16][16]: a block pair's (Q8_0, Q4_0, Q4_K), or the two
// 16-value halves of a Q6_K sub-block (configureInt8Tiles(16)).
// (The tile intrinsics take literal register numbers.)
#define WB_INT8_PAIR_PRODUCTS(CA, CB)      \
    _tile_zero(CA);                        \
    _tile_zero(CB);                        \
    _tile_loadd(4, a0, 32);                \
    _tile_loadd(5, a1, 32);                \
    _tile_loadd(6, b0, 64);                \
    _tile_loadd(7, b1, 64);                \
    _tile_dpbsud(CA, 4, 6);                \
    _tile_dpbsud(CB, 5, 7);                \
    _tile_stored(CA, out[0], 64);          \
    _tile_stored(CB, out[1], 64)
template <int C0>
inline void int8PairProducts(const uint8_t* b0, const uint8_t* b1, const int8_t* a0, const int8_t* a1,
                             int32_t (*out)[16][16]) {
    if constexpr (C0 == 0) {
        WB_INT8_PAIR_PRODUCTS(0, 1);
    } else {
        WB_INT8_PAIR_PRODUCTS(2, 3);
    }
}
#undef WB_INT8_PAIR_PRODUCTS

// acc[t] += f32(c[t] + bias[t]) · (scale · d[t]) for the 16 tokens of a C tile (the dots corrected for the stored
// offset, times the rows' scales times the token's; both broadcasts straight from memory: 4 vector operations).
inline void addScaledDots(__m512 (&acc)[16], const int32_t (*c)[16], const int32_t* bias, __m512 scale,
                          const float* d) {
    for (int t = 0; t < 16; ++t) {
        const __m512i dots = _mm512_add_epi32(_mm512_load_si512(c[t]), _mm512_set1_epi32(bias[t]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(scale, _mm512_set1_ps(d[t])), acc[t]);
    }
}

// A block pair's B operands: Q8_0's stored lines, or built into `buf` (2 × 512 bytes): Q5_0's by q5Line, Q4_0's pair is
// two blocks of 4 lines (each line's low nibbles are B rows 0-3 of its block, high nibbles rows 4-7), Q4_K's pair
// p is one 32-byte chunk of super-block p / 4 in 8 lines (low nibbles: sub-block 2·(p % 4), high: the next).
template <DType kType>
inline const uint8_t* pairOperands(const uint8_t* g, int64_t p, uint8_t* buf) {
    if constexpr (kType == DType::Q8_0) {
        return g + p * 1088 + 64;
    } else if constexpr (kType == DType::Q5_0) {  // per block, 8 lines with their fifth bits (q5Line)
        for (int h = 0; h < 2; ++h)
            for (int l = 0; l < 8; ++l)
                _mm512_store_si512(buf + 512 * h + 64 * l, detail::q5Line(g + p * 704 + 64 + 320 * h, l));
        return buf;
    } else {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const uint8_t* lines = kType == DType::Q4_0 ? g + p * 576 + 64
                                                    : g + p / 4 * kInterleavedQ4KBytes + 256 + 512 * (p % 4);
        for (int l = 0; l < 8; ++l) {
            const __m512i v = _mm512_loadu_si512(lines + 64 * l);
            uint8_t* o = kType == DType::Q4_0 ? buf + 512 * (l / 4) + 64 * (l % 4) : buf + 64 * l;
            _mm512_store_si512(o, _mm512_and_si512(v, low4));
            _mm512_store_si512(o + (kType == DType::Q4_0 ? 256 : 512), _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
        }
        return buf;
    }
}

template <DType kType>
void matmulX16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    constexpr bool kQ4K = kType == DType::Q4_K;
    // Bytes of the group per block pair (Q4_K: a quarter of a super-block) and the cache lines to fetch per pair.
    constexpr int64_t kPair = kQ4K ? kInterleavedQ4KBytes / 4 : interleavedPairBytes(kType);
    constexpr int kPairLines = int(kPair / 64);
    const WeightMatrix& w = *job.w;
    const detail::QuantizedActs& qa = job.qa;
    const int64_t rb = w.rowBytes(), pairs = w.cols / 64, ldy = w.rows;
    configureInt8Tiles();
    alignas(64) int32_t prod[2][2][16][16];  // [pair parity][block of the pair][token][row]
    alignas(64) uint8_t split[2][1024];      // 4-bit types: [pair parity] the pair's B operands
    alignas(64) float sc[8][16], mn[8][16];  // Q4_K: the super-block's sub-block scales and mins (d·sc, dmin·mn)
    for (int64_t r = r0; r < r1; r += 16) {
        const uint8_t* g = w.data + r * rb;
        for (int64_t t0 = 0; t0 < job.m; t0 += 16) {  // qa.tiles holds whole groups of 16 tokens (padding zero)
            const int8_t* xq = qa.tiles + t0 * qa.ldq;  // block b's A tile at xq + 512·b
            __m512 acc[16];
            for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
            {
                const uint8_t* b = pairOperands<kType>(g, 0, split[0]);
                int8PairProducts<0>(b, b + 512, xq, xq + 512, prod[0]);
            }
            for (int64_t p = 0; p < pairs; ++p) {
                const uint8_t* blk = g + p * kPair;  // (Q4_K: for the prefetches only)
                if (p + 1 < pairs) {
                    // The group's first pass streams it from memory: fetch 4 KiB ahead. Later passes (more token
                    // groups) find it in L2: fetch the pair after next into L1, and its activations always (the
                    // tile loads wait on L2, in series with the products: 3-7 % at 16 and 128 tokens).
                    if (t0 == 0)
                        for (int l = 0; l < kPairLines; ++l)
                            _mm_prefetch(reinterpret_cast<const char*>(blk + 4096 + 64 * l), _MM_HINT_T0);
                    else
                        for (int l = 0; l < kPairLines; ++l)
                            _mm_prefetch(reinterpret_cast<const char*>(blk + 2 * kPair + 64 * l), _MM_HINT_T0);
                    for (int l = 0; l < 16; ++l)
                        _mm_prefetch(reinterpret_cast<const char*>(xq + (p + 2) * 1024 + 64 * l), _MM_HINT_T0);
                    const uint8_t* b = pairOperands<kType>(g, p + 1, split[(p + 1) % 2]);
                    const int8_t* a = xq + (p + 1) * 1024;
                    if (p % 2 == 0) int8PairProducts<2>(b, b + 512, a, a + 512, prod[1]);
                    else int8PairProducts<0>(b, b + 512, a, a + 512, prod[0]);
                }
                if constexpr (kQ4K) {
                    if (p % 4 == 0) detail::q4kScales16(g + p / 4 * kInterleavedQ4KBytes, sc, mn);
                }
                const int32_t(*c)[16][16] = prod[p % 2];
                for (int h = 0; h < 2; ++h) {
                    const int64_t at = (t0 / 16 * qa.ldb + 2 * p + h) * 16;  // the block's 16 tokens' d and offset
                    const float* d = qa.tileD + at;
                    if constexpr (kQ4K) {
                        // Per token: the dots to f32 times the rows' d·sc times the token's scale, less the rows'
                        // dmin·mn times the token's block sum (5 vector operations).
                        const float* xs = qa.tileXsum + at;
                        const int s = int(2 * (p % 4) + h);
                        const __m512 scale = _mm512_load_ps(sc[s]), mins = _mm512_load_ps(mn[s]);
                        for (int t = 0; t < 16; ++t) {
                            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[h][t])),
                                                     _mm512_mul_ps(scale, _mm512_set1_ps(d[t])), acc[t]);
                            acc[t] = _mm512_fnmadd_ps(mins, _mm512_set1_ps(xs[t]), acc[t]);
                        }
                        continue;
                    }
                    const __m512 scale =
                            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * h)));
                    addScaledDots(acc, c[h], qa.tileBias + at, scale, d);
                }
            }
            for (int64_t t = 0; t < 16 && t0 + t < job.m; ++t) _mm512_storeu_ps(job.y + (t0 + t) * ldy + r, acc[t]);
        }
    }
    _tile_release();
}

// Interleaved Q6_K: its scales change every 16 values, so each sub-block takes two K = 16 products (A: 16 tokens ×
// 16 bytes, every other half row of the block's A tile; B: 4 of the sub-block's 8 lines, built by q6kLine into a
// buffer; configureInt8Tiles(16)), and each 16 × 16 int32 result goes into the f32 accumulators on its own: +
// -32·Σq of the token's 16 values, to f32, times d·scale of the rows times the token's scale. The VNNI kernel's
// steps, bit for bit. The next sub-block's products are issued before this one's results are scaled.
// Sub-block u of a group's row (super-block u / 8) as 8 lines at buf (its B operands: lines 0-3, then 4-7).
inline const uint8_t* q6kOperands(const uint8_t* g, int64_t u, uint8_t* buf) {
    const uint8_t* half = g + u / 8 * kInterleavedQ6KBytes + 288 + 1536 * (u % 8 / 4);
    for (int l = 0; l < 8; ++l) _mm512_store_si512(buf + 64 * l, detail::q6kLine(half, int(u % 4), l));
    return buf;
}

void matmulQ6Kx16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    constexpr int64_t kUnit = kInterleavedQ6KBytes / 8;  // bytes of the group per sub-block (for the prefetches)
    const WeightMatrix& w = *job.w;
    const detail::QuantizedActs& qa = job.qa;
    const int64_t rb = w.rowBytes(), units = w.cols / 32, ldy = w.rows;
    configureInt8Tiles(16);
    alignas(64) int32_t prod[2][2][16][16];  // [unit parity][half][token][row]
    alignas(64) uint8_t ops[2][512];         // [unit parity] the sub-block's B operands
    alignas(64) float sc[16][16];            // the super-block's d·scale per 16 values and row
    for (int64_t r = r0; r < r1; r += 16) {
        const uint8_t* g = w.data + r * rb;
        for (int64_t t0 = 0; t0 < job.m; t0 += 16) {
            const int8_t* xq = qa.tiles + t0 * qa.ldq;  // block b's A tile at xq + 512·b
            __m512 acc[16];
            for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
            {
                const uint8_t* b = q6kOperands(g, 0, ops[0]);
                int8PairProducts<0>(b, b + 256, xq, xq + 16, prod[0]);
            }
            for (int64_t u = 0; u < units; ++u) {
                if (u + 1 < units) {
                    const uint8_t* at = g + u * kUnit;
                    if (t0 == 0)
                        for (int l = 0; l < 7; ++l)
                            _mm_prefetch(reinterpret_cast<const char*>(at + 4096 + 64 * l), _MM_HINT_T0);
                    else
                        for (int l = 0; l < 7; ++l)
                            _mm_prefetch(reinterpret_cast<const char*>(at + 4 * kUnit + 64 * l), _MM_HINT_T0);
                    for (int l = 0; l < 8; ++l)
                        _mm_prefetch(reinterpret_cast<const char*>(xq + (u + 2) * 512 + 64 * l), _MM_HINT_T0);
                    const uint8_t* b = q6kOperands(g, u + 1, ops[(u + 1) % 2]);
                    const int8_t* a = xq + (u + 1) * 512;
                    if (u % 2 == 0) int8PairProducts<2>(b, b + 256, a, a + 16, prod[1]);
                    else int8PairProducts<0>(b, b + 256, a, a + 16, prod[0]);
                }
                if (u % 8 == 0) detail::q6kScales16(g + u / 8 * kInterleavedQ6KBytes, sc);
                const int32_t(*c)[16][16] = prod[u % 2];
                const int64_t at = t0 / 16 * qa.ldb + u;
                const float* d = qa.tileD + at * 16;
                for (int h = 0; h < 2; ++h) {
                    addScaledDots(acc, c[h], qa.tileBias16 + (2 * at + h) * 16, _mm512_load_ps(sc[2 * (u % 8) + h]), d);
                }
            }
            for (int64_t t = 0; t < 16 && t0 + t < job.m; ++t) _mm512_storeu_ps(job.y + (t0 + t) * ldy + r, acc[t]);
        }
    }
    _tile_release();
}

}  // namespace

void matmulQ8_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    matmulX16Tiles<DType::Q8_0>(job, r0, r1);
}
void matmulQ4_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    matmulX16Tiles<DType::Q4_0>(job, r0, r1);
}
void matmulQ5_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    matmulX16Tiles<DType::Q5_0>(job, r0, r1);
}
void matmulQ4_Kx16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    matmulX16Tiles<DType::Q4_K>(job, r0, r1);
}
void matmulQ6_Kx16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1) { matmulQ6Kx16Tiles(job, r0, r1); }

namespace {

// 2^x for 16 lanes of softmax exponents (x <= kLazyRescale, scores already in log2 units), for weights that are rounded
// to BF16 next: x clamped at -120 (2^-120 is still a normal float; masked keys' -inf lands there), n = round(x),
// 2^(x - n) on [-0.5, 0.5] by a degree-3 polynomial fitted for relative error (7.5e-5, against BF16's 2^-9
// rounding of the result), scaled by 2^n. Seven instructions: the degree-6 e^x with its range reduction took
// fourteen, and the exponentials were half of the fused kernel's time.
inline __m512 exp2Softmax(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-120.0f));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.05517167f), f, _mm512_set1_ps(0.24261115f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.69326097f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.99992806f));
    return _mm512_scalef_ps(p, n);
}

constexpr int64_t kKeyBlock = 256;
// How far (log2 units) a block's scores may pass the running max before the fused attention rescales (see attendBf16).
constexpr float kLazyRescale = 8.0f;

}  // namespace

void packKv(int64_t n, int64_t d, const std::function<const float*(int64_t)>& keyRow,
            const std::function<const float*(int64_t)>& valueRow, PackedKv& kv, ThreadPool& pool) {
    kv.n = n;
    kv.d = d;
    kv.np = (n + 31) / 32 * 32;
    const int64_t np = kv.np, dTiles = d / 16;
    // Keys: BF16 rows [np, d] (A tiles of the score product: 16 keys × 32 dims at a stride of d values).
    // Values: transposed and in tile order, tile (key step s of 32, dims 16t) at vt + (s·dTiles + t)·512.
    kv.k.assign(size_t(np * d), 0);
    kv.vt.assign(size_t(np / 32 * dTiles * 512), 0);
    // Per 32 keys: key rows converted 32 values at a time; values per 16 dims as 16 key pairs × 16 dims of
    // (key 2j, key 2j + 1) dwords, transposed in registers into 16 rows of 32 keys (a scalar conversion and a
    // 2-byte scatter per value took 4% of a 1-MP vision tower).
    const __m512i pairUp = pairInterleaveIndex();
    pool.parallelFor(np / 32, 1, [&](int64_t s0, int64_t s1, int) {
        // The accessors may return one reused buffer (F16 caches widen into a per-thread row): each row is copied
        // or converted before the next call.
        alignas(64) float vbuf[32 * 256];
        const float* vrow[32];
        for (int64_t st = s0; st < s1; ++st) {
            const int64_t i0 = st * 32, i1 = std::min(n, i0 + 32);
            for (int64_t i = i0; i < i1; ++i) {
                const float* kr = keyRow(i);
                for (int64_t c = 0; c < d; c += 32)
                    _mm512_storeu_si512(kv.k.data() + i * d + c,
                                        bf16Pair(_mm512_loadu_ps(kr + c), _mm512_loadu_ps(kr + c + 16)));
                float* v = vbuf + (i - i0) * d;
                std::memcpy(v, valueRow(i), size_t(d) * sizeof(float));
                vrow[i - i0] = v;
            }
            for (int64_t t = 0; t < dTiles; ++t) {
                __m512i r[16];
                for (int j = 0; j < 16; ++j) {
                    const int64_t a = i0 + 2 * j, b = a + 1;
                    const __m512 va = a < i1 ? _mm512_loadu_ps(vrow[2 * j] + 16 * t) : _mm512_setzero_ps();
                    const __m512 vb = b < i1 ? _mm512_loadu_ps(vrow[2 * j + 1] + 16 * t) : _mm512_setzero_ps();
                    r[j] = _mm512_permutexvar_epi16(pairUp, bf16Pair(va, vb));  // dword c: (va[c], vb[c])
                }
                transpose16x16(r);  // r[c]: dim 16t + c over the 16 key pairs
                uint16_t* dst = kv.vt.data() + (st * dTiles + t) * 512;
                for (int c = 0; c < 16; ++c) _mm512_storeu_si512(dst + c * 32, r[c]);
            }
        }
    });
}

void attendBf16(const float* q, int64_t qStride, int64_t numQ, float scale, const PackedKv& kv, int64_t firstPos,
                float* out, int64_t outStride, ThreadPool& pool) {
    const int64_t n = kv.n, d = kv.d, dTiles = d / 16, dSteps = d / 32, groups = (numQ + 15) / 16;
    if (numQ <= 0 || n <= 0) return;
    const bool causal = firstPos >= 0;
    // Queries: scaled (by log2 e too: the scores come out in log2 units for exp2Softmax), pair-interleaved per
    // group of 16 (B tiles), group g at qb + g·16·d.
    std::vector<uint16_t> qb(size_t(groups * 16 * d));
    const float qScale = scale * 1.44269504088896341f;
    // The GEMM's token packing, with the queries' row stride and scale (d is a multiple of 32).
    pool.parallelFor(groups, 1, [&](int64_t g0, int64_t g1, int) {
        packTokens(q, qStride, d, 1, numQ, qb.data(), g0, g1, qScale);
    });
    const __m512i interleave = pairInterleaveIndex();
    const __m512i column =
            _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // Two query groups at a time where there are two: each K and V tile load feeds both groups' products. And key
    // blocks outside, query groups inside, over a chunk of up to 16 groups: a block's keys and values (64 KB each
    // at head width 128) stay in L2 while every group of the chunk passes, where one group (or pair) at a time
    // re-read all n keys and values from L3 (at 12,432 keys, 6 MB per group: the tile loads, not the products,
    // set the pace). The groups' running max, sum and output wait in memory between blocks.
    struct GroupState {
        alignas(64) float O[256][16];
        __m512 m, l;
        __m512i qpos;
        int64_t g, seen;
    };
    struct PairScratch {
        alignas(64) float S[2][kKeyBlock][16];
        alignas(64) uint16_t P[2][kKeyBlock / 2][32];
    };
    constexpr int64_t kPairsPerChunk = 8;
    const int64_t pairs = (groups + 1) / 2, chunks = (pairs + kPairsPerChunk - 1) / kPairsPerChunk;
    pool.parallelFor(chunks, 1, [&](int64_t c0, int64_t c1, int) {
        configureTiles();
        thread_local std::vector<GroupState> states;
        if (states.size() < size_t(2 * kPairsPerChunk)) states.resize(size_t(2 * kPairsPerChunk));
        PairScratch ps;  // 48 KB of scores and weights for the pair in hand (the 16 groups' state, 260 KB, is not)
        for (int64_t c = c0; c < c1; ++c) {
            const int64_t pBegin = c * kPairsPerChunk, pEnd = std::min(pairs, pBegin + kPairsPerChunk);
            const int64_t gBegin = pBegin * 2, gEnd = std::min(groups, pEnd * 2);
            int64_t seenMax = 0;
            for (int64_t g = gBegin; g < gEnd; ++g) {
                GroupState& gs = states[size_t(g - gBegin)];
                gs.g = g;
                // Keys this group sees: all, or (causal) up to its last query's position; lane t's query sits at
                // firstPos + 16g + t and sees keys at or before it.
                gs.seen = causal ? std::min(n, firstPos + std::min(numQ, g * 16 + 16)) : n;
                seenMax = std::max(seenMax, gs.seen);
                gs.qpos = _mm512_add_epi32(_mm512_set1_epi32(int32_t(causal ? firstPos + g * 16 : 0)), lane);
                gs.m = _mm512_set1_ps(-INFINITY);
                gs.l = _mm512_setzero_ps();
                for (int64_t ch = 0; ch < d; ++ch) _mm512_store_ps(gs.O[ch], _mm512_setzero_ps());
            }
            for (int64_t k0 = 0; k0 < (seenMax + 31) / 32 * 32; k0 += kKeyBlock) {
                for (int64_t pi = pBegin; pi < pEnd; ++pi) {
                    const int64_t gFirst = pi * 2;
                    const int G = gFirst + 1 < groups ? 2 : 1;
                    GroupState* gsp[2] = {&states[size_t(gFirst - gBegin)],
                                          &states[size_t(gFirst - gBegin + (G == 2 ? 1 : 0))]};
                    const int64_t pairSeen = gsp[G - 1]->seen;  // the later group sees at least as far
                    const int64_t nk = std::min(kKeyBlock, (pairSeen + 31) / 32 * 32 - k0);  // a multiple of 32
                    if (nk <= 0) continue;
                    const uint16_t* qg0 = qb.data() + gFirst * 16 * d;
                    const uint16_t* qg1 = qg0 + 16 * d;  // read only when G == 2
                    // Scores of 32 keys at a time: C tiles [16 keys][16 queries], 0-1 for the first group, 2-3 for
                    // the second, sharing the two K tiles of each step.
                    for (int64_t kt = 0; kt < nk; kt += 32) {
                        _tile_zero(0);
                        _tile_zero(1);
                        if (G == 2) {
                            _tile_zero(2);
                            _tile_zero(3);
                        }
                        const uint16_t* ka = kv.k.data() + (k0 + kt) * d;
                        for (int64_t s = 0; s < dSteps; ++s) {
                            _tile_loadd(4, ka + s * 32, d * 2);
                            _tile_loadd(5, ka + 16 * d + s * 32, d * 2);
                            _tile_loadd(6, qg0 + s * 512, 64);
                            _tile_dpbf16ps(0, 4, 6);
                            _tile_dpbf16ps(1, 5, 6);
                            if (G == 2) {
                                _tile_loadd(7, qg1 + s * 512, 64);
                                _tile_dpbf16ps(2, 4, 7);
                                _tile_dpbf16ps(3, 5, 7);
                            }
                        }
                        _tile_stored(0, ps.S[0][kt], 64);
                        _tile_stored(1, ps.S[0][kt + 16], 64);
                        if (G == 2) {
                            _tile_stored(2, ps.S[1][kt], 64);
                            _tile_stored(3, ps.S[1][kt + 16], 64);
                        }
                    }
                    for (int j = 0; j < G; ++j) {
                        GroupState& gs = *gsp[j];
                        auto& S = ps.S[j];
                        for (int64_t r = std::max<int64_t>(0, gs.seen - k0); r < nk; ++r)
                            _mm512_store_ps(S[r], _mm512_set1_ps(-INFINITY));
                        if (causal && k0 + nk > firstPos + gs.g * 16)  // keys past some lane's position: mask there
                            for (int64_t r = std::max<int64_t>(0, firstPos + gs.g * 16 - k0);
                                 r < std::min(nk, gs.seen - k0); ++r) {
                                const __mmask16 future =
                                        _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(int32_t(k0 + r)), gs.qpos);
                                _mm512_store_ps(S[r], _mm512_mask_mov_ps(_mm512_load_ps(S[r]), future,
                                                                         _mm512_set1_ps(-INFINITY)));
                            }
                        // Online softmax per query lane, rescaled lazily: after a group's first block the weights
                        // are taken against the running max m as it stands, the block's own max found in the same
                        // pass; only when some lane's block max passes m + kLazyRescale is m raised, the output and
                        // sum rescaled and the weights taken again. Weights up to 2^kLazyRescale are exact enough
                        // (BF16 keeps its relative precision, the f32 sums their range), and a max pass over the
                        // scores and a multiply of the whole output per block are saved.
                        const auto weigh = [&](__m512 m, __m512& blockMax) {
                            __m512 sum = _mm512_setzero_ps(), bm = blockMax;
                            for (int64_t r = 0; r < nk; r += 2) {
                                const __m512 s0 = _mm512_load_ps(S[r]), s1 = _mm512_load_ps(S[r + 1]);
                                bm = _mm512_max_ps(bm, _mm512_max_ps(s0, s1));
                                const __m512 e0 = exp2Softmax(_mm512_sub_ps(s0, m));
                                const __m512 e1 = exp2Softmax(_mm512_sub_ps(s1, m));
                                sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
                                // B tile rows: key pair r/2, each query's two weights side by side.
                                const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0));
                                _mm512_store_si512(ps.P[j][r / 2], _mm512_permutexvar_epi16(interleave, both));
                            }
                            blockMax = bm;
                            return sum;
                        };
                        if (k0 == 0) {  // the first block: m from its scores; the output and sum are still zero
                            __m512 mx = _mm512_set1_ps(-INFINITY);
                            for (int64_t r = 0; r < nk; ++r) mx = _mm512_max_ps(mx, _mm512_load_ps(S[r]));
                            __m512 unused = mx;
                            gs.l = weigh(mx, unused);
                            gs.m = mx;
                        } else {
                            __m512 bm = _mm512_set1_ps(-INFINITY);
                            __m512 sum = weigh(gs.m, bm);
                            const __mmask16 over = _mm512_cmp_ps_mask(
                                    bm, _mm512_add_ps(gs.m, _mm512_set1_ps(kLazyRescale)), _CMP_GT_OQ);
                            if (over == 0) {
                                gs.l = _mm512_add_ps(gs.l, sum);
                            } else {
                                const __m512 mx = _mm512_max_ps(gs.m, bm);
                                const __m512 alpha = exp2Softmax(_mm512_sub_ps(gs.m, mx));
                                sum = weigh(mx, bm);
                                gs.l = _mm512_fmadd_ps(gs.l, alpha, sum);
                                gs.m = mx;
                                for (int64_t ch = 0; ch < d; ++ch)
                                    _mm512_store_ps(gs.O[ch], _mm512_mul_ps(_mm512_load_ps(gs.O[ch]), alpha));
                            }
                        }
                    }
                    // O[dims][queries] += Vᵀ tile · P, 16 dims at a time; each V tile serves both groups.
                    for (int64_t t = 0; t < dTiles; ++t) {
                        _tile_loadd(0, gsp[0]->O[t * 16], 64);
                        if (G == 2) _tile_loadd(1, gsp[1]->O[t * 16], 64);
                        for (int64_t s = 0; s < nk / 32; ++s) {
                            _tile_loadd(4, kv.vt.data() + ((k0 / 32 + s) * dTiles + t) * 512, 64);
                            _tile_loadd(6, ps.P[0][s * 16], 64);
                            _tile_dpbf16ps(0, 4, 6);
                            if (G == 2) {
                                _tile_loadd(7, ps.P[1][s * 16], 64);
                                _tile_dpbf16ps(1, 4, 7);
                            }
                        }
                        _tile_stored(0, gsp[0]->O[t * 16], 64);
                        if (G == 2) _tile_stored(1, gsp[1]->O[t * 16], 64);
                    }
                }
            }
            // out[query][dim] = O[dim][query] / l[query].
            for (int64_t g = gBegin; g < gEnd; ++g) {
                const GroupState& gs = states[size_t(g - gBegin)];
                alignas(64) float inv[16];
                _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), gs.l));
                for (int64_t t = 0; t < 16 && g * 16 + t < numQ; ++t) {
                    float* o = out + (g * 16 + t) * outStride;
                    const __m512 sc = _mm512_set1_ps(inv[t]);
                    for (int64_t ch = 0; ch < d; ch += 16)
                        _mm512_storeu_ps(o + ch, _mm512_mul_ps(_mm512_i32gather_ps(column, &gs.O[ch][t], 4), sc));
                }
            }
        }
        _tile_release();
    });
}

void attentionBf16(const float* q, int64_t qStride, const float* k, int64_t kStride, const float* v, int64_t vStride,
                   int64_t n, int64_t d, float scale, float* out, int64_t outStride, ThreadPool& pool) {
    if (n <= 0) return;
    PackedKv kv;
    packKv(n, d, [&](int64_t i) { return k + i * kStride; }, [&](int64_t i) { return v + i * vStride; }, kv, pool);
    attendBf16(q, qStride, n, scale, kv, -1, out, outStride, pool);
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

void matmulBf16(const WeightMatrix&, const float*, int64_t, float*, ThreadPool&) { std::abort(); }
void matmulQ8_0x16Tiles(const detail::MatmulJob&, int64_t, int64_t) { std::abort(); }
void matmulQ4_0x16Tiles(const detail::MatmulJob&, int64_t, int64_t) { std::abort(); }
void matmulQ5_0x16Tiles(const detail::MatmulJob&, int64_t, int64_t) { std::abort(); }
void matmulQ4_Kx16Tiles(const detail::MatmulJob&, int64_t, int64_t) { std::abort(); }
void matmulQ6_Kx16Tiles(const detail::MatmulJob&, int64_t, int64_t) { std::abort(); }
void attentionBf16(const float*, int64_t, const float*, int64_t, const float*, int64_t, int64_t, int64_t, float,
                   float*, int64_t, ThreadPool&) {
    std::abort();
}
void packKv(int64_t, int64_t, const std::function<const float*(int64_t)>&, const std::function<const float*(int64_t)>&,
            PackedKv&, ThreadPool&) {
    std::abort();
}
void attendBf16(const float*, int64_t, int64_t, float, const PackedKv&, int64_t, float*, int64_t, ThreadPool&) {
    std::abort();
}

#endif

}  // namespace wb::cpu::amx
