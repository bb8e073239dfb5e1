// CPU kernels against naive double-precision references, for every dtype and every ISA path this CPU has.
//
// Tolerances (errors are measured per output element against the bound B = Σk |w[r,k]|·|x[t,k]|, the scale
// of the cancellation-free sum, so they hold whatever the signs):
//   F32, F16, BF16 weights (f32 activations, reference on the dequantized weights): 1e-5·B, i.e. only f32
//     rounding differs;
//   Q8_0, Q4_0, Q5_0, Q4_K, Q6_K and I8 (activations quantized to int8 blocks of 32 inside matmul, the integer
//     dot products run on the blocks): 1e-2·B against the f32 activations (each activation moves by at most half
//     a step of max|block|/127, ~0.4 % of the block's largest value), and 1e-5·B against the double reference on
//     the same int8 activations (quantizedBlocksExact: only f32 rounding of the scales and sums differs);
//   element-wise ops: 1e-5 relative (1e-4 for rope and softmax, which go through exp/sin/cos).
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

using namespace wb;

namespace {

std::vector<float> randomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = dist(rng);
    return v;
}

WeightMatrix f32Matrix(const std::vector<float>& data, int64_t rows, int64_t cols) {
    WeightMatrix w;
    w.name = "test";
    w.dtype = DType::F32;
    w.rows = rows;
    w.cols = cols;
    auto buf = std::make_shared<std::vector<float>>(data);
    w.data = reinterpret_cast<const uint8_t*>(buf->data());
    w.keepAlive = buf;
    return w;
}

// Raw blocks for the types that have no encoder here (Q4_K, Q6_K) and for Q4_0: random bits, with every fp16
// scale replaced by a sane value so the decoded weights are finite and of order one.
WeightMatrix randomBlockMatrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
    WeightMatrix w;
    w.name = "blocks";
    w.dtype = dtype;
    w.rows = rows;
    w.cols = cols;
    auto buf = std::make_shared<std::vector<uint8_t>>(size_t(rows * w.rowBytes()));
    std::mt19937 rng(seed);
    for (auto& b : *buf) b = uint8_t(rng());
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    const int64_t bb = dtypeBlockBytes(dtype);
    for (int64_t off = 0; off < int64_t(buf->size()); off += bb) {
        uint8_t* blk = buf->data() + off;
        auto put = [&](int at, float v) {
            const uint16_t h = fp32ToFp16(v);
            std::memcpy(blk + at, &h, 2);
        };
        if (dtype == DType::Q4_K) {
            put(0, scale(rng));
            put(2, scale(rng));
        } else if (dtype == DType::Q6_K) {
            put(208, scale(rng));
        } else {
            put(0, scale(rng));
        }
    }
    w.data = buf->data();
    w.keepAlive = buf;
    return w;
}

std::vector<float> dequantized(const WeightMatrix& w) {
    std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r) dequantizeMatrixRow(w, r, out.data() + r * w.cols);
    return out;
}

// Checks matmul(w, x) against the double reference on deq (the dequantized weights) with tolerance tol·B.
void checkMatmul(const WeightMatrix& w, const std::vector<float>& deq, int64_t m, double tol, ThreadPool& pool,
                 uint32_t seed) {
    const std::vector<float> x = randomVector(m * w.cols, seed);
    std::vector<float> y(size_t(m * w.rows), std::nanf(""));
    cpu::matmul(w, x.data(), m, y.data(), pool);
    for (int64_t t = 0; t < m; ++t) {
        for (int64_t r = 0; r < w.rows; ++r) {
            double ref = 0.0, bound = 0.0;
            for (int64_t k = 0; k < w.cols; ++k) {
                const double a = deq[size_t(r * w.cols + k)], b = x[size_t(t * w.cols + k)];
                ref += a * b;
                bound += std::fabs(a * b);
            }
            const double got = y[size_t(t * w.rows + r)];
            if (!(std::fabs(got - ref) <= tol * bound + 1e-30)) {
                QFAIL(qPrintable(QString("%1 [%2x%3] m=%4 isa=%5 threads=%6: y[%7,%8]=%9, expected %10 (bound %11)")
                                     .arg(QString::fromStdString(std::string(dtypeName(w.dtype))))
                                     .arg(w.rows)
                                     .arg(w.cols)
                                     .arg(m)
                                     .arg(cpu::isaName(cpu::activeIsa()))
                                     .arg(pool.size())
                                     .arg(t)
                                     .arg(r)
                                     .arg(got)
                                     .arg(ref)
                                     .arg(tol * bound)));
            }
        }
    }
}

