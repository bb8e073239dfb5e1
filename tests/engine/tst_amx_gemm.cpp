// The AMX BF16 tile GEMM (backend/cpu/amx_gemm.h) against the definition: y = bf16(x) · Wᵀ in double, where the
// activations are rounded to BF16 exactly as the tile path rounds them, so the only difference left is f32
// accumulation order (bound: 1e-5 relative to the row's sum of |products|). Shapes around the tile edges
// (16-row and 32-row weight blocks, odd token counts, more tokens than one packed block of 256), per-row int8
// weights (exact in the tiles, scaled on output), block-quantized weights (decoded to BF16 per panel), and
// cpu::matmul's dispatch: it takes the tile path for BF16 weights and many tokens, and agrees with the AVX-512
// path (f32 activations) within BF16 rounding of the activations. Skipped on a CPU without AMX.
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "core/thread_pool.h"

using namespace wb;

namespace {

struct Case {
    std::vector<float> x;
    std::vector<uint8_t> w;
    WeightMatrix W;
};

Case makeCase(int64_t m, int64_t n, int64_t k, uint32_t seed) {
    Case c;
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    c.x.resize(size_t(m * k));
    for (float& v : c.x) v = dist(rng);
    std::vector<float> wf(size_t(n * k));
    for (float& v : wf) v = dist(rng) * 0.1f;
    c.w.resize(size_t(n * k * 2));
    for (int64_t r = 0; r < n; ++r) quantizeRow(DType::BF16, wf.data() + r * k, c.w.data() + r * k * 2, k);
    c.W.dtype = DType::BF16;
    c.W.rows = n;
    c.W.cols = k;
    c.W.data = c.w.data();
    return c;
}

}  // namespace

