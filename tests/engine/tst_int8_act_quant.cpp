// The INT8 activation rule shared by the CPU and CUDA backends (backend/int8_act_quant.h), held against the CPU
// backend's quantizers (portable, AVX2 table, AVX-512) bit for bit over adversarial rows, and the W8A8 error bound
// that tools/wb-gpu-check applies between the CUDA kernel and the CPU, held against every CPU kernel here.
//
// Nothing here runs CUDA: the CUDA kernel's order is replayed by w8a8Reference, which the GPU check compares with
// the device bit for bit. These tests prove the rule and the bound on the CPU side only.
#include <QtTest>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "backend/int8_act_quant.h"
#include "core/thread_pool.h"

using namespace wb;

namespace {

std::vector<cpu::Isa> availableIsas() {
    std::vector<cpu::Isa> out;
    for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
        if (cpu::setIsa(isa) == isa) out.push_back(isa);
    cpu::setIsa(cpu::detectedIsa());
    return out;
}

const cpu::detail::KernelTable& tableFor(cpu::Isa isa) {
    switch (isa) {
        case cpu::Isa::Avx512: return cpu::detail::avx512Kernels();
        case cpu::Isa::Avx2: return cpu::detail::avx2Kernels();
        default: return cpu::detail::scalarKernels();
    }
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

struct Quantized {
    std::vector<int8_t> q;
    std::vector<float> d;
    std::vector<int32_t> bias;
};

// The CPU backend's layout: ldq = cols rounded up to 64, ldb = ldq / 32.
Quantized viaTable(const cpu::detail::KernelTable& k, const std::vector<float>& x, int64_t m, int64_t cols) {
    const int64_t ldq = (cols + 63) / 64 * 64, ldb = ldq / 32;
    Quantized r{std::vector<int8_t>(size_t(m * ldq), int8_t(99)), std::vector<float>(size_t(m * ldb), -1.0f),
                std::vector<int32_t>(size_t(m * ldb), 12345)};
    k.quantizeActs(x.data(), m, cols, r.q.data(), r.d.data(), r.bias.data(), ldq, ldb);
    return r;
}

// The shared rule, block by block, in the same layout.
Quantized viaRule(const std::vector<float>& x, int64_t m, int64_t cols) {
    const int64_t ldq = (cols + 63) / 64 * 64, ldb = ldq / 32;
    Quantized r{std::vector<int8_t>(size_t(m * ldq)), std::vector<float>(size_t(m * ldb)),
                std::vector<int32_t>(size_t(m * ldb))};
    for (int64_t t = 0; t < m; ++t)
        for (int64_t b = 0; b < ldb; ++b) {
            const int n = int(std::clamp<int64_t>(cols - b * 32, 0, 32));
            int32_t s = 0;
            r.d[size_t(t * ldb + b)] = quantizeActBlock(x.data() + t * cols + b * 32, n, r.q.data() + t * ldq + b * 32, &s);
            r.bias[size_t(t * ldb + b)] = -16 * s;
        }
    return r;
}

// The CPU's rule before it was shared (kernels_scalar.cpp up to this change), for finite rows away from the
// subnormal-scale edge: the shared rule must not move a bit there.
Quantized viaOldRule(const std::vector<float>& x, int64_t m, int64_t cols) {
    const int64_t ldq = (cols + 63) / 64 * 64, ldb = ldq / 32;
    Quantized r{std::vector<int8_t>(size_t(m * ldq)), std::vector<float>(size_t(m * ldb)),
                std::vector<int32_t>(size_t(m * ldb))};
    for (int64_t t = 0; t < m; ++t) {
        const float* xr = x.data() + t * cols;
        for (int64_t b = 0; b < ldb; ++b) {
            const int64_t k0 = b * 32, k1 = std::min(cols, k0 + 32);
            float amax = 0.0f;
            for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(xr[k]));
            const float scale = amax / 127.0f;
            const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
            int32_t s = 0;
            for (int64_t k = k0; k < k0 + 32; ++k) {
                const int v = k < k1 ? int(std::nearbyint(xr[k] * inv)) : 0;
                r.q[size_t(t * ldq + k)] = int8_t(v);
                s += v;
            }
            r.d[size_t(t * ldb + b)] = scale;
            r.bias[size_t(t * ldb + b)] = -16 * s;
        }
    }
    return r;
}

// Bit-for-bit equality (NaN scales compare by their bits too), naming the first difference.
QString sameBits(const Quantized& a, const Quantized& b) {
    if (a.q.size() != b.q.size() || a.d.size() != b.d.size()) return "sizes differ";
    for (size_t i = 0; i < a.q.size(); ++i)
        if (a.q[i] != b.q[i]) return QString("q[%1]: %2 vs %3").arg(i).arg(a.q[i]).arg(b.q[i]);
    for (size_t i = 0; i < a.d.size(); ++i) {
        if (bits(a.d[i]) != bits(b.d[i])) return QString("d[%1]: %2 vs %3").arg(i).arg(double(a.d[i])).arg(double(b.d[i]));
        if (a.bias[i] != b.bias[i]) return QString("bias[%1]: %2 vs %3").arg(i).arg(a.bias[i]).arg(b.bias[i]);
    }
    return {};
}

// Rows that reach every branch of the rule: 3 full blocks and a partial one (cols = 100) per token.
std::vector<float> adversarialRows(int64_t cols, int64_t& m) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::vector<std::vector<float>> rows;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto row = [&](auto&& f) {
        std::vector<float> r(static_cast<size_t>(cols));
        for (int64_t k = 0; k < cols; ++k) r[size_t(k)] = f(k);
        rows.push_back(r);
    };
    row([](int64_t) { return 0.0f; });
    row([](int64_t k) { return k % 2 ? -0.0f : 0.0f; });
    row([&](int64_t) { return nd(rng); });
    row([&](int64_t k) { return k == 5 ? 3.0e38f : nd(rng) * 1e-3f; });     // one huge value
    row([&](int64_t k) { return k % 32 == 0 ? FLT_MAX : -FLT_MAX * 0.5f; });  // the largest finite scale
    // Ties at .5 once scaled: max 127 gives scale 1 exactly, so x·inv = x.
    row([](int64_t k) {
        static const float v[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f, 3.5f};
        return v[k % 10];
    });
    row([&](int64_t k) { return k % 3 == 0 ? 1e-40f : -2e-41f * float(k % 7); });  // subnormal values, zero scale
    row([&](int64_t k) { return k % 4 == 0 ? 1e-38f : nd(rng) * 1e-39f; });       // subnormal scale: x / scale
    row([&](int64_t k) { return k % 4 == 0 ? 3.0e-37f : nd(rng) * 1e-37f; });     // near that edge, inv finite
    row([&](int64_t k) { return std::ldexp(1.0f, -149) * float(k % 3); });       // the smallest subnormals
    row([&](int64_t k) { return k == 40 ? nan : nd(rng); });                       // NaN in block 1
    row([&](int64_t k) { return k == 70 ? inf : nd(rng); });                       // +inf in block 2
    row([&](int64_t k) { return k == 98 ? -inf : nd(rng); });                      // -inf in the partial block
    row([&](int64_t k) { return k == 0 ? nan : (k == 1 ? inf : 0.0f); });
    for (float s : {1e-30f, 1e-10f, 1e-3f, 1.0f, 1e3f, 1e20f, 1e37f}) row([&](int64_t) { return nd(rng) * s; });
    m = int64_t(rows.size());
    std::vector<float> x;
    for (auto& r : rows) x.insert(x.end(), r.begin(), r.end());
    return x;
}

