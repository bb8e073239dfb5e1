// cpu::denseAttention (query tiles through the f32 GEMM kernels) against the one-query-at-a-time definition in
// double precision: sizes around the tile edges, head widths of the vision towers, strided interleaved q/k/v as
// the encoders lay them out, and every kernel ISA this CPU has.
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_device.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/dense_attention.h"

using namespace wb;

class TestDenseAttention : public QObject {
    Q_OBJECT
private slots:
    void matchesDefinition_data() {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("d");
        QTest::addColumn<bool>("ramp");
        for (int n : {1, 2, 7, 16, 17, 100, 257, 1100})
            for (int d : {16, 64, 128})
                QTest::newRow(qPrintable(QString("n%1_d%2").arg(n).arg(d))) << n << d << false;
        // Keys scaled up along the sequence (x1 to x5): later key blocks' scores pass the running max by far more than
        // the BF16 path's lazy-rescale margin (2^8), so its rescale-and-retake branch runs.
        QTest::newRow("n1100_d128_ramp") << 1100 << 128 << true;
        QTest::newRow("n700_d64_ramp") << 700 << 64 << true;
    }
    void matchesDefinition() {
        QFETCH(int, n);
        QFETCH(int, d);
        QFETCH(bool, ramp);
        std::mt19937 rng(uint32_t(n * 131 + d));
        std::normal_distribution<float> dist(0.0f, 1.5f);
        const int64_t stride = 3 * d + 5;  // interleaved and padded: strides are honoured
        std::vector<float> qkv(size_t(n * stride));
        for (float& x : qkv) x = dist(rng);
        if (ramp)
            for (int64_t j = 0; j < n; ++j)
                for (int64_t c = 0; c < d; ++c) qkv[size_t(j * stride + d + c)] *= 1.0f + 4.0f * float(j) / float(n);
        cpu::DenseAttentionArgs a;
        a.q = qkv.data();
        a.k = qkv.data() + d;
        a.v = qkv.data() + 2 * d;
        a.qStride = a.kStride = a.vStride = stride;
        a.n = n;
        a.headDim = d;
        a.scale = 1.0f / std::sqrt(float(d));
        a.outStride = d + 3;
        // The definition, in double, written here rather than taken from the engine (whose own one-query-at-a-time
        // reference, cpu::denseAttentionReference, is held to it too): softmax(scale q·k) over every token, times v.
        std::vector<float> want(size_t(n * a.outStride), 0.0f);
        for (int64_t i = 0; i < n; ++i) {
            std::vector<double> p(static_cast<size_t>(n));
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j < n; ++j) {
                double s = 0;
                for (int64_t c = 0; c < d; ++c) s += double(a.q[i * stride + c]) * double(a.k[j * stride + c]);
                p[size_t(j)] = s * double(a.scale);
                mx = std::max(mx, p[size_t(j)]);
            }
            for (double& x : p) sum += (x = std::exp(x - mx));
            for (int64_t c = 0; c < d; ++c) {
                double acc = 0;
                for (int64_t j = 0; j < n; ++j) acc += p[size_t(j)] * double(a.v[j * stride + c]);
                want[size_t(i * a.outStride + c)] = float(acc / sum);
            }
        }
        {
            std::vector<float> ref(size_t(n * a.outStride), 0.0f);
            a.out = ref.data();
            cpu::denseAttentionReference(a);
            float worst = 0;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t c = 0; c < d; ++c) {
                    const size_t at = size_t(i * a.outStride + c);
                    worst = std::max(worst, std::fabs(ref[at] - want[at]));
                }
            QVERIFY2(worst < 2e-5f, qPrintable(QString("the engine's reference: max |diff| %1").arg(worst)));
        }
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
        // The BF16 tile path (a reduced-precision vision tower, AMX): q, k, v and the softmax weights rounded to
        // BF16, so held to the definition at BF16's resolution: values ~N(0, 1.5²) (peaky softmax weights), measured
        // worst 0.036 over these sizes; bound 0.08. Sizes it does not take (head width not a multiple of 32, n < 16) run in f32.
        if (cpu::amx::available()) {
            a.bf16 = true;
            std::vector<float> got(size_t(n * a.outStride), -7.0f);
            a.out = got.data();
            cpu::denseAttention(a, pool);
            const bool tiled = d % 32 == 0 && n >= cpu::amx::kMinTokens;
            float worst = 0;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t c = 0; c < d; ++c)
                    worst = std::max(worst, std::fabs(got[size_t(i * a.outStride + c)] - want[size_t(i * a.outStride + c)]));
            // Ramped keys: scores up to 5x wider, so BF16's rounding of q and k moves them 5x as far (measured 0.167
            // at n1100_d128 and 0.119 at n700_d64, the same with a rescale at every raise of the max); a rescale
            // skipped or misapplied is off by the size of the values (~1.5).
            const float bound = tiled ? (ramp ? 0.25f : 0.08f) : 2e-5f;
            QVERIFY2(worst < bound, qPrintable(QString("bf16: max |diff| %1").arg(worst)));
            if (tiled) QVERIFY2(worst > 1e-5f, "bf16 requested but the f32 path ran");
            for (int64_t i = 0; i < n; ++i) QCOMPARE(got[size_t(i * a.outStride + d)], -7.0f);
        }
    }

    // The causal run (a prefill chunk at firstPos over a cache): against the per-query definition with GQA, odd
    // sizes, a chunk that does not start at 0, on every ISA.
    void causalRunMatchesDefinition_data() {
        QTest::addColumn<int>("firstPos");
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("d");
        QTest::newRow("from 0") << 0 << 70 << 64;
        QTest::newRow("chunk at 37") << 37 << 33 << 16;
        QTest::newRow("long") << 300 << 290 << 128;
        QTest::newRow("short chunk late") << 517 << 19 << 64;
        QTest::newRow("from 0, one key block") << 0 << 250 << 32;
    }
    void causalRunMatchesDefinition() {
        QFETCH(int, firstPos);
        QFETCH(int, tokens);
        QFETCH(int, d);
        const int heads = 4, kvHeads = 2;
        const int64_t L = firstPos + tokens, kvDim = int64_t(kvHeads) * d, qDim = int64_t(heads) * d;
        std::mt19937 rng(uint32_t(L * 7 + d));
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> keys(size_t(L * kvDim)), values(size_t(L * kvDim)), q(size_t(tokens * qDim));
        // Keys and values exact in FP16, so that the definition holds for an f16 cache of the same rows too.
        for (float& x : keys) x = fp16ToFp32(fp32ToFp16(dist(rng)));
        for (float& x : values) x = fp16ToFp32(fp32ToFp16(dist(rng)));
        for (float& x : q) x = dist(rng);
        std::vector<uint16_t> keys16(keys.size()), values16(values.size());
        for (size_t i = 0; i < keys.size(); ++i) keys16[i] = fp32ToFp16(keys[i]), values16[i] = fp32ToFp16(values[i]);
        const float scale = 1.0f / std::sqrt(float(d));
        // The definition, in double: token r sees positions [0, firstPos + r].
        std::vector<float> want(q.size());
        for (int64_t r = 0; r < tokens; ++r)
            for (int h = 0; h < heads; ++h) {
                const int kvh = h / (heads / kvHeads);
                const int64_t len = firstPos + r + 1;
                std::vector<double> sc(static_cast<size_t>(len));
                double mx = -1e300, sum = 0;
                for (int64_t p = 0; p < len; ++p) {
                    double s2 = 0;
                    for (int c = 0; c < d; ++c) s2 += double(q[size_t(r * qDim + h * d + c)]) * keys[size_t(p * kvDim + kvh * d + c)];
                    sc[size_t(p)] = s2 * scale;
                    mx = std::max(mx, sc[size_t(p)]);
                }
                for (double& v : sc) sum += (v = std::exp(v - mx));
                for (int c = 0; c < d; ++c) {
                    double acc = 0;
                    for (int64_t p = 0; p < len; ++p) acc += sc[size_t(p)] * values[size_t(p * kvDim + kvh * d + c)];
                    want[size_t(r * qDim + h * d + c)] = float(acc / sum);
                }
            }
        ThreadPool pool(2);
        for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512}) {
            if (cpu::setIsa(isa) != isa) continue;
            std::vector<float> got(q.size(), -7.0f);
            cpu::CausalRunArgs a;
            a.q = q.data();
            a.qStride = qDim;
            a.out = got.data();
            a.outStride = qDim;
            a.numTokens = tokens;
            a.firstPos = firstPos;
            a.numHeads = heads;
            a.numKvHeads = kvHeads;
            a.headDim = d;
            a.scale = scale;
            a.keyRow = [&](int64_t p) { return keys.data() + p * kvDim; };
            a.valueRow = [&](int64_t p) { return values.data() + p * kvDim; };
            cpu::causalAttentionTiled(a, pool);
            float worst = 0;
            for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
            QVERIFY2(worst < 2e-5f, qPrintable(QString("%1: max |diff| %2").arg(cpu::isaName(isa)).arg(worst)));
            // The same rows from an FP16 cache (widened as they are packed): the same bound.
            {
                cpu::CausalRunArgs h = a;
                h.kvType = DType::F16;
                h.keyRow = [&](int64_t p) { return keys16.data() + p * kvDim; };
                h.valueRow = [&](int64_t p) { return values16.data() + p * kvDim; };
                std::vector<float> got16(q.size(), -7.0f);
                h.out = got16.data();
                cpu::causalAttentionTiled(h, pool);
                float worst16 = 0;
                for (size_t i = 0; i < got16.size(); ++i) worst16 = std::max(worst16, std::fabs(got16[i] - want[i]));
                QVERIFY2(worst16 < 2e-5f,
                         qPrintable(QString("%1, f16 cache: max |diff| %2").arg(cpu::isaName(isa)).arg(worst16)));
            }
            // The fused BF16 tile path (a reduced-precision model's prefill): every position's mask, the GQA
            // sharing of one packed KV head, a chunk starting mid-cache. Values ~N(0, 1): measured worst 0.0078
            // over these cases; bound 0.04. Widths it does not take (16) run in f32.
            if (isa == cpu::Isa::Avx512 && cpu::amx::available()) {
                std::fill(got.begin(), got.end(), -7.0f);
                a.bf16 = true;
                cpu::causalAttentionTiled(a, pool);
                const bool tiled = d % 32 == 0;
                worst = 0;
                for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
                QVERIFY2(worst < (tiled ? 0.04f : 2e-5f), qPrintable(QString("bf16: max |diff| %1").arg(worst)));
                if (tiled) QVERIFY2(worst > 1e-6f, "bf16 requested but the f32 path ran");
                // From an FP16 cache: the rows widen to the same f32 values, so the same BF16 tiles, the same output.
                std::vector<float> got16(q.size(), -7.0f);
                cpu::CausalRunArgs h = a;
                h.kvType = DType::F16;
                h.keyRow = [&](int64_t p) { return keys16.data() + p * kvDim; };
                h.valueRow = [&](int64_t p) { return values16.data() + p * kvDim; };
                h.out = got16.data();
                cpu::causalAttentionTiled(h, pool);
                QVERIFY2(got16 == got, "bf16 tiles from an f16 cache differ from the same rows in f32");
            }
        }
        cpu::setIsa(cpu::detectedIsa());
    }

    // CpuDevice::pagedAttention's decode path (one token and KV head at a time, the group's query heads together,
    // runs of <= 16 positions inside KV blocks): a batch of decodes at positions around block and 16-edges, with a
    // prefill chunk beside them, against the definition in double; head widths that are and are not multiples of
    // the vector width, GQA groups of 1, 4, 6 and 10 heads, block sizes below, at and above 16, thread counts that
    // do and do not split groups into slices, on every ISA.
    void pagedDecodeMatchesDefinition_data() {
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("bs");
        QTest::addColumn<int>("threads");
        QTest::newRow("llama 1B shape") << 32 << 4 << 64 << 16 << 2;
        QTest::newRow("GLM-4 shape, 16 threads") << 16 << 2 << 128 << 16 << 16;
        QTest::newRow("MHA, odd width, small blocks") << 3 << 3 << 40 << 8 << 2;
        QTest::newRow("group 6, width 24, blocks of 32") << 6 << 1 << 24 << 32 << 3;
        QTest::newRow("group 10, width 72") << 20 << 2 << 72 << 16 << 5;
    }
    void pagedDecodeMatchesDefinition() {
        QFETCH(int, heads);
        QFETCH(int, kvHeads);
        QFETCH(int, d);
        QFETCH(int, bs);
        QFETCH(int, threads);
        const int64_t kvDim = int64_t(kvHeads) * d, qDim = int64_t(heads) * d, maxBlocks = 64, numBlocks = 4 * maxBlocks;
        // Decodes at these positions (one per sequence), then a 40-token prefill chunk of another sequence at 100.
        const std::vector<int32_t> decodePos = {0, 1, 15, 16, 17, 31, 33, 200, 511};
        std::vector<int32_t> seq, pos;
        for (size_t e = 0; e < decodePos.size(); ++e) seq.push_back(int32_t(e)), pos.push_back(decodePos[e]);
        const int32_t chunkSeq = int32_t(decodePos.size());
        for (int i = 0; i < 40; ++i) seq.push_back(chunkSeq), pos.push_back(100 + i);
        const int64_t numSeqs = chunkSeq + 1, n = int64_t(seq.size());
        std::vector<int32_t> tables(size_t(numSeqs * maxBlocks));
        std::mt19937 rng(uint32_t(heads * 131 + d * 7 + bs));
        for (size_t i = 0; i < tables.size(); ++i) tables[i] = int32_t(rng() % uint32_t(numBlocks));  // shared blocks are fine: read only
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> keys(size_t(numBlocks * bs * kvDim)), values(keys.size()), q(size_t(n * qDim));
        // Exact in FP16, so that the definition holds for the f16 cache of the same rows.
        for (float& x : keys) x = fp16ToFp32(fp32ToFp16(2.0f * dist(rng)));
        for (float& x : values) x = fp16ToFp32(fp32ToFp16(dist(rng)));
        for (float& x : q) x = dist(rng);
        std::vector<uint16_t> keys16(keys.size()), values16(values.size());
        for (size_t i = 0; i < keys.size(); ++i) keys16[i] = fp32ToFp16(keys[i]), values16[i] = fp32ToFp16(values[i]);
        const float scale = 1.0f / std::sqrt(float(d));
        std::vector<float> want(q.size());
        for (int64_t i = 0; i < n; ++i) {
            const int32_t* table = tables.data() + int64_t(seq[size_t(i)]) * maxBlocks;
            auto row = [&](const std::vector<float>& cache, int64_t p) {
                return cache.data() + (int64_t(table[p / bs]) * bs + p % bs) * kvDim;
            };
            const int64_t len = pos[size_t(i)] + 1;
            for (int h = 0; h < heads; ++h) {
                const int kvh = h / (heads / kvHeads);
                std::vector<double> sc(static_cast<size_t>(len));
                double mx = -1e300, sum = 0;
                for (int64_t p = 0; p < len; ++p) {
                    double s2 = 0;
                    for (int c = 0; c < d; ++c) s2 += double(q[size_t(i * qDim + h * d + c)]) * row(keys, p)[kvh * d + c];
                    mx = std::max(mx, sc[size_t(p)] = s2 * scale);
                }
                for (double& v : sc) sum += (v = std::exp(v - mx));
                for (int c = 0; c < d; ++c) {
                    double acc = 0;
                    for (int64_t p = 0; p < len; ++p) acc += sc[size_t(p)] * row(values, p)[kvh * d + c];
                    want[size_t(i * qDim + h * d + c)] = float(acc / sum);
                }
            }
        }
        AttentionBatch b{n, seq.data(), pos.data(), tables.data(), maxBlocks, 0};
        for (int32_t p : pos) b.maxContext = std::max<int64_t>(b.maxContext, p + 1);
        const KvLayer cache{keys.data(), values.data(), numBlocks, bs, kvHeads, d};
        const KvLayer cache16{keys16.data(), values16.data(), numBlocks, bs, kvHeads, d, DType::F16};
        CpuDevice dev(threads);
        for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512}) {
            if (cpu::setIsa(isa) != isa) continue;
            for (const KvLayer* c : {&cache, &cache16}) {
                std::vector<float> got(q.size(), -7.0f);
                QVERIFY(dev.pagedAttention(q.data(), heads, scale, b, *c, got.data()).ok());
                float worst = 0;
                int64_t at = 0;
                for (size_t i = 0; i < got.size(); ++i)
                    if (!(std::fabs(got[i] - want[i]) <= worst)) worst = std::fabs(got[i] - want[i]), at = int64_t(i);
                QVERIFY2(worst < 2e-5f, qPrintable(QString("%1, %2 cache: max |diff| %3 at token %4 head %5")
                                                       .arg(cpu::isaName(isa))
                                                       .arg(c->dtype == DType::F16 ? "f16" : "f32")
                                                       .arg(worst)
                                                       .arg(at / qDim)
                                                       .arg(at % qDim / d)));
            }
        }
        cpu::setIsa(cpu::detectedIsa());
    }

    // The FP16 KV cache's conversions: F16C (AVX2 and up) and the scalar definition give the same bits for every
    // f16 value widened, and for f32 values rounded (ties to even, subnormals, overflow to inf, NaN stays NaN).
    void kvRowConversions() {
        std::vector<float> src;
        for (uint32_t h = 0; h < 65536; ++h) src.push_back(fp16ToFp32(uint16_t(h)));
        std::mt19937 rng(5);
        std::uniform_int_distribution<uint32_t> bits;
        for (int i = 0; i < 200000; ++i) {
            const uint32_t b = bits(rng);
            float f;
            std::memcpy(&f, &b, 4);
            src.push_back(f);
        }
        for (float f : {65504.0f, 65520.0f, 65519.99f, 1e-8f, -6.1e-5f, 5.96e-8f, 2.98e-8f, 0.0f, -0.0f, INFINITY})
            src.push_back(f);
        src.push_back(1.0f + 1.0f / 2048);  // a tie: rounds to even (1.0)
        std::vector<uint16_t> want(src.size());
        for (size_t i = 0; i < src.size(); ++i) want[i] = fp32ToFp16(src[i]);
        for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512}) {
            if (cpu::setIsa(isa) != isa) continue;
            std::vector<uint16_t> got(src.size() + 3, 0xabcd);
            cpu::storeKvRow(src.data(), got.data(), DType::F16, int64_t(src.size()));
            for (size_t i = 0; i < src.size(); ++i) {
                const bool nan = std::isnan(src[i]);
                if (nan ? (got[i] & 0x7c00) != 0x7c00 || (got[i] & 0x3ff) == 0 : got[i] != want[i])
                    QFAIL(qPrintable(QString("%1: %2 stored as %3, want %4").arg(cpu::isaName(isa)).arg(double(src[i]))
                                             .arg(got[i], 4, 16).arg(want[i], 4, 16)));
            }
            QCOMPARE(got[src.size()], uint16_t(0xabcd));  // nothing past n
            std::vector<float> back(65536 + 1, -3.0f);
            cpu::loadKvRow(got.data(), DType::F16, back.data(), 65536);
            for (size_t i = 0; i < 65536; ++i)
                if (!(std::isnan(src[i]) ? std::isnan(back[i]) : std::memcmp(&back[i], &src[i], 4) == 0))
                    QFAIL(qPrintable(QString("%1: f16 %2 widened wrong").arg(cpu::isaName(isa)).arg(i, 4, 16)));
            QCOMPARE(back[65536], -3.0f);
            // F32 rows are copied.
            std::vector<float> copy(17);
            cpu::storeKvRow(src.data() + 1000, copy.data(), DType::F32, 17);
            QVERIFY(std::memcmp(copy.data(), src.data() + 1000, 17 * 4) == 0);
        }
        cpu::setIsa(cpu::detectedIsa());
    }

    // CpuDevice::writeKv into an f16 cache: each token's row at its slot, rounded, nothing else written.
    void writeKvF16() {
        const int64_t bs = 4, numBlocks = 3, kvHeads = 2, d = 8, kvDim = kvHeads * d;
        std::vector<uint16_t> keys(size_t(numBlocks * bs * kvDim), 0x7e00), values(keys.size(), 0x7e00);
        const KvLayer cache{keys.data(), values.data(), numBlocks, bs, kvHeads, d, DType::F16};
        const std::vector<int32_t> seq = {0, 0, 0}, pos = {3, 4, 5}, table = {2, 0, 1};
        AttentionBatch b{3, seq.data(), pos.data(), table.data(), 3, 6};
        std::vector<float> k(size_t(3 * kvDim)), v(k.size());
        for (size_t i = 0; i < k.size(); ++i) k[i] = 0.1f * float(i) + 1e-4f, v[i] = -0.37f * float(i);
        CpuDevice dev(1);
        QVERIFY(dev.writeKv(k.data(), v.data(), b, cache).ok());
        for (int64_t t = 0; t < 3; ++t) {
            const int64_t p = pos[size_t(t)], slot = (table[size_t(p / bs)] * bs + p % bs) * kvDim;
            for (int64_t c = 0; c < kvDim; ++c) {
                QCOMPARE(keys[size_t(slot + c)], fp32ToFp16(k[size_t(t * kvDim + c)]));
                QCOMPARE(values[size_t(slot + c)], fp32ToFp16(v[size_t(t * kvDim + c)]));
            }
        }
        int64_t untouched = 0;
        for (uint16_t x : keys) untouched += x == 0x7e00;
        QCOMPARE(untouched, numBlocks * bs * kvDim - 3 * kvDim);
    }

    // The SIMD exp behind every softmax: relative error against std::exp over the range softmax feeds it.
    void expShiftSumAccuracy() {
        std::vector<float> xs;
        for (float v = -90.0f; v <= 0.0f; v += 0.0173f) xs.push_back(v);
        for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512}) {
            if (cpu::setIsa(isa) != isa) continue;
            std::vector<float> y = xs;
            const float sum = cpu::expShiftSum(y.data(), 0.0f, int64_t(y.size()));
            double want = 0, worst = 0;
            for (size_t i = 0; i < xs.size(); ++i) {
                const double e = std::exp(double(xs[i]));
                want += e;
                if (e > 1e-37) worst = std::max(worst, std::fabs(y[i] - e) / e);
            }
            QVERIFY2(worst < 1e-6, qPrintable(QString("%1: worst relative error %2").arg(cpu::isaName(isa)).arg(worst)));
            QVERIFY(std::fabs(sum - want) / want < 1e-5);
        }
        cpu::setIsa(cpu::detectedIsa());
    }
};

QTEST_GUILESS_MAIN(TestDenseAttention)
#include "tst_dense_attention.moc"