// The activations as matmul quantizes them for the integer kernels (cpu_kernels.h: blocks of 32, scale =
// max|x|/127, round half to even), dequantized again.
std::vector<float> int8Activations(const std::vector<float>& x, int64_t m, int64_t cols) {
    std::vector<float> out(x.size());
    for (int64_t t = 0; t < m; ++t) {
        for (int64_t k0 = 0; k0 < cols; k0 += 32) {
            const int64_t k1 = std::min(cols, k0 + 32);
            float amax = 0.0f;
            for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[size_t(t * cols + k)]));
            const float scale = amax / 127.0f;
            const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
            for (int64_t k = k0; k < k1; ++k)
                out[size_t(t * cols + k)] = scale * std::nearbyint(x[size_t(t * cols + k)] * inv);
        }
    }
    return out;
}

// matmul(w, x) against the double reference on the dequantized weights and the int8-rounded activations, with
// tolerance tol·B (B over the same operands).
void checkBlockMatmulExact(const WeightMatrix& w, int64_t m, double tol, ThreadPool& pool, uint32_t seed) {
    const std::vector<float> deq = dequantized(w);
    const std::vector<float> x = randomVector(m * w.cols, seed);
    const std::vector<float> xq = int8Activations(x, m, w.cols);
    std::vector<float> y(size_t(m * w.rows), std::nanf(""));
    cpu::matmul(w, x.data(), m, y.data(), pool);
    for (int64_t t = 0; t < m; ++t) {
        for (int64_t r = 0; r < w.rows; ++r) {
            double ref = 0.0, bound = 0.0;
            for (int64_t k = 0; k < w.cols; ++k) {
                const double a = deq[size_t(r * w.cols + k)], b = xq[size_t(t * w.cols + k)];
                ref += a * b;
                bound += std::fabs(a * b);
            }
            const double got = y[size_t(t * w.rows + r)];
            if (!(std::fabs(got - ref) <= tol * bound + 1e-30))
                QFAIL(qPrintable(QString("%1 [%2x%3] m=%4 isa=%5 threads=%6: y[%7,%8]=%9, expected %10 (bound %11)")
                                     .arg(QString::fromStdString(std::string(dtypeName(w.dtype))))
                                     .arg(w.rows)
                                     .arg(w.cols)
                                     .arg(m)
                                     .arg(cpu::isaName(cpu::activeIsa()))
                                     .arg(pool.size())
                                     .arg(t)
                                     .arg(r)
                                     .arg(got)
                                     .arg(ref)
                                     .arg(tol * bound)));
        }
    }
}

std::vector<cpu::Isa> availableIsas() {
    std::vector<cpu::Isa> out;
    for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
        if (cpu::setIsa(isa) == isa) out.push_back(isa);
    return out;
}

struct Shape {
    int64_t rows, cols;
};

}  // namespace

class TestCpuOps : public QObject {
    Q_OBJECT

private slots:
    void init() { m_isas = availableIsas(); }
    void cleanup() { cpu::setIsa(cpu::detectedIsa()); }