struct I8Weight {
    std::vector<float> f32;
    WeightMatrix w;
};

WeightMatrix toI8(const std::vector<float>& f, int64_t rows, int64_t cols) {
    WeightMatrix src;
    src.rows = rows;
    src.cols = cols;
    src.dtype = DType::F32;
    src.data = reinterpret_cast<const uint8_t*>(f.data());
    auto r = convertWeight(src, DType::I8);
    if (!r) qFatal("convertWeight: %s", r.error().message.c_str());
    return std::move(*r);
}

}  // namespace

class TestInt8ActQuant : public QObject {
    Q_OBJECT

private slots:
    void cleanup() { cpu::setIsa(cpu::detectedIsa()); }

    // Every CPU quantizer (the portable one, the AVX2 table's, AVX-512's vector code with its edge fallback) gives
    // exactly the shared rule's int8 values, scales (NaN by its bits) and block sums.
    void everyCpuQuantizerIsTheSharedRule() {
        for (int64_t cols : {int64_t(100), int64_t(32), int64_t(7), int64_t(4096)}) {
            int64_t m = 0;
            const auto x = adversarialRows(cols, m);
            const Quantized want = viaRule(x, m, cols);
            for (cpu::Isa isa : availableIsas()) {
                const QString diff = sameBits(viaTable(tableFor(isa), x, m, cols), want);
                QVERIFY2(diff.isEmpty(), qPrintable(QString("%1, cols %2: %3").arg(cpu::isaName(isa)).arg(cols).arg(diff)));
            }
        }
    }

