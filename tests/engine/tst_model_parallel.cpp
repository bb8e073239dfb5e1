// Tensor parallelism over in-process CPU devices: the communicator and worker group on their own, then the model
// split across 2 (and 4) ranks against the same model on one device: same greedy tokens, logits within a stated
// tolerance (the split only changes the order of float sums in O, down and the all-reduce).
#include <QProcess>
#include <QtTest>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "api/engine.h"
#include "backend/backend_registry.h"
#include "backend/fault_injecting_device.h"
#include "fixtures.h"
#include "models/decoder/generator.h"
#include "models/decoder/llama_model.h"
#include "parallel/in_process_communicator.h"
#include "parallel/worker_group.h"

namespace {

const char* kGguf = "models/stories260K/stories260K.gguf";
const char* kHf = "models/stories260K/hf";

// |a - b| <= kRelTol * max|a| + kAbsTol for every logit. Measured differences are ~1e-6 relative on stories260K;
// the bound leaves room for other ISAs' summation orders.
constexpr double kRelTol = 1e-4;
constexpr double kAbsTol = 1e-5;

std::unique_ptr<wb::LlamaModel> load(const std::string& path, int degree, wb::Precision p = wb::Precision::Native) {
    wb::LoadOptions o;
    o.precision = p;
    o.numThreads = 2;
    o.parallelDegree = degree;
    auto m = wb::LlamaModel::load(path, o);
    if (!m) qWarning("load failed: %s", m.error().message.c_str());
    return m ? std::move(*m) : nullptr;
}

std::vector<float> allLogits(wb::LlamaModel& m, const std::vector<int32_t>& ids) {
    wb::KvCache cache(m.config(), int64_t(ids.size()));
    std::vector<float> out(ids.size() * size_t(m.config().vocabSize));
    auto r = m.forward(ids, 0, cache, out.data(), wb::LogitsMode::All);
    if (!r) qWarning("forward failed: %s", r.error().message.c_str());
    return out;
}

// Returns an empty string when within tolerance, else where it failed.
QString compareLogits(const std::vector<float>& ref, const std::vector<float>& got) {
    if (ref.size() != got.size()) return "sizes differ";
    double maxRef = 0, maxDiff = 0;
    for (float x : ref) maxRef = std::max(maxRef, double(std::fabs(x)));
    for (size_t i = 0; i < ref.size(); ++i) maxDiff = std::max(maxDiff, double(std::fabs(ref[i] - got[i])));
    qInfo("max |logit| %.4g, max |diff| %.3g (%.3g relative)", maxRef, maxDiff, maxDiff / std::max(maxRef, 1e-30));
    if (maxDiff <= kRelTol * maxRef + kAbsTol) return {};
    return QString("max |diff| %1 exceeds %2").arg(maxDiff).arg(kRelTol * maxRef + kAbsTol);
}

std::vector<int32_t> greedyTokens(wb::LlamaModel& m, int64_t n) {
    wb::GenerateOptions g;
    g.maxNewTokens = n;
    g.sampling.temperature = 0;
    g.ignoreEos = true;
    auto ids = m.tokenizer().encode("Once upon a time", true, wb::SpecialTokens::Plain);
    auto r = wb::generate(m, ids, g);
    if (!r) qWarning("generate failed: %s", r.error().message.c_str());
    return r ? r->tokens : std::vector<int32_t>{};
}

// Writes a random-weight checkpoint with wb-make-model (stories260K's tokenizer, its 512-token vocabulary).
std::string makeModel(const QStringList& shape, const QString& name) {
#ifdef WB_MAKE_MODEL
    const QString out = QString::fromStdString(wbtest::tempDir()) + "/" + name;
    QStringList args{"--out", out, "--format", "gguf", "--vocab", "512", "--tokenizer-from",
                     QString::fromStdString(wbtest::fixture(kGguf))};
    args += shape;
    QProcess p;
    p.start(WB_MAKE_MODEL, args);
    if (!p.waitForFinished(120000) || p.exitCode() != 0) {
        qWarning("wb-make-model failed: %s", p.readAllStandardError().constData());
        return {};
    }
    return out.toStdString();
#else
    return {};
#endif
}

}  // namespace

