// cpu::denseAttention (query tiles through the f32 GEMM kernels) against the one-query-at-a-time definition in
// double precision: sizes around the tile edges, head widths of the vision towers, strided interleaved q/k/v as
// the encoders lay them out, and every kernel ISA this CPU has.
#include <QtTest>

#include <cmath>
#include <random>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/dense_attention.h"

using namespace wb;

class TestDenseAttention : public QObject {
    Q_OBJECT
private slots:
    void matchesDefinition_data() {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("d");
        for (int n : {1, 2, 7, 16, 17, 100, 257, 1100})
            for (int d : {16, 64, 128}) QTest::newRow(qPrintable(QString("n%1_d%2").arg(n).arg(d))) << n << d;
    }
    void matchesDefinition() {
        QFETCH(int, n);
        QFETCH(int, d);
        std::mt19937 rng(uint32_t(n * 131 + d));
        std::normal_distribution<float> dist(0.0f, 1.5f);
        const int64_t stride = 3 * d + 5;  // interleaved and padded: strides are honoured
        std::vector<float> qkv(size_t(n * stride));
        for (float& x : qkv) x = dist(rng);
        cpu::DenseAttentionArgs a;
        a.q = qkv.data();
        a.k = qkv.data() + d;
        a.v = qkv.data() + 2 * d;
        a.qStride = a.kStride = a.vStride = stride;
        a.n = n;
        a.headDim = d;
        a.scale = 1.0f / std::sqrt(float(d));
        a.outStride = d + 3;
        std::vector<float> want(size_t(n * a.outStride), 0.0f);
        a.out = want.data();
        cpu::denseAttentionReference(a);
        ThreadPool pool(2);
        for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512}) {
            if (cpu::setIsa(isa) != isa) continue;  // not on this CPU
            std::vector<float> got(size_t(n * a.outStride), -7.0f);
            a.out = got.data();
            cpu::denseAttention(a, pool);
            float worst = 0;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t c = 0; c < d; ++c)
                    worst = std::max(worst, std::fabs(got[size_t(i * a.outStride + c)] - want[size_t(i * a.outStride + c)]));
            QVERIFY2(worst < 2e-5f, qPrintable(QString("%1: max |diff| %2").arg(cpu::isaName(isa)).arg(worst)));
            // The padding after each output row is untouched.
            for (int64_t i = 0; i < n; ++i) QCOMPARE(got[size_t(i * a.outStride + d)], -7.0f);
        }
        cpu::setIsa(cpu::detectedIsa());
    }
};

QTEST_GUILESS_MAIN(TestDenseAttention)
#include "tst_dense_attention.moc"