    // On finite rows away from the subnormal-scale edge the shared rule is the CPU's rule before this change, bit
    // for bit: the CPU backend's INT8 (and Q8_0/Q4/Q5/K-quant) numerics did not move.
    void finiteRowsKeepTheOldCpuBits() {
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        const int64_t cols = 13696, m = 12;
        std::vector<float> x(size_t(m * cols));
        for (int64_t t = 0; t < m; ++t) {
            const float s = std::ldexp(1.0f, int(t) * 10 - 60);  // 2^-60 .. 2^50
            for (int64_t k = 0; k < cols; ++k) x[size_t(t * cols + k)] = (k % 97 == 0 ? 0.0f : nd(rng) * s);
        }
        const QString diff = sameBits(viaRule(x, m, cols), viaOldRule(x, m, cols));
        QVERIFY2(diff.isEmpty(), qPrintable(diff));
    }

    // The edges, value by value.
    void edgeCases() {
        int8_t q[32];
        int32_t sum = 0;
        // Ties round to even: max 127 gives scale 1.
        const float ties[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f};
        QCOMPARE(quantizeActBlock(ties, 9, q, &sum), 1.0f);
        const int8_t want[] = {127, 0, 2, 2, 0, -2, -2, 126, -126};
        for (int i = 0; i < 9; ++i) QCOMPARE(int(q[i]), int(want[i]));
        for (int i = 9; i < 32; ++i) QCOMPARE(int(q[i]), 0);
        QCOMPARE(sum, 127 + 2 + 2 - 2 - 2 + 126 - 126);
        // Zeros and a scale that underflows to 0: all q 0, scale +0.
        const float zeros[] = {0.0f, -0.0f, 0.0f};
        QCOMPARE(bits(quantizeActBlock(zeros, 3, q, &sum)), 0u);
        QCOMPARE(sum, 0);
        const float tiny[] = {std::ldexp(1.0f, -149), -std::ldexp(1.0f, -149)};
        QCOMPARE(bits(quantizeActBlock(tiny, 2, q, &sum)), 0u);
        QCOMPARE(int(q[0]), 0);
        // A subnormal scale whose inverse overflows: by division, the max still maps to ±127, nothing past it.
        const float sub[] = {1e-38f, -1e-38f, 5e-39f, -2.5e-39f};
        const float s = quantizeActBlock(sub, 4, q, &sum);
        QVERIFY(s > 0.0f && !std::isfinite(1.0f / s));
        QCOMPARE(int(q[0]), 127);
        QCOMPARE(int(q[1]), -127);
        QVERIFY(std::abs(int(q[2]) - 64) <= 1 && std::abs(int(q[3]) + 32) <= 1);
        // The largest finite values.
        const float big[] = {FLT_MAX, -FLT_MAX, FLT_MAX / 2};
        QCOMPARE(quantizeActBlock(big, 3, q, &sum), FLT_MAX / 127.0f);
        QCOMPARE(int(q[0]), 127);
        QCOMPARE(int(q[1]), -127);
        QCOMPARE(int(q[2]), 63);  // (FLT_MAX / 2) · (1 / (FLT_MAX / 127)) is 63.49999.. after the rounded scale
        // NaN or ±inf anywhere in a block: scale NaN, every q 0.
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
            const float xs[] = {1.0f, bad, -3.0f};
            QVERIFY(std::isnan(quantizeActBlock(xs, 3, q, &sum)));
            QCOMPARE(sum, 0);
            for (int i = 0; i < 32; ++i) QCOMPARE(int(q[i]), 0);
        }
    }

    // Every CPU INT8 matmul lies within w8a8ErrorBound of w8a8Reference (the CUDA kernel's order, replayed), and
    // the per-token bound covers the per-output one: the tolerance wb-gpu-check asserts between CPU and GPU.
    void cpuMatmulWithinTheBoundOfTheGpuOrder() {
        for (int64_t cols : {int64_t(100), int64_t(4096), int64_t(13696)}) {
            const int64_t rows = 37, m = 5;
            std::mt19937 rng{uint32_t(cols)};
            std::normal_distribution<float> nd(0.0f, 1.0f);
            std::vector<float> wf(size_t(rows * cols)), x(size_t(m * cols));
            for (float& v : wf) v = nd(rng) * 0.05f;
            for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * (i % 101 == 0 ? 40.0f : 1.0f);  // outliers
            const WeightMatrix w = toI8(wf, rows, cols);
            const int64_t nb = actBlocks(cols);
            std::vector<int8_t> q(size_t(m * nb * 32));
            std::vector<float> d(size_t(m * nb));
            for (int64_t t = 0; t < m; ++t)
                for (int64_t b = 0; b < nb; ++b)
                    d[size_t(t * nb + b)] = quantizeActBlock(x.data() + t * cols + b * 32,
                                                             int(std::min<int64_t>(32, cols - b * 32)),
                                                             q.data() + (t * nb + b) * 32, nullptr);
            for (cpu::Isa isa : availableIsas()) {
                cpu::setIsa(isa);
                ThreadPool pool(2);
                std::vector<float> y(size_t(m * rows));
                cpu::matmul(w, x.data(), m, y.data(), pool);
                double worst = 0;
                for (int64_t t = 0; t < m; ++t)
                    for (int64_t r = 0; r < rows; ++r) {
                        const auto* wr = reinterpret_cast<const int8_t*>(w.data) + r * cols;
                        const int8_t* qt = q.data() + t * nb * 32;
                        const float* dt = d.data() + t * nb;
                        const float ref = w8a8Reference(wr, cols, qt, dt, w.rowScales[r]);
                        const double bound = w8a8ErrorBound(wr, cols, qt, dt, w.rowScales[r]);
                        const double loose = w8a8TokenErrorBound(cols, qt, dt, w.rowScales[r]);
                        const double diff = std::fabs(double(y[size_t(t * rows + r)]) - double(ref));
                        QVERIFY2(std::isfinite(ref) && bound > 0 && loose >= bound, qPrintable(QString::number(bound)));
                        QVERIFY2(diff <= bound, qPrintable(QString("%1 cols %2 (t %3, r %4): |%5 - %6| > %7")
                                                               .arg(cpu::isaName(isa)).arg(cols).arg(t).arg(r)
                                                               .arg(double(y[size_t(t * rows + r)])).arg(double(ref))
                                                               .arg(bound)));
                        worst = std::max(worst, diff / bound);
                    }
                qInfo("%s cols %lld: worst |cpu - gpu order| is %.3g of the bound", cpu::isaName(isa),
                      (long long)cols, worst);
            }
        }
    }

    // The CUDA INT8 workspace holds the activations only, never the weight: what LlamaModel::reserveStepMemory
    // reserves for GLM-4-9B's LM head at 64 sequences is 288 KiB (it was 1,242,038,272 bytes: the head expanded to
    // FP16 plus the FP16 activations), and a 2,048-token prefill through the 13,696-wide down projection 31.6 MB.
    void cudaWorkspaceIsActivationsOnly() {
        QCOMPARE(actBlocks(4096), int64_t(128));
        QCOMPARE(actBlocks(13696), int64_t(428));  // 13,696 = 428 x 32: no partial block at the real shapes
        QCOMPARE(actBlocks(100), int64_t(4));
        QCOMPARE(w8a8WorkspaceBytes(64, 4096), int64_t(64 * 128 * 4 + 64 * 4096));
        QCOMPARE(w8a8WorkspaceBytes(1, 13696), int64_t(1792 + 13824));  // each part rounded up to 256
        QCOMPARE(w8a8WorkspaceBytes(2048, 13696), int64_t(2048 * 428 * 4 + 2048 * 428 * 32));
        QCOMPARE(w8a8WorkspaceBytes(0, 4096), int64_t(0));
        static_assert(w8a8WorkspaceBytes(3, 100) == 256 + 512);
    }

    // A NaN or an infinity in a token's activations makes that token's whole output row NaN on every CPU kernel
    // (the CUDA kernel does the same by the same rule); the other tokens are untouched.
    void nonFiniteActivationPoisonsOnlyItsToken() {
        const int64_t rows = 20, cols = 100, m = 3;
        std::mt19937 rng(11);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> wf(size_t(rows * cols)), x(size_t(m * cols));
        for (float& v : wf) v = nd(rng);
        for (float& v : x) v = nd(rng);
        const WeightMatrix w = toI8(wf, rows, cols);
        for (cpu::Isa isa : availableIsas()) {
            cpu::setIsa(isa);
            ThreadPool pool(1);
            std::vector<float> clean(size_t(m * rows)), y(size_t(m * rows));
            cpu::matmul(w, x.data(), m, clean.data(), pool);
            for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
                auto xb = x;
                xb[size_t(cols + 45)] = bad;  // token 1, block 1
                cpu::matmul(w, xb.data(), m, y.data(), pool);
                for (int64_t r = 0; r < rows; ++r) {
                    QVERIFY2(std::isnan(y[size_t(rows + r)]), cpu::isaName(isa));
                    QCOMPARE(bits(y[size_t(r)]), bits(clean[size_t(r)]));
                    QCOMPARE(bits(y[size_t(2 * rows + r)]), bits(clean[size_t(2 * rows + r)]));
                }
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestInt8ActQuant)
#include "tst_int8_act_quant.moc"