class TestModelParallel : public QObject {
    Q_OBJECT

private slots:
    // ---- communicator and workers ----

    void allReduceSumsAcrossRanks() {
        for (int world : {1, 2, 3, 4}) {
            auto comms = wb::InProcessCommunicator::createGroup(world);
            QCOMPARE(int(comms.size()), world);
            const int64_t count = 1001;  // not a multiple of the world size: uneven slices
            std::vector<std::vector<float>> data(static_cast<size_t>(world), std::vector<float>(static_cast<size_t>(count)));
            for (int r = 0; r < world; ++r)
                for (int64_t i = 0; i < count; ++i) data[size_t(r)][size_t(i)] = float(r + 1) * 0.1f + float(i) * 1e-3f;
            std::vector<std::thread> threads;
            std::atomic<int> failures{0};
            for (int r = 0; r < world; ++r)
                threads.emplace_back([&, r] {
                    // No QCOMPARE off the test thread: count failures instead.
                    if (comms[size_t(r)]->rank() != r || comms[size_t(r)]->worldSize() != world) ++failures;
                    for (int rep = 0; rep < 3; ++rep)  // back-to-back collectives reuse the barrier
                        if (!comms[size_t(r)]->allReduceSum(data[size_t(r)].data(), rep == 0 ? count : 0)) ++failures;
                });
            for (auto& t : threads) t.join();
            QCOMPARE(failures.load(), 0);
            for (int64_t i = 0; i < count; ++i) {
                float want = 0;
                for (int r = 0; r < world; ++r) want += float(r + 1) * 0.1f + float(i) * 1e-3f;
                QVERIFY(std::fabs(data[0][size_t(i)] - want) <= 1e-5f * std::fabs(want));
                for (int r = 1; r < world; ++r) QCOMPARE(data[size_t(r)][size_t(i)], data[0][size_t(i)]);  // bitwise
            }
        }
    }

    void allReduceMismatchedCountsFailOnEveryRank() {
        auto comms = wb::InProcessCommunicator::createGroup(2);
        std::vector<float> a(8, 1.0f), b(6, 1.0f);
        wb::Result<void> ra, rb;
        std::thread t([&] { rb = comms[1]->allReduceSum(b.data(), 6); });
        ra = comms[0]->allReduceSum(a.data(), 8);
        t.join();
        QVERIFY(!ra);
        QVERIFY(!rb);
        QVERIFY(ra.error().message.find("rank") != std::string::npos);
    }

    void abortWakesWaitingRanks() {
        auto comms = wb::InProcessCommunicator::createGroup(3);
        std::vector<float> a(4, 1.0f), b(4, 1.0f);
        wb::Result<void> ra, rb;
        std::thread t0([&] { ra = comms[0]->allReduceSum(a.data(), 4); });
        std::thread t1([&] { rb = comms[1]->allReduceSum(b.data(), 4); });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        comms[2]->abort("rank 2 failed");  // rank 2 never arrives
        t0.join();
        t1.join();
        QVERIFY(!ra);
        QVERIFY(!rb);
        QVERIFY(ra.error().message.find("rank 2 failed") != std::string::npos);
        // An aborted group stays aborted (communicator.h, step 2): a later collective fails at once, no wait.
        for (auto& c : comms) QVERIFY(c->aborted());
        QVERIFY(!comms[2]->allReduceSum(a.data(), 4));
        // Step 3: a new group from the same factory works.
        comms = wb::InProcessCommunicator::createGroup(3);
        QVERIFY(!comms[0]->aborted());
        std::vector<std::thread> ts;
        std::vector<std::vector<float>> d(3, std::vector<float>(4, 1.0f));
        std::atomic<int> failures{0};
        for (int r = 0; r < 3; ++r)
            ts.emplace_back([&, r] {
                if (!comms[size_t(r)]->allReduceSum(d[size_t(r)].data(), 4)) ++failures;
            });
        for (auto& t : ts) t.join();
        QCOMPARE(failures.load(), 0);
        QCOMPARE(d[2][3], 3.0f);
    }

