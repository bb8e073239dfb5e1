#include "backend/cpu/amx_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "backend/cpu/cpu_ops.h"

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
#else
bool probe() { return false; }
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

bool setEnabled(bool on) {
    g_switch.store(on, std::memory_order_relaxed);
    return enabled();
}

bool suits(const WeightMatrix& w, int64_t m) {
    return w.dtype == DType::BF16 && m >= kMinTokens && w.rows > 0 && w.rows % 16 == 0 && w.cols > 0 &&
           w.cols % 32 == 0 && enabled();
}

#if WB_HAVE_AMX

#pragma GCC push_options
// GCC 12 flags the deliberately undefined source lanes of its gather intrinsics as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")

namespace {

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

// Packs tokens [16·g0, 16·g1) of x (row stride K floats, mb real tokens) into B tiles: group g at xp + g·16·K
// (BF16 values) laid out [K/2 pairs][16 tokens][2]. Missing tokens of the last group are zeros.
void packTokens(const float* x, int64_t K, int64_t mb, uint16_t* xp, int64_t g0, int64_t g1) {
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(16));
    for (int64_t g = g0; g < g1; ++g) {
        uint16_t* base = xp + g * 16 * K;
        for (int64_t tok = 0; tok < 16; ++tok) {
            const int64_t t = g * 16 + tok;
            int32_t* dst = reinterpret_cast<int32_t*>(base) + tok;
            if (t >= mb) {
                for (int64_t kk = 0; kk < K / 2; ++kk) dst[kk * 16] = 0;
                continue;
            }
            const float* row = x + t * K;
            for (int64_t k = 0; k < K; k += 32) {
                const __m512 lo = _mm512_loadu_ps(row + k), hi = _mm512_loadu_ps(row + k + 16);
                const __m512i v = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_i32scatter_epi32(dst + (k / 2) * 16, index, v, 4);
            }
        }
    }
}

// One k chunk [k0, k1) of the C tiles of RA (1 or 2) × 16 weight rows starting at w and RB (1 or 2) token groups
// starting at xa. The accumulators start at zero (first chunk) or from `acc` (4 tiles of 16 × 16 f32), and end in
// `acc` or, after the last chunk, transposed into y (token t of group b at y + (16·b + t)·ldy, features
// contiguous); tokens at or past `valid` (counted from the first group) are not written.
template <int RA, int RB>
void tileBlock(const uint16_t* w, int64_t K, const uint16_t* xa, int64_t k0, int64_t k1, bool first, bool last,
               float (*acc)[256], float* y, int64_t ldy, int64_t valid) {
    const int64_t ldw = K * 2;
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
    for (int64_t k = k0; k < k1; k += 32) {
        _tile_loadd(4, w + k, ldw);
        _tile_loadd(6, xa + k * 16, 64);
        if constexpr (RB == 2) _tile_loadd(7, xb + k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        if constexpr (RB == 2) _tile_dpbf16ps(1, 4, 7);
        if constexpr (RA == 2) {
            _tile_loadd(5, w + 16 * K + k, ldw);
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
            for (int a = 0; a < RA; ++a) _mm512_storeu_ps(out + 16 * a, _mm512_i32gather_ps(column, acc[a * 2 + b] + j, 4));
        }
}

}  // namespace

void matmulBf16(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
    const int64_t K = w.cols, N = w.rows;
    const auto* W = reinterpret_cast<const uint16_t*>(w.data);
    // Tokens per packed block: the block is reused by every weight row, so the larger the fewer passes over the
    // weights (each pass streams all of W); 256 tokens make a pass cost far less than its arithmetic.
    constexpr int64_t kBlockTokens = 256;
    constexpr int64_t kMaxGroups = kBlockTokens / 16;
    constexpr int64_t kChunk = 512;
    thread_local std::vector<uint16_t> packed;
    const int64_t maxGroups = (std::min(m, kBlockTokens) + 15) / 16;
    if (int64_t(packed.size()) < maxGroups * 16 * K) packed.resize(size_t(maxGroups * 16 * K));
    uint16_t* xp = packed.data();
    const int64_t rowBlocks = (N + 31) / 32;
    for (int64_t t0 = 0; t0 < m; t0 += kBlockTokens) {
        const int64_t mb = std::min(kBlockTokens, m - t0), groups = (mb + 15) / 16;
        const float* xb = x + t0 * K;
        pool.parallelFor(groups, 1, [&](int64_t g0, int64_t g1, int) { packTokens(xb, K, mb, xp, g0, g1); });
        std::atomic<int64_t> next{0};
        pool.runOnAll([&](int, int) {
            configureTiles();
            // Per 32-row block, k in chunks of kChunk: the block's weights for one chunk (32 × kChunk BF16 = 32 KB)
            // stay in L1 while every token group of the packed block passes; partial sums wait in `acc`.
            alignas(64) float acc[kMaxGroups / 2][4][256];
            for (;;) {
                const int64_t rb = next.fetch_add(1, std::memory_order_relaxed);
                if (rb >= rowBlocks) break;
                const int64_t r0 = rb * 32;
                const bool two = r0 + 32 <= N;
                const uint16_t* wr = W + r0 * K;
                float* yr = y + t0 * N + r0;
                for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
                    const int64_t k1 = std::min(K, k0 + kChunk);
                    const bool first = k0 == 0, last = k1 == K;
                    for (int64_t g = 0; g < groups; g += 2) {
                        const uint16_t* xg = xp + g * 16 * K;
                        float* yg = yr + g * 16 * N;
                        const int64_t valid = mb - g * 16;
                        float(*a)[256] = acc[g / 2];
                        if (g + 1 < groups) {
                            if (two) tileBlock<2, 2>(wr, K, xg, k0, k1, first, last, a, yg, N, valid);
                            else tileBlock<1, 2>(wr, K, xg, k0, k1, first, last, a, yg, N, valid);
                        } else {
                            if (two) tileBlock<2, 1>(wr, K, xg, k0, k1, first, last, a, yg, N, valid);
                            else tileBlock<1, 1>(wr, K, xg, k0, k1, first, last, a, yg, N, valid);
                        }
                    }
                }
            }
            _tile_release();
        });
    }
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

void matmulBf16(const WeightMatrix&, const float*, int64_t, float*, ThreadPool&) { std::abort(); }

#endif

}  // namespace wb::cpu::amx