class TestAmxGemm : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        if (!cpu::amx::available()) QSKIP("this CPU (or kernel) has no AMX-BF16 tiles: the tile path is not used here");
    }

    void matchesDefinition_data() {
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("k");
        for (int m : {16, 17, 31, 32, 33, 100, 256, 300, 530})
            for (auto [n, k] : {std::pair{16, 32}, std::pair{48, 96}, std::pair{64, 64}, std::pair{32, 1536}})
                QTest::newRow(qPrintable(QString("m%1_n%2_k%3").arg(m).arg(n).arg(k))) << m << n << k;
    }
    void matchesDefinition() {
        QFETCH(int, m);
        QFETCH(int, n);
        QFETCH(int, k);
        Case c = makeCase(m, n, k, uint32_t(m * 7919 + n * 31 + k));
        QVERIFY(cpu::amx::suits(c.W, m));
        ThreadPool pool(2);
        std::vector<float> y(size_t(m * n), -1.0f);
        cpu::amx::matmulBf16(c.W, c.x.data(), m, y.data(), pool);
        std::vector<float> wf(static_cast<size_t>(k));
        double worst = 0;
        for (int64_t r = 0; r < n; ++r) {
            dequantizeRow(DType::BF16, c.w.data() + r * k * 2, wf.data(), k);
            for (int64_t t = 0; t < m; ++t) {
                double want = 0, mag = 0;
                for (int64_t i = 0; i < k; ++i) {
                    const double p = double(bf16ToFp32(fp32ToBf16(c.x[size_t(t * k + i)]))) * double(wf[size_t(i)]);
                    want += p;
                    mag += std::abs(p);
                }
                worst = std::max(worst, std::abs(double(y[size_t(t * n + r)]) - want) / mag);
            }
        }
        QVERIFY2(worst < 1e-5, qPrintable(QString("worst relative error %1").arg(worst)));
    }

    // cpu::matmul picks the tile path for BF16 and >= 16 tokens; with it switched off the AVX-512 kernel keeps the
    // activations in f32: the two differ by the activations' BF16 rounding only (relative 2^-9 per product).
    void dispatchAgreesWithVectorPath() {
        const int64_t m = 70, n = 96, k = 256;
        Case c = makeCase(m, n, k, 42);
        ThreadPool pool(2);
        std::vector<float> tile(size_t(m * n)), vec(size_t(m * n));
        QVERIFY(cpu::amx::setEnabled(true));
        cpu::matmul(c.W, c.x.data(), m, tile.data(), pool);
        QVERIFY(!cpu::amx::setEnabled(false));
        QVERIFY(!cpu::amx::suits(c.W, m));
        cpu::matmul(c.W, c.x.data(), m, vec.data(), pool);
        cpu::amx::setEnabled(true);
        double worst = 0, differs = 0;
        for (size_t i = 0; i < tile.size(); ++i) {
            worst = std::max(worst, double(std::abs(tile[i] - vec[i])));
            differs += tile[i] != vec[i];
        }
        // |y| ~ sqrt(256) · 0.1 = 1.6; BF16 activations move it by ~ 1.6 · 2^-9 / sqrt-ish: well under 0.02.
        QVERIFY2(worst < 0.02, qPrintable(QString::number(worst)));
        QVERIFY2(differs > 0, "the two paths gave identical bits: the tile path was not taken");
    }

    // Per-row int8 weights: the int8 values enter the tiles exactly, the row scale multiplies the output.
    void int8Weights_data() {
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("k");
        for (int m : {16, 45, 300})
            for (auto [n, k] : {std::pair{16, 64}, std::pair{96, 544}})
                QTest::newRow(qPrintable(QString("m%1_n%2_k%3").arg(m).arg(n).arg(k))) << m << n << k;
    }
    void int8Weights() {
        QFETCH(int, m);
        QFETCH(int, n);
        QFETCH(int, k);
        Case c = makeCase(m, n, k, uint32_t(m + n + k));
        auto w = convertWeight(c.W, DType::I8);
        QVERIFY(w.ok());
        QVERIFY(cpu::amx::suits(*w, m));
        ThreadPool pool(2);
        std::vector<float> y(size_t(m * n), -1.0f);
        cpu::matmul(*w, c.x.data(), m, y.data(), pool);
        double worst = 0;
        const auto* q = reinterpret_cast<const int8_t*>(w->data);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t t = 0; t < m; ++t) {
                double want = 0, mag = 0;
                for (int64_t i = 0; i < k; ++i) {
                    const double p = double(bf16ToFp32(fp32ToBf16(c.x[size_t(t * k + i)]))) * double(q[r * k + i]);
                    want += p;
                    mag += std::abs(p);
                }
                want *= w->rowScales[r];
                mag *= std::abs(w->rowScales[r]);
                worst = std::max(worst, std::abs(double(y[size_t(t * n + r)]) - want) / mag);
            }
        QVERIFY2(worst < 1e-5, qPrintable(QString("worst relative error %1").arg(worst)));
    }

    // Block-quantized weights (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K): each weight decoded (scale × quant, K-quant mins
    // subtracted) and rounded to BF16 per panel. Definition: bf16(x) · bf16(dequantizeRow(W)) in double, same bound
    // as the BF16 path. Against the block kernels (int8 activations per 32, f32 weights) through cpu::matmul with
    // the tiles switched off: the two differ by the activations' int8 / BF16 rounding and the weights' BF16
    // rounding, bound 1e-2 of the row's sum of |products| (the int8 step alone is up to 2^-8 of a block's max).
    void blockWeights_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("k");
        for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
            const bool kq = t == DType::Q4_K || t == DType::Q6_K;
            for (int m : {16, 33, 300})
                for (auto [n, k] : {std::pair{16, 256}, std::pair{48, kq ? 768 : 544}, std::pair{96, 1536}})
                    QTest::newRow(qPrintable(QString("%1_m%2_n%3_k%4").arg(QString::fromUtf8(dtypeName(t).data(), qsizetype(dtypeName(t).size()))).arg(m).arg(n).arg(k)))
                            << int(t) << m << n << k;
        }
    }
    void blockWeights() {
        QFETCH(int, dtype);
        QFETCH(int, m);
        QFETCH(int, n);
        QFETCH(int, k);
        const DType t = DType(dtype);
        Case c = makeCase(m, n, k, uint32_t(dtype * 131 + m + n + k));
        auto w = convertWeight(c.W, t);
        QVERIFY(w.ok());
        QCOMPARE(int(w->dtype), dtype);
        QVERIFY(cpu::amx::suits(*w, m));
        ThreadPool pool(2);
        std::vector<float> y(size_t(m * n), -1.0f), block(size_t(m * n), -1.0f);
        QVERIFY(cpu::amx::setEnabled(true));
        cpu::matmul(*w, c.x.data(), m, y.data(), pool);
        QVERIFY(!cpu::amx::setEnabled(false));
        cpu::matmul(*w, c.x.data(), m, block.data(), pool);
        cpu::amx::setEnabled(true);
        std::vector<float> wf(static_cast<size_t>(k));
        double worst = 0, worstBlock = 0;
        for (int64_t r = 0; r < n; ++r) {
            dequantizeRow(t, w->data + r * w->rowBytes(), wf.data(), k);
            for (int64_t i = 0; i < k; ++i) wf[size_t(i)] = bf16ToFp32(fp32ToBf16(wf[size_t(i)]));
            for (int64_t tok = 0; tok < m; ++tok) {
                double want = 0, mag = 0;
                for (int64_t i = 0; i < k; ++i) {
                    const double p = double(bf16ToFp32(fp32ToBf16(c.x[size_t(tok * k + i)]))) * double(wf[size_t(i)]);
                    want += p;
                    mag += std::abs(p);
                }
                const double got = y[size_t(tok * n + r)];
                worst = std::max(worst, std::abs(got - want) / mag);
                worstBlock = std::max(worstBlock, std::abs(got - double(block[size_t(tok * n + r)])) / mag);
            }
        }
        QVERIFY2(worst < 1e-5, qPrintable(QString("worst relative error %1").arg(worst)));
        QVERIFY2(worstBlock < 1e-2, qPrintable(QString("block kernel differs by %1").arg(worstBlock)));
    }

    // F16 weights on the tiles keep FP16's precision: split into BF16 hi + lo (exact) against activations split
    // likewise, three products summed. Definition: f32 x · F16 W in double, nothing rounded to BF16; bound 1e-4 of
    // the row's sum of |products| (the dropped lo·lo term is ~2^-16 of a product). Rounding W or x to BF16 alone
    // errs by ~2^-9 per product, over 1e-3 on these rows: the bound tells the split path from a plain BF16 one.
    void f16WeightsKeepTheirPrecision_data() {
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("k");
        for (int m : {16, 33, 300})
            for (auto [n, k] : {std::pair{16, 256}, std::pair{48, 544}, std::pair{96, 1536}})
                QTest::newRow(qPrintable(QString("m%1_n%2_k%3").arg(m).arg(n).arg(k))) << m << n << k;
    }
    void f16WeightsKeepTheirPrecision() {
        QFETCH(int, m);
        QFETCH(int, n);
        QFETCH(int, k);
        std::mt19937 rng(uint32_t(m * 7 + n * 3 + k));
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> x(size_t(m * k)), wf(size_t(n * k));
        for (float& v : x) v = dist(rng);
        for (float& v : wf) v = dist(rng) * 0.1f;  // f32 values: their F16 rounding keeps 11 significant bits
        WeightMatrix f32;
        f32.rows = n;
        f32.cols = k;
        f32.data = reinterpret_cast<const uint8_t*>(wf.data());
        auto w = convertWeight(f32, DType::F16);
        QVERIFY(w.ok());
        QVERIFY(cpu::amx::suits(*w, m));
        ThreadPool pool(2);
        std::vector<float> y(size_t(m * n), -1.0f), vec(size_t(m * n), -1.0f);
        QVERIFY(cpu::amx::setEnabled(true));
        cpu::matmul(*w, x.data(), m, y.data(), pool);
        QVERIFY(!cpu::amx::setEnabled(false));
        cpu::matmul(*w, x.data(), m, vec.data(), pool);
        cpu::amx::setEnabled(true);
        std::vector<float> row(static_cast<size_t>(k));
        double worst = 0, worstVec = 0;
        bool differs = false;
        for (int64_t r = 0; r < n; ++r) {
            dequantizeRow(DType::F16, w->data + r * w->rowBytes(), row.data(), k);
            for (int64_t tok = 0; tok < m; ++tok) {
                double want = 0, mag = 0;
                for (int64_t i = 0; i < k; ++i) {
                    const double p = double(x[size_t(tok * k + i)]) * double(row[size_t(i)]);
                    want += p;
                    mag += std::abs(p);
                }
                const float got = y[size_t(tok * n + r)], v = vec[size_t(tok * n + r)];
                worst = std::max(worst, std::abs(double(got) - want) / mag);
                worstVec = std::max(worstVec, std::abs(double(v) - want) / mag);
                differs = differs || got != v;
            }
        }
        qInfo("tiles %.3g, vector kernel %.3g of the row's sum of |products|", worst, worstVec);
        QVERIFY2(worst < 1e-4, qPrintable(QString("worst relative error %1").arg(worst)));
        QVERIFY2(differs, "the tiles and the vector kernel gave identical bits: the tile path was not taken");
    }

    void refusesWhatItCannotTake() {
        Case c = makeCase(32, 24, 64, 1);  // 24 rows: not a multiple of 16
        QVERIFY(!cpu::amx::suits(c.W, 32));
        Case d = makeCase(32, 32, 48, 2);  // 48 columns: not a multiple of 32
        QVERIFY(!cpu::amx::suits(d.W, 32));
        Case e = makeCase(15, 32, 64, 3);
        QVERIFY(!cpu::amx::suits(e.W, 15));  // too few tokens to pay
        QVERIFY(cpu::amx::suits(e.W, 16));
    }
};

QTEST_APPLESS_MAIN(TestAmxGemm)
#include "tst_amx_gemm.moc"