    // The recovery contract end to end on workers: a rank fails between collectives, its onError aborts the
    // group, every other rank's step ends with an error (none waits for ever), and a new group works.
    void failedRankReleasesEveryPeer() {
        const int world = 4;
        wb::WorkerGroup g(world);
        auto comms = wb::InProcessCommunicator::createGroup(world);
        std::vector<std::vector<float>> data(world, std::vector<float>(16, 1.0f));
        std::vector<wb::Result<void>> perRank(world);
        auto step = [&](int r) -> wb::Result<void> {
            perRank[size_t(r)] = [&]() -> wb::Result<void> {
                for (int i = 0; i < 3; ++i) {
                    if (r == 2 && i == 1) return wb::makeError("rank 2 failed between collectives");
                    WB_TRY(comms[size_t(r)]->allReduceSum(data[size_t(r)].data(), 16));
                }
                return {};
            }();
            return perRank[size_t(r)];
        };
        auto abortAll = [&](const std::string& why) {
            for (auto& c : comms) c->abort(why);
        };
        const auto t0 = std::chrono::steady_clock::now();
        auto r = g.run(step, abortAll);
        QVERIFY(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
        QVERIFY(!r);
        for (int k = 0; k < world; ++k) {
            QVERIFY2(!perRank[size_t(k)], qPrintable(QString("rank %1 succeeded").arg(k)));
            QVERIFY(perRank[size_t(k)].error().message.find("rank 2 failed") != std::string::npos);
        }
        // Re-created from the same factory once every rank has left (communicator.h, step 3): the next step works.
        comms = wb::InProcessCommunicator::createGroup(world);
        for (auto& d : data) std::fill(d.begin(), d.end(), 1.0f);
        auto ok = g.run([&](int k) { return comms[size_t(k)]->allReduceSum(data[size_t(k)].data(), 16); }, abortAll);
        QVERIFY(ok);
        for (const auto& d : data) QCOMPARE(d[15], float(world));
    }

    void workerGroupRunsEveryRankAndReportsErrors() {
        std::vector<std::thread::id> initIds(3), runIds(3);
        wb::WorkerGroup g(3, [&](int r) {
            initIds[size_t(r)] = std::this_thread::get_id();
            return wb::Result<void>();
        });
        QCOMPARE(g.size(), 3);
        for (int rep = 0; rep < 5; ++rep) {
            QVERIFY(g.run([&](int r) {
                runIds[size_t(r)] = std::this_thread::get_id();
                return wb::Result<void>();
            }));
            QVERIFY(runIds == initIds);  // pinned: each rank always runs on its own thread
        }
        std::atomic<int> aborted{0};
        auto r = g.run([](int r) -> wb::Result<void> {
            if (r == 1) return wb::makeError("rank one broke");
            return {};
        }, [&](const std::string&) { ++aborted; });
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().message), QString("rank one broke"));
        QCOMPARE(aborted.load(), 1);
        QVERIFY(g.run([](int) { return wb::Result<void>(); }));  // usable after an error
    }

    // ---- recovery after a failed step (parallel/communicator.h) ----

    void rankFailureMidStepRecovers() {
        WB_REQUIRE_FIXTURE(kGguf);
        const std::string path = wbtest::fixture(kGguf);
        auto fresh = load(path, 2);
        QVERIFY(fresh);
        auto ids = fresh->tokenizer().encode("Once upon a time there was", true, wb::SpecialTokens::Plain);
        const std::vector<float> want = allLogits(*fresh, ids);
        fresh.reset();

        std::vector<wb::FaultInjectingDevice*> devs;
        wb::setDeviceWrapperForTesting([&](int, std::unique_ptr<wb::Device> d) {
            auto w = std::make_unique<wb::FaultInjectingDevice>(std::move(d));
            devs.push_back(w.get());
            return std::unique_ptr<wb::Device>(std::move(w));
        });
        auto m = load(path, 2);
        wb::setDeviceWrapperForTesting({});
        QVERIFY(m);
        QCOMPARE(devs.size(), size_t(2));
        // Where rank 1's step fails: its 40th op, inside the layers, while rank 0 goes on to the next all-reduce
        // and waits there for a peer that never arrives.
        wb::KvCache cache(m->config(), int64_t(ids.size()));
        std::vector<float> got(ids.size() * size_t(m->config().vocabSize));
        const int64_t before = devs[1]->opsRun();
        devs[1]->failAfter(40, wb::FaultInjectingDevice::Failure::Error, "rank 1 ran out of memory");
        const auto t0 = std::chrono::steady_clock::now();
        auto r = m->forward(ids, 0, cache, got.data(), wb::LogitsMode::All);
        QVERIFY(!r);  // returned: no rank hangs
        QVERIFY(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
        QVERIFY2(r.error().message.find("rank 1 ran out of memory") != std::string::npos, r.error().message.c_str());
        QVERIFY(devs[1]->opsRun() - before > 40);
        // An ordinary error: the communicators were re-created, the model needs no reload.
        QCOMPARE(m->communicatorRecoveries(), 1);
        QVERIFY(m->needsReload().empty());
        // The same step again on the same cache (its keys and values overwritten): bit-identical to a fresh model.
        r = m->forward(ids, 0, cache, got.data(), wb::LogitsMode::All);
        QVERIFY2(r, r ? "" : r.error().message.c_str());
        QCOMPARE(got.size(), want.size());
        QVERIFY(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        // And a failure on rank 0 instead, at its very first op of the step.
        devs[0]->failAfter(0, wb::FaultInjectingDevice::Failure::Error, "rank 0 failed early");
        QVERIFY(!m->forward(ids, 0, cache, got.data(), wb::LogitsMode::All));
        QCOMPARE(m->communicatorRecoveries(), 2);
        QVERIFY(m->forward(ids, 0, cache, got.data(), wb::LogitsMode::All));
        QVERIFY(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }

    void deviceFaultNeedsReload() {
        WB_REQUIRE_FIXTURE(kGguf);
        std::vector<wb::FaultInjectingDevice*> devs;
        wb::setDeviceWrapperForTesting([&](int, std::unique_ptr<wb::Device> d) {
            auto w = std::make_unique<wb::FaultInjectingDevice>(std::move(d));
            devs.push_back(w.get());
            return std::unique_ptr<wb::Device>(std::move(w));
        });
        auto m = load(wbtest::fixture(kGguf), 2);
        wb::setDeviceWrapperForTesting({});
        QVERIFY(m && devs.size() == 2);
        auto ids = m->tokenizer().encode("Once upon a time", true, wb::SpecialTokens::Plain);
        wb::KvCache cache(m->config(), int64_t(ids.size()));
        std::vector<float> got(size_t(m->config().vocabSize));
        QVERIFY(m->forward(ids, 0, cache, got.data()));
        devs[0]->failAfter(25, wb::FaultInjectingDevice::Failure::Fault, "illegal address");
        QVERIFY(!m->forward(ids, 0, cache, got.data()));
        // A sticky fault: no re-created communicators would help; the model says it needs a reload, and says why.
        const std::string why = m->needsReload();
        QVERIFY2(why.find("illegal address") != std::string::npos, why.c_str());
        QCOMPARE(m->communicatorRecoveries(), 0);
        auto r = m->forward(ids, 0, cache, got.data());
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().message), QString::fromStdString(why));
    }

    // ---- the model split across ranks ----

    void degreeTwoMatchesDegreeOne_data() {
        QTest::addColumn<QString>("rel");
        QTest::newRow("gguf") << QString(kGguf);
        QTest::newRow("hf") << QString(kHf);
    }
    void degreeTwoMatchesDegreeOne() {
        QFETCH(QString, rel);
        WB_REQUIRE_FIXTURE(rel.toStdString());
        auto one = load(wbtest::fixture(rel.toStdString()), 1);
        auto two = load(wbtest::fixture(rel.toStdString()), 2);
        QVERIFY(one && two);
        QCOMPARE(two->parallelDegree(), 2);
        QVERIFY(!two->kvOnHost());
        QCOMPARE(two->deviceNames().size(), size_t(2));
        // Each rank holds about half of the layer weights (the embedding is replicated).
        const auto bytes = two->deviceWeightBytes();
        QVERIFY(bytes[0] < one->deviceWeightBytes()[0]);
        QCOMPARE(two->weightBytes(), one->weightBytes());

        auto ids = one->tokenizer().encode("Once upon a time, there was a little", true, wb::SpecialTokens::Plain);
        const QString cmp = compareLogits(allLogits(*one, ids), allLogits(*two, ids));
        QVERIFY2(cmp.isEmpty(), qPrintable(cmp));
        const auto a = greedyTokens(*one, 64), b = greedyTokens(*two, 64);
        QCOMPARE(a.size(), size_t(64));
        QVERIFY(a == b);
    }

    // A mixed step (a prefill chunk beside decodes) through a pool whose storage lives with the ranks, as the
    // engine drives it; the head is split across the ranks and gathered.
    void batchedStepOverExternalPool() {
        WB_REQUIRE_FIXTURE(kGguf);
        auto one = load(wbtest::fixture(kGguf), 1);
        auto two = load(wbtest::fixture(kGguf), 2);
        QVERIFY(one && two);
        const wb::ModelConfig& c = one->config();
        auto run = [&](wb::LlamaModel& m, wb::KvStorage storage) {
            wb::KvBlockPool pool(c.numLayers, c.numKvHeads * c.headDim, 4, 32, storage);
            std::vector<wb::BlockTable> tables(3);
            for (auto& t : tables)
                for (int b = 0; b < 8; ++b) t.blocks.push_back(*pool.allocate());
            const std::vector<int32_t> p0{1, 403, 407, 261, 378}, p1{1, 9, 30}, p2{1, 200, 300, 400, 100, 50, 60};
            std::vector<float> logits(3 * size_t(c.vocabSize)), all;
            // Step 1: three prefills; step 2: two decodes and the rest of a prefill, mixed.
            std::vector<wb::BatchSequence> s1{{p0, 0, &tables[0], true}, {p1, 0, &tables[1], true},
                                              {std::span(p2).first(4), 0, &tables[2], false}};
            if (!m.forwardBatch(s1, pool, logits.data())) return std::vector<float>{};
            all.insert(all.end(), logits.begin(), logits.begin() + 2 * c.vocabSize);
            const std::vector<int32_t> d0{42}, d1{77};
            std::vector<wb::BatchSequence> s2{{d0, 5, &tables[0], true}, {std::span(p2).subspan(4), 4, &tables[2], true},
                                              {d1, 3, &tables[1], true}};
            if (!m.forwardBatch(s2, pool, logits.data())) return std::vector<float>{};
            all.insert(all.end(), logits.begin(), logits.end());
            return all;
        };
        const auto ref = run(*one, wb::KvStorage::Host);
        const auto got = run(*two, wb::KvStorage::External);
        QCOMPARE(ref.size(), size_t(5 * c.vocabSize));
        const QString cmp = compareLogits(ref, got);
        QVERIFY2(cmp.isEmpty(), qPrintable(cmp));
    }

    // With the f32 cache and with the f16 one (each rank keeps its KV heads' share in the pool's type).
    void engineAtDegreeTwoGivesSameTokens_data() {
        QTest::addColumn<bool>("f16");
        QTest::newRow("f32 KV cache") << false;
        QTest::newRow("f16 KV cache") << true;
    }
    void engineAtDegreeTwoGivesSameTokens() {
        WB_REQUIRE_FIXTURE(kGguf);
        QFETCH(bool, f16);
        auto tokens = [f16](int degree) {
            wb::EngineOptions o;
            o.modelPath = wbtest::fixture(kGguf);
            o.load.numThreads = 2;
            o.load.parallelDegree = degree;
            o.numKvBlocks = 64;
            o.kvCacheType = f16 ? wb::KvCacheType::F16 : wb::KvCacheType::F32;
            auto e = wb::Engine::create(o);
            if (!e) {
                qWarning("engine: %s", e.error().message.c_str());
                return std::vector<std::vector<int32_t>>{};
            }
            std::vector<std::vector<int32_t>> out(3);
            std::mutex mu;
            const char* prompts[] = {"Once upon a time", "The cat", "Lily and Ben went to the"};
            for (int i = 0; i < 3; ++i) {
                wb::Request r;
                r.prompt = prompts[i];
                r.sampling.temperature = 0;
                r.maxTokens = 24 + 8 * i;
                r.ignoreEos = true;
                (*e)->submit(r, [&, i](const wb::Event& ev) {
                    std::lock_guard lock(mu);
                    if (ev.type == wb::EventType::Finished) out[size_t(i)] = ev.tokens;
                });
            }
            (*e)->waitIdle();
            if (degree > 1 && (*e)->stats().device.find("tensor parallel 2") == std::string::npos)
                qWarning("device: %s", (*e)->stats().device.c_str());
            // Each device reports its own share: two ranks split the weights and the KV pool about evenly.
            const wb::StatsSnapshot st = (*e)->stats();
            if (st.devices.size() != size_t(degree)) {
                qWarning("%zu device entries for degree %d", st.devices.size(), degree);
                return std::vector<std::vector<int32_t>>{};
            }
            int64_t weights = 0, kv = 0;
            for (const auto& d : st.devices) {
                weights += d.weightBytes;
                kv += d.kvCacheBytes;
                if (d.weightBytes <= 0 || d.totalBytes <= 0 || d.freeBytes <= 0) {
                    qWarning("device %s: weights %lld, memory %lld/%lld", d.name.c_str(), (long long)d.weightBytes,
                             (long long)d.freeBytes, (long long)d.totalBytes);
                    return std::vector<std::vector<int32_t>>{};
                }
            }
            if (weights < st.weightBytes) {  // ranks hold the whole model between them (some parts twice)
                qWarning("device weights %lld < model %lld", (long long)weights, (long long)st.weightBytes);
                return std::vector<std::vector<int32_t>>{};
            }
            if (st.kvCacheType != (f16 ? "f16" : "f32")) {
                qWarning("KV cache type %s", st.kvCacheType.c_str());
                return std::vector<std::vector<int32_t>>{};
            }
            if (kv != st.kvCacheBytes || (degree > 1 && st.devices[0].kvCacheBytes != st.devices[1].kvCacheBytes)) {
                qWarning("KV shares do not add up: %lld of %lld", (long long)kv, (long long)st.kvCacheBytes);
                return std::vector<std::vector<int32_t>>{};
            }
            return out;
        };
        const auto a = tokens(1), b = tokens(2);
        QCOMPARE(a.size(), size_t(3));
        QCOMPARE(a[2].size(), size_t(40));
        QVERIFY(a == b);
    }

    // Fewer KV heads than ranks: every rank keeps the one KV head its query heads read. q8_0 also cuts O and down
    // at quantization-block boundaries.
    void fewerKvHeadsThanRanks_data() {
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<int>("degree");
        QTest::newRow("f32 kv1 tp2") << "f32" << 1 << 2;
        QTest::newRow("f32 kv1 tp4") << "f32" << 1 << 4;
        QTest::newRow("f32 kv2 tp4") << "f32" << 2 << 4;
        QTest::newRow("q8_0 kv1 tp2") << "q8_0" << 1 << 2;
    }
    void fewerKvHeadsThanRanks() {
        QFETCH(QString, dtype);
        QFETCH(int, kvHeads);
        QFETCH(int, degree);
        WB_REQUIRE_FIXTURE(kGguf);
#ifndef WB_MAKE_MODEL
        QSKIP("built without wb-make-model");
#endif
        const std::string path =
            makeModel({"--preset", "tiny", "--layers", "2", "--heads", "8", "--kv-heads", QString::number(kvHeads),
                       "--dtype", dtype, "--seed", "7"},
                      QString("tp-%1-kv%2.gguf").arg(dtype).arg(kvHeads));
        QVERIFY(!path.empty());
        auto one = load(path, 1);
        auto many = load(path, degree);
        QVERIFY(one && many);
        QCOMPARE(many->config().numKvHeads, int64_t(kvHeads));
        std::vector<int32_t> ids{1, 45, 300, 12, 99, 250, 7, 401};
        const QString cmp = compareLogits(allLogits(*one, ids), allLogits(*many, ids));
        QVERIFY2(cmp.isEmpty(), qPrintable(cmp));
        QVERIFY(greedyTokens(*one, 16) == greedyTokens(*many, 16));
    }

    void badDegreeIsAnError() {
        WB_REQUIRE_FIXTURE(kGguf);
        wb::LoadOptions o;
        o.parallelDegree = 3;  // 8 heads
        auto m = wb::LlamaModel::load(wbtest::fixture(kGguf), o);
        QVERIFY(!m);
        QVERIFY2(m.error().message.find("does not divide the 8 attention heads") != std::string::npos,
                 m.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestModelParallel)
#include "tst_model_parallel.moc"
