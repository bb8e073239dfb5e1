#include "backend/cpu/cpu_ops.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_kernels.h"

namespace wb::cpu {

namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang before 16 does not know "f16c" in __builtin_cpu_supports, and the
// fuzz build (docs/FUZZING.md) is clang 14.
bool hasF16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}

Isa hardwareIsa() {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && hasF16c();
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vnni");
    return avx512 ? Isa::Avx512 : avx2 ? Isa::Avx2 : Isa::Scalar;
}

Isa probeIsa() {
    const Isa best = hardwareIsa();
    // The override can only lower the level: forcing an ISA the CPU lacks would crash on the first kernel.
    if (const char* env = std::getenv("WB_CPU_ISA")) {
        const std::string_view v(env);
        Isa want = best;
        if (v == "scalar") want = Isa::Scalar;
        else if (v == "avx2") want = Isa::Avx2;
        else if (v == "avx512") want = Isa::Avx512;
        return std::min(want, best);
    }
    return best;
}

const detail::KernelTable& tableFor(Isa isa) {
    switch (isa) {
        case Isa::Avx512: return detail::avx512Kernels();
        case Isa::Avx2: return detail::avx2Kernels();
        default: return detail::scalarKernels();
    }
}

std::atomic<const detail::KernelTable*> g_kernels{nullptr};
std::atomic<Isa> g_isa{Isa::Scalar};

const detail::KernelTable& kernels() {
    const detail::KernelTable* t = g_kernels.load(std::memory_order_acquire);
    if (t) return *t;
    setIsa(detectedIsa());
    return *g_kernels.load(std::memory_order_acquire);
}

// Per-caller scratch for quantized activations: grown on demand, never freed, so steady-state matmuls allocate
// nothing.
struct ActScratch {
    std::vector<int8_t> q;
    std::vector<float> d;
    std::vector<int32_t> bias;
    std::vector<float> xsum;
    std::vector<int32_t> bias16;
    std::vector<int8_t> tiles;
    std::vector<float> tileD;
    std::vector<int32_t> tileBias;
    std::vector<float> tileXsum;
    std::vector<int32_t> tileBias16;
};

bool usesQuantizedActs(DType t) {
    return t == DType::Q8_0 || t == DType::I8 || t == DType::Q4_0 || t == DType::Q5_0 || t == DType::Q4_K ||
           t == DType::Q6_K;
}

// An interleaved matrix on an ISA without its kernel (tests force scalar / AVX2): each row decoded to f32,
// against the same int8 activations as the integer kernels (so every ISA computes the same products).
void matmulInterleavedFallback(const detail::MatmulJob& job, int64_t r0, int64_t r1) {
    const WeightMatrix& w = *job.w;
    thread_local std::vector<float> row;
    row.resize(size_t(w.cols));
    const detail::QuantizedActs& qa = job.qa;
    for (int64_t r = r0; r < r1; ++r) {
        dequantizeMatrixRow(w, r, row.data());
        for (int64_t t = 0; t < job.m; ++t) {
            float sum = 0.0f;
            for (int64_t b = 0; b < w.cols / 32; ++b) {
                float block = 0.0f;
                for (int64_t i = 0; i < 32; ++i) block += row[size_t(b * 32 + i)] * float(qa.q[t * qa.ldq + b * 32 + i]);
                sum += block * qa.d[t * qa.ldb + b];
            }
            job.y[t * w.rows + r] = sum;
        }
    }
}

}  // namespace

bool interleavesBlocks() {
    // WB_CPU_INTERLEAVE=0 keeps the plain layout (to compare the two kernels in one build).
    static const bool allowed = [] {
        const char* e = std::getenv("WB_CPU_INTERLEAVE");
        const std::string_view v = e ? e : "";
        return !(v == "0" || v == "off" || v == "false" || v == "no");
    }();
    const detail::KernelTable& k = kernels();
    return allowed && k.matmulQ8_0x16 && k.matmulQ4_0x16 && k.matmulQ5_0x16 && k.matmulQ4_Kx16 && k.matmulQ6_Kx16;
}