    void fp16RoundTripsEveryValue() {
        for (uint32_t h = 0; h < 0x10000; ++h) {
            const float f = fp16ToFp32(uint16_t(h));
            const uint16_t back = fp32ToFp16(f);
            if (std::isnan(f)) {
                QVERIFY(std::isnan(fp16ToFp32(back)));
            } else {
                QCOMPARE(back, uint16_t(h));
            }
        }
        QCOMPARE(fp16ToFp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
        QCOMPARE(fp16ToFp32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
        QCOMPARE(fp16ToFp32(0x7bff), 65504.0f);
        QVERIFY(std::isinf(fp16ToFp32(0x7c00)) && fp16ToFp32(0x7c00) > 0);
        QVERIFY(std::isinf(fp16ToFp32(0xfc00)) && fp16ToFp32(0xfc00) < 0);
        QCOMPARE(fp32ToFp16(65520.0f), uint16_t(0x7c00));  // rounds up to inf
        QCOMPARE(fp32ToFp16(65519.0f), uint16_t(0x7bff));
        QCOMPARE(fp32ToFp16(std::ldexp(1.0f, -25)), uint16_t(0));       // half of the smallest subnormal: even
        QCOMPARE(fp32ToFp16(std::ldexp(3.0f, -25)), uint16_t(2));       // 1.5 units: ties to even
        QCOMPARE(fp32ToFp16(std::ldexp(1.0f, -30)), uint16_t(0));
        QCOMPARE(fp32ToFp16(-0.0f), uint16_t(0x8000));
        QVERIFY((fp32ToFp16(std::nanf("")) & 0x7fff) > 0x7c00);
        QCOMPARE(fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), uint16_t(0x3c00));  // tie to even: down
    }

    void bf16RoundTripsEveryValue() {
        for (uint32_t h = 0; h < 0x10000; ++h) {
            const float f = bf16ToFp32(uint16_t(h));
            const uint16_t back = fp32ToBf16(f);
            if (std::isnan(f)) {
                QVERIFY(std::isnan(bf16ToFp32(back)));
            } else {
                QCOMPARE(back, uint16_t(h));
            }
        }
        QCOMPARE(fp32ToBf16(1.0f + std::ldexp(1.0f, -8)), uint16_t(0x3f80));  // tie to even: down
        QCOMPARE(fp32ToBf16(1.0f + std::ldexp(3.0f, -8)), uint16_t(0x3f82));  // tie to even: up
        QVERIFY(std::isnan(bf16ToFp32(fp32ToBf16(std::nanf("")))));
        QVERIFY(std::isinf(bf16ToFp32(fp32ToBf16(INFINITY))));
    }

    void quantizeDequantizeErrorBounds() {
        const int64_t n = 32 * 40;
        std::vector<float> x = randomVector(n, 7, 3.0f);
        x[5] = 0.0f;
        std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block must decode to zeros
        for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
            std::vector<uint8_t> buf(static_cast<size_t>(dtypeRowBytes(t, n)));
            std::vector<float> back(static_cast<size_t>(n));
            quantizeRow(t, x.data(), buf.data(), n);
            dequantizeRow(t, buf.data(), back.data(), n);
            for (int64_t b = 0; b < n / 32; ++b) {
                float amax = 0.0f;
                for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(b * 32 + i)]));
                for (int i = 0; i < 32; ++i) {
                    const float v = x[size_t(b * 32 + i)], d = back[size_t(b * 32 + i)];
                    double bound = 0.0;
                    switch (t) {
                        case DType::F32: bound = 0.0; break;
                        case DType::F16: bound = std::fabs(v) * std::ldexp(1.0, -11); break;
                        case DType::BF16: bound = std::fabs(v) * std::ldexp(1.0, -8); break;
                        // Half a step of amax/127, plus the fp16 rounding of the step (≤ 2^-11 relative, ×127).
                        case DType::Q8_0: bound = amax / 127.0 * 0.5 + amax * std::ldexp(1.0, -11) * 1.01; break;
                        // The largest magnitude maps to -8; the other sign can clip at +7: up to one step of amax/8.
                        case DType::Q4_0: bound = amax / 8.0 * 1.0 + amax * std::ldexp(1.0, -11) * 2; break;
                        default: break;
                    }
                    if (!(std::fabs(v - d) <= bound * 1.0001 + 1e-30))
                        QFAIL(qPrintable(QString("%1: x=%2 decoded %3, bound %4")
                                             .arg(QString::fromStdString(std::string(dtypeName(t))))
                                             .arg(v)
                                             .arg(d)
                                             .arg(bound)));
                }
            }
        }
    }

    void q8_0RequantizationIsLossless() {
        // ggml's rounding: a row that is already Q8_0 encodes to the same bytes.
        const int64_t n = 256;
        const std::vector<float> x = randomVector(n, 11);
        std::vector<uint8_t> a(static_cast<size_t>(dtypeRowBytes(DType::Q8_0, n))), b(a.size());
        std::vector<float> back(static_cast<size_t>(n));
        quantizeRow(DType::Q8_0, x.data(), a.data(), n);
        dequantizeRow(DType::Q8_0, a.data(), back.data(), n);
        quantizeRow(DType::Q8_0, back.data(), b.data(), n);
        QVERIFY(a == b);
    }

    void q4KKnownBlock() {
        // One Q4_K super-block with hand-picked scales: sub-block j has scale j+1 and min 2j (6-bit, j < 4 in the
        // low bits of bytes 0..7; j ≥ 4 split across bytes 8..11 and the top bits of bytes 0..7).
        uint8_t blk[144] = {};
        const uint16_t d = fp32ToFp16(0.5f), dmin = fp32ToFp16(0.25f);
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &dmin, 2);
        uint8_t* sc = blk + 4;
        const int scales[8] = {1, 2, 3, 4, 37, 50, 63, 20};
        const int mins[8] = {0, 2, 4, 6, 33, 44, 17, 60};
        for (int j = 0; j < 4; ++j) {
            sc[j] = uint8_t(scales[j]);
            sc[j + 4] = uint8_t(mins[j]);
        }
        for (int j = 4; j < 8; ++j) {
            sc[j + 4] = uint8_t((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
            sc[j - 4] |= uint8_t((scales[j] >> 4) << 6);
            sc[j] |= uint8_t((mins[j] >> 4) << 6);
        }
        uint8_t* qs = blk + 16;
        for (int i = 0; i < 128; ++i) qs[i] = uint8_t((i % 16) | ((15 - i % 16) << 4));
        std::vector<float> out(256);
        dequantizeRow(DType::Q4_K, blk, out.data(), 256);
        for (int chunk = 0; chunk < 4; ++chunk) {
            for (int l = 0; l < 32; ++l) {
                const int i = chunk * 32 + l;
                const int lo = i % 16, hi = 15 - i % 16;
                const int j0 = 2 * chunk, j1 = 2 * chunk + 1;
                QCOMPARE(out[size_t(chunk * 64 + l)], 0.5f * scales[j0] * lo - 0.25f * mins[j0]);
                QCOMPARE(out[size_t(chunk * 64 + 32 + l)], 0.5f * scales[j1] * hi - 0.25f * mins[j1]);
            }
        }
    }

    void q6KKnownBlock() {
        // Value i of a Q6_K super-block: within each half of 128, l = i % 32 and quarter q = (i % 128) / 32 pick the
        // nibble (ql[l] or ql[l+32], low for q even... per ggml) and the 2 high bits (qh[l] >> 2q).
        uint8_t blk[210] = {};
        const uint16_t d = fp32ToFp16(0.125f);
        std::memcpy(blk + 208, &d, 2);
        std::vector<int> want(256);
        std::mt19937 rng(3);
        for (int& v : want) v = int(rng() % 64);
        auto* ql = blk;
        auto* qh = blk + 128;
        auto* sc = reinterpret_cast<int8_t*>(blk + 192);
        for (int s = 0; s < 16; ++s) sc[s] = int8_t(s - 8);
        for (int half = 0; half < 2; ++half) {
            for (int l = 0; l < 32; ++l) {
                const int* q = &want[size_t(half * 128)];
                ql[half * 64 + l] = uint8_t((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
                ql[half * 64 + l + 32] = uint8_t((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
                qh[half * 32 + l] = uint8_t((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                            ((q[l + 96] >> 4) << 6));
            }
        }
        std::vector<float> out(256);
        dequantizeRow(DType::Q6_K, blk, out.data(), 256);
        for (int i = 0; i < 256; ++i) {
            const int subBlock = i / 16;  // 16 scales, one per 16 consecutive values
            QCOMPARE(out[size_t(i)], 0.125f * float(subBlock - 8) * float(want[size_t(i)] - 32));
        }
    }

    void matmulFloatTypes() {
        // {19, 4096} spans several k slices of the blocked GEMM; {300, 1056} several row panels and a short k slice.
        const Shape shapes[] = {{1, 16}, {7, 33}, {37, 100}, {64, 128}, {19, 4096}, {300, 1056}};
        // The vector kernels, activations in f32: BF16 weights with many tokens would otherwise take the AMX tile
        // path, which rounds the activations to BF16 and has its own suite (tst_amx_gemm).
        cpu::amx::setEnabled(false);
        auto restore = qScopeGuard([] { cpu::amx::setEnabled(true); });
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            for (int threads : {1, 2}) {
                ThreadPool pool(threads);
                for (const Shape& s : shapes) {
                    const std::vector<float> wf = randomVector(s.rows * s.cols, uint32_t(s.rows * 31 + s.cols));
                    const WeightMatrix f32 = f32Matrix(wf, s.rows, s.cols);
                    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
                        auto w = convertWeight(f32, t);
                        QVERIFY(w.ok());
                        const std::vector<float> deq = dequantized(*w);
                        for (int64_t m : {1, 3, 17, 20}) {
                            if (s.cols >= 1056 && m == 17) continue;  // keep the big shapes quick
                            checkMatmul(*w, deq, m, 1e-5, pool, uint32_t(m));
                        }
                    }
                }
            }
        }
    }

    void matmulBlockTypes() {
        const Shape shapes[] = {{1, 32}, {5, 96}, {37, 320}, {40, 2048}, {520, 1056}};  // the last: 2 row panels
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            for (int threads : {1, 2}) {
                ThreadPool pool(threads);
                for (const Shape& s : shapes) {
                    const std::vector<float> wf = randomVector(s.rows * s.cols, uint32_t(s.rows * 7 + s.cols));
                    const WeightMatrix f32 = f32Matrix(wf, s.rows, s.cols);
                    auto q8 = convertWeight(f32, DType::Q8_0);
                    QVERIFY(q8.ok());
                    const WeightMatrix q4 = randomBlockMatrix(DType::Q4_0, s.rows, s.cols, 5);
                    for (int64_t m : {1, 3, 17, 20}) {
                        checkMatmul(*q8, dequantized(*q8), m, 1e-2, pool, uint32_t(m + 1));
                        checkMatmul(q4, dequantized(q4), m, 1e-2, pool, uint32_t(m + 2));
                    }
                }
            }
        }
    }

    void matmulKQuants() {
        const Shape shapes[] = {{1, 256}, {13, 512}};
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            ThreadPool pool(2);
            for (DType t : {DType::Q4_K, DType::Q6_K}) {
                for (const Shape& s : shapes) {
                    const WeightMatrix w = randomBlockMatrix(t, s.rows, s.cols, 9);
                    const std::vector<float> deq = dequantized(w);
                    for (float v : deq) QVERIFY(std::isfinite(v));
                    for (int64_t m : {1, 3, 17}) checkMatmul(w, deq, m, 1e-2, pool, uint32_t(m + 3));
                }
            }
        }
    }

    // Every block type's kernel on every ISA against the double reference on the same int8 activations: encoded
    // weights (convertWeight) and random blocks (every bit pattern of scales, mins and high bits), m = 1
    // (generation), 4 and 5 (one tile and one tile plus a row of the next) and 17 (prefill), odd block counts
    // (Q4_0 / Q5_0 rows of 3 and 33 blocks), row counts that are not a multiple of the 4-row tile or 16-row chunk.
    void quantizedBlocksExact() {
        struct Case {
            DType type;
            Shape shape;
        };
        const Case cases[] = {{DType::Q4_0, {5, 96}},   {DType::Q4_0, {37, 1056}}, {DType::Q5_0, {5, 96}},
                              {DType::Q5_0, {37, 1056}}, {DType::Q8_0, {37, 1056}}, {DType::Q4_K, {1, 256}},
                              {DType::Q4_K, {37, 768}},  {DType::Q6_K, {1, 256}},   {DType::Q6_K, {37, 768}},
                              {DType::Q4_K, {21, 2560}}, {DType::Q6_K, {21, 2560}}};
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            for (int threads : {1, 2}) {
                ThreadPool pool(threads);
                for (const Case& c : cases) {
                    const std::vector<float> wf = randomVector(c.shape.rows * c.shape.cols, uint32_t(c.shape.cols + 3));
                    auto enc = convertWeight(f32Matrix(wf, c.shape.rows, c.shape.cols), c.type);
                    QVERIFY(enc.ok());
                    const WeightMatrix raw = randomBlockMatrix(c.type, c.shape.rows, c.shape.cols, 11);
                    for (int64_t m : {1, 4, 5, 17}) {
                        checkBlockMatmulExact(*enc, m, 1e-5, pool, uint32_t(m + 7));
                        if (c.type != DType::Q8_0) checkBlockMatmulExact(raw, m, 1e-5, pool, uint32_t(m + 8));
                    }
                }
            }
        }
    }

    // The encoders (used by wb-make-model's quantized presets) stay close to their input: the K-quants and Q5_0
    // within a fraction of each block's range.
    void blockEncodersRoundTrip() {
        const int64_t cols = 512;
        const std::vector<float> wf = randomVector(4 * cols, 77);
        const WeightMatrix f32 = f32Matrix(wf, 4, cols);
        // Relative RMS error bounds: 1.5x what was measured on this normal data (Q4_0 0.084, Q5_0 0.042, Q4_K 0.078,
        // Q6_K 0.019; a 4-bit step of a block's range is ~0.08 of the data's RMS).
        const std::pair<DType, double> bounds[] = {
            {DType::Q4_0, 0.126}, {DType::Q5_0, 0.063}, {DType::Q4_K, 0.117}, {DType::Q6_K, 0.029}};
        for (const auto& [type, bound] : bounds) {
            auto w = convertWeight(f32, type);
            QVERIFY(w.ok());
            QCOMPARE(w->numBytes(), 4 * dtypeRowBytes(type, cols));
            const std::vector<float> deq = dequantized(*w);
            double err = 0.0, ref = 0.0;
            for (size_t i = 0; i < wf.size(); ++i) {
                err += double(deq[i] - wf[i]) * double(deq[i] - wf[i]);
                ref += double(wf[i]) * double(wf[i]);
            }
            const double rel = std::sqrt(err / ref);
            qInfo("%s: relative RMS error %.4f", std::string(dtypeName(type)).c_str(), rel);
            if (!(rel <= bound)) QFAIL(qPrintable(QString("%1: relative RMS error %2 > %3").arg(QString::fromStdString(std::string(dtypeName(type)))).arg(rel).arg(bound)));
        }
    }

    // Q8_0, Q4_0, Q5_0, Q4_K and Q6_K interleaved in groups of 16 rows (the AVX-512 generation layout,
    // interleaveBlocks): the same values (every row decodes bit for bit as before), and matmul on every ISA against the
    // double reference on the same int8 activations (1e-5·B, as quantizedBlocksExact): m = 1 (generation), 2-5 (the
    // 4-token tiles and a remainder), 16-64 (AMX-INT8 tiles where present: also the VNNI kernel's result token by
    // token, bit for bit) and 65 (BF16 tiles decoding the groups: the plain layout's result bit for bit), one thread
    // and two.
    void interleavedBlocks_data() {
        QTest::addColumn<int>("type");
        QTest::newRow("Q8_0") << int(DType::Q8_0);
        QTest::newRow("Q4_0") << int(DType::Q4_0);
        QTest::newRow("Q5_0") << int(DType::Q5_0);
        QTest::newRow("Q4_K") << int(DType::Q4_K);
        QTest::newRow("Q6_K") << int(DType::Q6_K);
    }
    void interleavedBlocks() {
        QFETCH(int, type);
        const DType dtype = DType(type);
        const bool kQuant = dtype == DType::Q4_K || dtype == DType::Q6_K;
        const int64_t unit = kQuant ? 4 : 1;  // K-quants: whole 256-value super-blocks
        const Shape shapes[] = {{16, 64 * unit}, {48, unit == 4 ? 1280 : 1088}, {528, 2048}};
        int tileRuns = 0;
        for (const Shape& s : shapes) {
            const std::vector<float> wf = randomVector(s.rows * s.cols, uint32_t(s.cols + 5));
            auto plain = convertWeight(f32Matrix(wf, s.rows, s.cols), dtype);
            QVERIFY(plain.ok());
            QVERIFY(canInterleave(*plain));
            WeightMatrix inter = *plain;
            interleaveBlocks(inter, false);
            QVERIFY(inter.interleaved);
            QVERIFY(inter.data != plain->data);
            QVERIFY(reinterpret_cast<uintptr_t>(inter.data) % 64 == 0);
            QCOMPARE(inter.numBytes(), plain->numBytes());
            QVERIFY(!canInterleave(inter));  // already
            const std::vector<float> a = dequantized(*plain), b = dequantized(inter);
            QVERIFY(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
            for (cpu::Isa isa : m_isas) {
                cpu::setIsa(isa);
                for (int threads : {1, 2}) {
                    ThreadPool pool(threads);
                    for (int64_t m : {1, 2, 3, 4, 5, 16, 17, 40, 64, 65}) {
                        if (cpu::amx::suitsInt8Tiles(inter, m)) {
                            // AMX-INT8 tiles: the VNNI kernel's int8 activations, integer dots and order of the
                            // float steps, so its result token by token, bit for bit (padding tokens not written).
                            ++tileRuns;
                            checkBlockMatmulExact(inter, m, 1e-5, pool, uint32_t(m + 9));
                            const std::vector<float> x = randomVector(m * s.cols, uint32_t(m + 11));
                            std::vector<float> y0(size_t(m * s.rows) + 16, -3.0f), y1(y0.size(), -3.0f);
                            cpu::matmul(inter, x.data(), m, y1.data(), pool);
                            for (int64_t t = 0; t < m; ++t)
                                cpu::matmul(inter, x.data() + t * s.cols, 1, y0.data() + t * s.rows, pool);
                            QVERIFY(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
                            continue;
                        }
                        if (!cpu::amx::suits(inter, m)) {
                            checkBlockMatmulExact(inter, m, 1e-5, pool, uint32_t(m + 9));
                            continue;
                        }
                        // The AMX tiles take BF16 activations, not int8: the plain layout's result, bit for bit.
                        const std::vector<float> x = randomVector(m * s.cols, uint32_t(m + 9));
                        std::vector<float> y0(size_t(m * s.rows)), y1(y0.size(), std::nanf(""));
                        cpu::matmul(*plain, x.data(), m, y0.data(), pool);
                        cpu::matmul(inter, x.data(), m, y1.data(), pool);
                        QVERIFY(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
                    }
                }
            }
            cpu::setIsa(cpu::detectedIsa());
        }
        if (cpu::amx::int8Enabled()) QVERIFY(tileRuns > 0);
        // A matrix of several MiB is copied by every core (groups split unevenly: 129 of them): the same values,
        // in the heap and in huge pages; so is moveToHugePages' threaded copy of the plain rows.
        {
            const std::vector<float> wf = randomVector(2064 * 4096, 29);
            auto plain = convertWeight(f32Matrix(wf, 2064, 4096), dtype);
            QVERIFY(plain.ok());
            QVERIFY(plain->numBytes() >= (int64_t(4) << 20));
            // convertWeight's rows are converted by every core too: each equals quantizeRow on its own.
            std::vector<uint8_t> rowBytes(size_t(plain->rowBytes()));
            for (int64_t r = 0; r < plain->rows; ++r) {
                quantizeRow(dtype, wf.data() + r * 4096, rowBytes.data(), 4096);
                QVERIFY2(std::memcmp(rowBytes.data(), plain->data + r * plain->rowBytes(), rowBytes.size()) == 0,
                         qPrintable(QString("row %1").arg(r)));
            }
            const std::vector<float> a = dequantized(*plain);
            for (bool huge : {false, true}) {
                WeightMatrix inter = *plain;
                interleaveBlocks(inter, huge);
                QVERIFY(inter.interleaved);
                const std::vector<float> b = dequantized(inter);
                QVERIFY(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
            }
            WeightMatrix moved = *plain;
            moveToHugePages(moved);
            QVERIFY(std::memcmp(moved.data, plain->data, size_t(plain->numBytes())) == 0);
        }
        // Huge pages keep the layout; the shapes the kernel cannot take stay plain.
        {
            const std::vector<float> wf = randomVector(32 * 128 * unit, 3);
            auto q = convertWeight(f32Matrix(wf, 32, 128 * unit), dtype);
            QVERIFY(q.ok());
            WeightMatrix w = *q;
            interleaveBlocks(w, true);
            QVERIFY(w.interleaved);
            const std::vector<float> before = dequantized(w);
            moveToHugePages(w);
            QVERIFY(w.interleaved);
            QVERIFY(dequantized(w) == before);
            // A split (a tensor-parallel shard) needs whole rows: refused, with a reason.
            auto part = sliceWeight(w, 0, 16, 0, 128);
            QVERIFY(!part.ok());
            QVERIFY(QString::fromStdString(part.error().message).contains("interleaved"));
        }
        // 24 rows; 3 and 1 blocks a row (K-quant rows are whole super-blocks: only the row count applies).
        std::vector<Shape> refused = {{24, 64 * unit}};
        if (!kQuant) refused.insert(refused.end(), {{16, 96}, {16, 32}});
        for (const Shape& s : refused) {
            auto q = convertWeight(f32Matrix(randomVector(s.rows * s.cols, 4), s.rows, s.cols), dtype);
            QVERIFY(q.ok());
            QVERIFY(!canInterleave(*q));
            WeightMatrix w = *q;
            interleaveBlocks(w, false);
            QVERIFY(!w.interleaved);
            QCOMPARE(w.data, q->data);
        }
        auto f = convertWeight(f32Matrix(randomVector(16 * 64, 5), 16, 64), DType::F16);
        QVERIFY(f.ok());
        QVERIFY(!canInterleave(*f));
    }

    void matmulI8() {
        const Shape shapes[] = {{1, 32}, {9, 50}, {37, 100}, {33, 2048}};
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            for (int threads : {1, 2}) {
                ThreadPool pool(threads);
                for (const Shape& s : shapes) {
                    const std::vector<float> wf = randomVector(s.rows * s.cols, uint32_t(s.rows + s.cols));
                    const WeightMatrix f32 = f32Matrix(wf, s.rows, s.cols);
                    auto i8 = convertWeight(f32, DType::I8);
                    QVERIFY(i8.ok());
                    QCOMPARE(i8->numBytes(), s.rows * s.cols + s.rows * 4);
                    const std::vector<float> deq = dequantized(*i8);
                    // Per-row symmetric: every weight within half a step (max|row|/127/2) of the original.
                    for (int64_t r = 0; r < s.rows; ++r) {
                        float amax = 0.0f;
                        for (int64_t k = 0; k < s.cols; ++k) amax = std::max(amax, std::fabs(wf[size_t(r * s.cols + k)]));
                        for (int64_t k = 0; k < s.cols; ++k)
                            QVERIFY(std::fabs(deq[size_t(r * s.cols + k)] - wf[size_t(r * s.cols + k)]) <=
                                    amax / 127.0f * 0.5001f);
                    }
                    for (int64_t m : {1, 3, 17}) {
                        checkMatmul(*i8, deq, m, 1e-2, pool, uint32_t(m + 4));
                        checkMatmul(*i8, wf, m, 2e-2, pool, uint32_t(m + 4));  // and close to the f32 original
                    }
                }
            }
        }
    }

    void convertAndPermute() {
        const int64_t rows = 6, cols = 64;
        const std::vector<float> wf = randomVector(rows * cols, 1);
        const WeightMatrix f32 = f32Matrix(wf, rows, cols);
        auto same = convertWeight(f32, DType::F32);
        QVERIFY(same.ok());
        QCOMPARE(same->data, f32.data);  // a view, no copy
        QVERIFY(!convertWeight(f32, DType::I32).ok());
        for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::I8}) {
            auto w = convertWeight(f32, t);
            QVERIFY(w.ok());
            const std::vector<float> before = dequantized(*w);
            WeightMatrix p = *w;  // copies must stay valid (the bytes are shared, not re-pointed)
            const std::vector<int64_t> perm = {3, 0, 5, 1, 2, 4};
            permuteRows(p, perm);
            const std::vector<float> after = dequantized(p);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t k = 0; k < cols; ++k)
                    QCOMPARE(after[size_t(r * cols + k)], before[size_t(perm[size_t(r)] * cols + k)]);
            QCOMPARE(dequantized(*w), before);  // the source is untouched
        }
    }

    void weightFromTensorShapes() {
        std::vector<uint8_t> bytes(static_cast<size_t>(dtypeRowBytes(DType::Q8_0, 64) * 3));
        TensorInfo t;
        t.name = "w";
        t.dtype = DType::Q8_0;
        t.shape = {3, 64};
        t.data = bytes.data();
        t.numBytes = int64_t(bytes.size());
        auto w = weightFromTensor(t, nullptr);
        QVERIFY(w.ok());
        QCOMPARE(w->rows, int64_t(3));
        QCOMPARE(w->cols, int64_t(64));
        t.shape = {3, 60};  // not a multiple of the block size
        QVERIFY(!weightFromTensor(t, nullptr).ok());
        t.shape = {4, 64};  // more bytes than the tensor holds
        QVERIFY(!weightFromTensor(t, nullptr).ok());
    }

    void elementwiseOps() {
        for (cpu::Isa isa : m_isas) {
            cpu::setIsa(isa);
            for (int64_t n : {1, 7, 16, 33, 1000}) {
                const std::vector<float> a = randomVector(n, 1), b = randomVector(n, 2);
                double ref = 0.0, bound = 0.0;
                for (int64_t i = 0; i < n; ++i) {
                    ref += double(a[size_t(i)]) * b[size_t(i)];
                    bound += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
                }
                QVERIFY(std::fabs(cpu::dot(a.data(), b.data(), n) - ref) <= 1e-5 * bound);

                std::vector<float> y = b;
                cpu::axpy(0.75f, a.data(), y.data(), n);
                for (int64_t i = 0; i < n; ++i)
                    QVERIFY(std::fabs(y[size_t(i)] - (b[size_t(i)] + 0.75 * a[size_t(i)])) <=
                            1e-6 * (std::fabs(b[size_t(i)]) + std::fabs(a[size_t(i)])));

                y = b;
                cpu::addInPlace(y.data(), a.data(), n);
                for (int64_t i = 0; i < n; ++i) QCOMPARE(y[size_t(i)], b[size_t(i)] + a[size_t(i)]);

                std::vector<float> out(static_cast<size_t>(n));
                cpu::siluMul(a.data(), b.data(), n, out.data());
                for (int64_t i = 0; i < n; ++i) {
                    const double g = a[size_t(i)];
                    const double want = g / (1.0 + std::exp(-g)) * b[size_t(i)];
                    QVERIFY(std::fabs(out[size_t(i)] - want) <= 1e-5 * (std::fabs(want) + 1e-6));
                }

                std::vector<float> s = a;
                cpu::softmax(s.data(), n);
                double mx = -1e300, sum = 0.0;
                for (float v : a) mx = std::max(mx, double(v));
                for (float v : a) sum += std::exp(double(v) - mx);
                for (int64_t i = 0; i < n; ++i)
                    QVERIFY(std::fabs(s[size_t(i)] - std::exp(double(a[size_t(i)]) - mx) / sum) <= 1e-4 * s[size_t(i)] + 1e-9);
            }
            // rmsNorm over 3 rows of 65, in place.
            const int64_t m = 3, n = 65;
            const std::vector<float> x = randomVector(m * n, 4), wt = randomVector(n, 5);
            std::vector<float> o = x;
            cpu::rmsNorm(o.data(), wt.data(), 1e-5f, m, n, o.data());
            for (int64_t t = 0; t < m; ++t) {
                double ss = 0.0;
                for (int64_t i = 0; i < n; ++i) ss += double(x[size_t(t * n + i)]) * x[size_t(t * n + i)];
                const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
                for (int64_t i = 0; i < n; ++i) {
                    const double want = x[size_t(t * n + i)] * inv * wt[size_t(i)];
                    QVERIFY(std::fabs(o[size_t(t * n + i)] - want) <= 1e-5 * (std::fabs(want) + 1e-6));
                }
            }
        }
    }

    void ropeRotateHalf() {
        const int heads = 3, headDim = 16, rotary = 12;
        std::vector<float> inv(rotary / 2);
        for (int i = 0; i < rotary / 2; ++i) inv[size_t(i)] = float(std::pow(10000.0, -2.0 * i / rotary));
        const std::vector<float> x = randomVector(heads * headDim, 8);
        std::vector<float> y = x;
        const float pos = 1234.0f;
        cpu::ropeRotateHalf(y.data(), heads, headDim, rotary, pos, inv.data());
        for (int h = 0; h < heads; ++h) {
            const float* a = x.data() + h * headDim;
            const float* b = y.data() + h * headDim;
            for (int i = 0; i < rotary / 2; ++i) {
                const double ang = double(pos) * inv[size_t(i)];
                const double r0 = a[i] * std::cos(ang) - a[i + rotary / 2] * std::sin(ang);
                const double r1 = a[i + rotary / 2] * std::cos(ang) + a[i] * std::sin(ang);
                QVERIFY(std::fabs(b[i] - r0) <= 1e-4 * (std::fabs(a[i]) + std::fabs(a[i + rotary / 2])));
                QVERIFY(std::fabs(b[i + rotary / 2] - r1) <= 1e-4 * (std::fabs(a[i]) + std::fabs(a[i + rotary / 2])));
            }
            for (int i = rotary; i < headDim; ++i) QCOMPARE(b[i], a[i]);  // past rotaryDim: untouched
        }
    }

private:
    std::vector<cpu::Isa> m_isas;
};

QTEST_APPLESS_MAIN(TestCpuOps)
#include "tst_cpu_ops.moc"