Isa detectedIsa() {
    static const Isa isa = probeIsa();
    return isa;
}

Isa setIsa(Isa isa) {
    static const Isa hw = hardwareIsa();
    isa = std::min(isa, hw);
    g_isa.store(isa, std::memory_order_relaxed);
    g_kernels.store(&tableFor(isa), std::memory_order_release);
    return isa;
}

Isa activeIsa() {
    kernels();
    return g_isa.load(std::memory_order_relaxed);
}

const char* isaName(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
    if (m <= 0 || w.rows <= 0) return;
    // BF16 weights and many tokens (prefill, the vision tower, attention's products): AMX tiles where present.
    // Interleaved block types at 16-64 tokens: their quants straight into AMX-INT8 tiles (below, a row-range kernel).
    const bool int8Tiles = amx::suitsInt8Tiles(w, m);
    if (!int8Tiles && amx::suits(w, m)) {
        amx::matmulBf16(w, x, m, y, pool);
        return;
    }
    const detail::KernelTable& k = kernels();
    detail::MatmulJob job;
    job.w = &w;
    job.x = x;
    job.m = m;
    job.y = y;

    detail::RowRangeFn fn = nullptr;
    switch (w.dtype) {
        case DType::F32: fn = k.matmulF32; break;
        case DType::F16: fn = k.matmulF16; break;
        case DType::BF16: fn = k.matmulBF16; break;
        case DType::Q8_0: fn = k.matmulQ8_0; break;
        case DType::I8: fn = k.matmulI8; break;
        case DType::Q4_0: fn = k.matmulQ4_0; break;
        case DType::Q5_0: fn = k.matmulQ5_0; break;
        case DType::Q4_K: fn = k.matmulQ4_K; break;
        case DType::Q6_K: fn = k.matmulQ6_K; break;
        default: fn = k.matmulPanel; break;
    }
    if (w.interleaved) {
        switch (w.dtype) {
            case DType::Q4_0: fn = int8Tiles ? amx::matmulQ4_0x16Tiles : k.matmulQ4_0x16; break;
            case DType::Q5_0: fn = int8Tiles ? amx::matmulQ5_0x16Tiles : k.matmulQ5_0x16; break;
            case DType::Q4_K: fn = int8Tiles ? amx::matmulQ4_Kx16Tiles : k.matmulQ4_Kx16; break;
            case DType::Q6_K: fn = int8Tiles ? amx::matmulQ6_Kx16Tiles : k.matmulQ6_Kx16; break;
            default: fn = int8Tiles ? amx::matmulQ8_0x16Tiles : k.matmulQ8_0x16; break;
        }
        if (!fn) fn = matmulInterleavedFallback;
    }

    const int nThreads = pool.size();
    if (!fn) fn = k.matmulPanel;
    if (fn != k.matmulPanel && usesQuantizedActs(w.dtype)) {
        thread_local ActScratch scratch;
        ActScratch& s = scratch;  // a lambda naming the thread_local would see each worker's own instance
        const int64_t ldq = (w.cols + 63) / 64 * 64;
        const int64_t ldb = ldq / 32;
        if (int64_t(s.q.size()) < m * ldq) s.q.resize(size_t(m * ldq));
        if (int64_t(s.d.size()) < m * ldb) {
            s.d.resize(size_t(m * ldb));
            s.bias.resize(size_t(m * ldb));
        }
        job.qa = {s.q.data(), s.d.data(), s.bias.data(), ldq, ldb};
        if (m >= 4 * nThreads && nThreads > 1) {
            pool.parallelFor(m, 1, [&s, &k, x, &w, ldq, ldb](int64_t t0, int64_t t1, int) {
                k.quantizeActs(x + t0 * w.cols, t1 - t0, w.cols, s.q.data() + t0 * ldq, s.d.data() + t0 * ldb,
                                     s.bias.data() + t0 * ldb, ldq, ldb);
            });
        } else {
            k.quantizeActs(x, m, w.cols, s.q.data(), s.d.data(), s.bias.data(), ldq, ldb);
        }
        // O(m·cols) scalar passes: small next to the O(rows·m·cols) matmul even at m = 1.
        if (w.dtype == DType::Q4_K) {
            if (int64_t(s.xsum.size()) < m * ldb) s.xsum.resize(size_t(m * ldb));
            for (int64_t i = 0; i < m * ldb; ++i) s.xsum[size_t(i)] = s.d[size_t(i)] * float(-s.bias[size_t(i)] / 16);
            job.qa.xsum = s.xsum.data();
        } else if (w.dtype == DType::Q6_K) {
            const int64_t n16 = m * ldq / 16;
            if (int64_t(s.bias16.size()) < n16) s.bias16.resize(size_t(n16));
            for (int64_t g = 0; g < n16; ++g) {
                int32_t sum = 0;
                for (int l = 0; l < 16; ++l) sum += s.q[size_t(g * 16 + l)];
                s.bias16[size_t(g)] = -8 * sum;
            }
            job.qa.bias16 = s.bias16.data();
        }
        if (int8Tiles) {  // each block's 16 × 32 bytes in a row (row-major, an A tile touched 16 cache lines)
            // Whole groups of 16 tokens: the last one's missing tokens are zeros (never stored back).
            const int64_t rows = (m + 15) / 16 * 16;
            if (int64_t(s.tiles.size()) < rows * ldq) s.tiles.resize(size_t(rows * ldq));
            if (int64_t(s.tileD.size()) < rows * ldb) {
                s.tileD.resize(size_t(rows * ldb));
                s.tileBias.resize(size_t(rows * ldb));
                s.tileXsum.resize(size_t(rows * ldb));
                s.tileBias16.resize(size_t(2 * rows * ldb));
            }
            for (int64_t g = 0; g < rows / 16; ++g)
                for (int64_t t = 0; t < 16; ++t)
                    for (int64_t b = 0; b < ldb; ++b) {
                        const int64_t from = (g * 16 + t) * ldb + b, to = (g * ldb + b) * 16 + t;
                        int8_t* dst = s.tiles.data() + g * 16 * ldq + b * 512 + t * 32;
                        const bool real = g * 16 + t < m;
                        if (real) std::memcpy(dst, s.q.data() + from * 32, 32);
                        else std::memset(dst, 0, 32);
                        s.tileD[size_t(to)] = real ? s.d[size_t(from)] : 0.0f;
                        const int32_t bias = real ? s.bias[size_t(from)] : 0;  // (padding: past the scratch's m rows)
                        s.tileBias[size_t(to)] = !real                       ? 0
                                                 : w.dtype == DType::Q4_0 ? bias / 2
                                                 : w.dtype == DType::Q5_0 ? bias
                                                                          : 8 * bias;
                        // The sums above, in tile order (Q4_K's xsum; Q6_K's offset per 16 values, -32·Σq).
                        if (w.dtype == DType::Q4_K) s.tileXsum[size_t(to)] = real ? s.xsum[size_t(from)] : 0.0f;
                        for (int h = 0; h < 2 && w.dtype == DType::Q6_K; ++h)
                            s.tileBias16[size_t(2 * to - t + 16 * h)] = real ? 4 * s.bias16[size_t(2 * from + h)] : 0;
                    }
            job.qa.tiles = s.tiles.data();
            job.qa.tileD = s.tileD.data();
            job.qa.tileBias = s.tileBias.data();
            job.qa.tileXsum = s.tileXsum.data();
            job.qa.tileBias16 = s.tileBias16.data();
        }
    }

    // Split output rows in chunks of 16 (whole tiles, and whole cache lines of y per thread). A few chunks per
    // thread, taken dynamically, absorb a core that is slowed down by other work on the machine.
    constexpr int64_t kRowAlign = 16;
    const double work = double(w.rows) * double(w.cols) * double(m);
    int threads = nThreads;
    if (work < 64.0 * 1024) threads = 1;  // waking workers costs more than it saves
    const int64_t units = (w.rows + kRowAlign - 1) / kRowAlign;
    threads = int(std::min<int64_t>(threads, units));
    if (threads <= 1) {
        fn(job, 0, w.rows);
        return;
    }
    const int64_t numChunks = std::min<int64_t>(units, int64_t(threads) * 4);
    const int64_t unitsPerChunk = (units + numChunks - 1) / numChunks;
    std::atomic<int64_t> next{0};
    pool.runOnAll([&](int, int) {
        for (;;) {
            const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
            const int64_t r0 = c * unitsPerChunk * kRowAlign;
            if (r0 >= w.rows) break;
            fn(job, r0, std::min(w.rows, r0 + unitsPerChunk * kRowAlign));
        }
    });
}

void rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out) {
    const auto& k = kernels();
    for (int64_t t = 0; t < m; ++t) {
        const float* xr = x + t * n;
        float* o = out + t * n;
        const float ss = k.dot(xr, xr, n);
        const float scale = 1.0f / std::sqrt(ss / float(n) + eps);
        for (int64_t i = 0; i < n; ++i) o[i] = xr[i] * scale * weight[i];
    }
}

void ropeRotateHalf(float* x, int numHeads, int headDim, int rotaryDim, float pos, const float* invFreq) {
    const int half = rotaryDim / 2;
    // The angles are the same for every head: compute them once (double, so large positions keep precision).
    thread_local std::vector<float> cosv, sinv;
    if (int(cosv.size()) < half) {
        cosv.resize(size_t(half));
        sinv.resize(size_t(half));
    }
    for (int i = 0; i < half; ++i) {
        const double a = double(pos) * double(invFreq[i]);
        cosv[size_t(i)] = float(std::cos(a));
        sinv[size_t(i)] = float(std::sin(a));
    }
    for (int h = 0; h < numHeads; ++h) {
        float* v = x + int64_t(h) * headDim;
        for (int i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cosv[size_t(i)] - b * sinv[size_t(i)];
            v[i + half] = b * cosv[size_t(i)] + a * sinv[size_t(i)];
        }
    }
}

void siluMul(const float* gate, const float* up, int64_t n, float* out) {
    // exp(-g) through the ISA's vector exp (relative error ~2e-7; clamped, so a very negative g gives ~0, not
    // NaN), a chunk at a time: a prefill's MLP is tens of millions of these per layer. out may alias gate.
    const auto& k = kernels();
    float e[256];
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t c = std::min<int64_t>(256, n - i0);
        for (int64_t j = 0; j < c; ++j) e[j] = -gate[i0 + j];
        k.expShiftSum(e, 0.0f, c);
        for (int64_t j = 0; j < c; ++j) out[i0 + j] = gate[i0 + j] / (1.0f + e[j]) * up[i0 + j];
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    const float inv = 1.0f / kernels().expShiftSum(x, mx, n);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void addInPlace(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

float dot(const float* a, const float* b, int64_t n) { return kernels().dot(a, b, n); }

float expShiftSum(float* x, float shift, int64_t n) { return n > 0 ? kernels().expShiftSum(x, shift, n) : 0.0f; }

void axpy(float a, const float* x, float* y, int64_t n) { kernels().axpy(a, x, y, n); }

void groupScores(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd, float scale,
                 float* s, int64_t ls) {
    kernels().groupScores(q, G, k, kStride, n, hd, scale, s, ls);
}

void groupAccum(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n, int64_t hd,
                float* out) {
    kernels().groupAccum(s, ls, G, v, vStride, n, hd, out);
}

}  // namespace wb::cpu
