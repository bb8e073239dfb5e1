// Sampler: greedy, each truncation filter on a crafted distribution, statistical agreement with softmax, seed
// reproducibility and the penalties' exact arithmetic.
#include <QtTest>

#include <cmath>
#include <set>
#include <vector>

#include "runtime/sampler.h"

using wb::Sampler;
using wb::SamplingParams;

namespace {

// Logits whose softmax is exactly `probs` (up to a shared constant).
std::vector<float> logitsFor(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -INFINITY);
    return l;
}

std::set<int32_t> reachable(const SamplingParams& p, const std::vector<float>& logits, int draws = 4000) {
    Sampler s(p);
    std::set<int32_t> seen;
    for (int i = 0; i < draws; ++i) {
        auto l = logits;
        seen.insert(s.sample(l.data(), int32_t(l.size()), {}));
    }
    return seen;
}

SamplingParams sampling(float temperature = 1.0f) {
    SamplingParams p;
    p.temperature = temperature;
    return p;
}

}  // namespace

class TestSampler : public QObject {
    Q_OBJECT

private slots:
    void greedyPicksArgmax() {
        Sampler s(SamplingParams{});
        std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
        QCOMPARE(s.sample(l.data(), 4, {}), 1);
    }

    void greedyTiesGoToLowestId() {
        Sampler s(SamplingParams{});
        std::vector<float> l = {0.0f, 3.0f, 1.0f, 3.0f, 3.0f};
        QCOMPARE(s.sample(l.data(), 5, {}), 1);
    }

    void greedyIgnoresNan() {
        Sampler s(SamplingParams{});
        std::vector<float> l = {NAN, 1.0f, NAN, 2.0f};
        QCOMPARE(s.sample(l.data(), 4, {}), 3);
    }

    void greedyAppliesPenaltiesFirst() {
        SamplingParams p;
        p.repetitionPenalty = 2.0f;
        Sampler s(p);
        std::vector<float> l = {3.0f, 2.0f, 0.0f};
        const std::vector<int32_t> hist = {0};
        QCOMPARE(s.sample(l.data(), 3, hist), 1);  // 3/2 = 1.5 < 2
    }

    void topKKeepsOnlyK() {
        auto p = sampling();
        p.topK = 2;
        const auto seen = reachable(p, logitsFor({0.1, 0.4, 0.05, 0.3, 0.15}));
        QCOMPARE(seen, (std::set<int32_t>{1, 3}));
    }

    void topKOneIsGreedy() {
        auto p = sampling(5.0f);
        p.topK = 1;
        const auto seen = reachable(p, logitsFor({0.1, 0.2, 0.25, 0.25, 0.2}), 500);
        QCOMPARE(seen, (std::set<int32_t>{2}));  // tie goes to the lower id
    }

    void topPKeepsNucleus() {
        auto p = sampling();
        p.topP = 0.75f;  // 0.4 + 0.3 = 0.7 < 0.75, + 0.15 reaches it
        const auto seen = reachable(p, logitsFor({0.1, 0.4, 0.05, 0.3, 0.15}));
        QCOMPARE(seen, (std::set<int32_t>{1, 3, 4}));
    }

    void topPKeepsAtLeastOne() {
        auto p = sampling();
        p.topP = 0.0f;
        const auto seen = reachable(p, logitsFor({0.1, 0.4, 0.05, 0.3, 0.15}), 500);
        QCOMPARE(seen, (std::set<int32_t>{1}));
    }

    void topPOnLargeVocab() {
        // The nucleus reaches past the first sorted slice (64) so the incremental sort has to grow.
        const int n = 150000;
        std::vector<double> probs(n, 0.0);
        double rest = 1.0;
        for (int i = 0; i < 200; ++i) probs[size_t(i) * 700] = 0.9 / 200;  // 200 heavy tokens spread out
        rest -= 0.9;
        for (int i = 0; i < n; ++i)
            if (probs[size_t(i)] == 0.0) probs[size_t(i)] = rest / (n - 200);
        auto p = sampling();
        p.topP = 0.85f;
        const auto seen = reachable(p, logitsFor(probs), 3000);
        for (int32_t id : seen) QVERIFY2(id % 700 == 0 && id / 700 < 200, qPrintable(QString::number(id)));
        QVERIFY(seen.size() > 150);
    }

    void minPDropsUnlikely() {
        auto p = sampling();
        p.minP = 0.5f;  // keep p >= 0.2
        const auto seen = reachable(p, logitsFor({0.1, 0.4, 0.05, 0.3, 0.15}));
        QCOMPARE(seen, (std::set<int32_t>{1, 3}));
    }

    void filtersCombine() {
        auto p = sampling();
        p.topK = 4;     // drops 2
        p.topP = 0.9f;  // of {0.4, 0.3, 0.15, 0.1}: 0.4+0.3+0.15 = 0.85 < 0.9 -> keeps all four
        p.minP = 0.3f;  // drops p < 0.12 -> 0 (0.1) goes
        const auto seen = reachable(p, logitsFor({0.1, 0.4, 0.05, 0.3, 0.15}));
        QCOMPARE(seen, (std::set<int32_t>{1, 3, 4}));
    }

    void temperatureFollowsSoftmax_data() {
        QTest::addColumn<float>("temperature");
        QTest::addColumn<int>("topK");
        QTest::newRow("t=1") << 1.0f << 0;
        QTest::newRow("t=0.7") << 0.7f << 0;
        QTest::newRow("t=1.5") << 1.5f << 0;
        QTest::newRow("t=0.7 topK=3") << 0.7f << 3;
    }

    void temperatureFollowsSoftmax() {
        QFETCH(float, temperature);
        QFETCH(int, topK);
        const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f};
        const int k = topK > 0 ? topK : int(logits.size());
        std::vector<std::pair<float, int>> order;
        for (int i = 0; i < int(logits.size()); ++i) order.push_back({logits[size_t(i)], i});
        std::sort(order.begin(), order.end(), [](auto a, auto b) { return a.first > b.first; });
        std::vector<double> expected(logits.size(), 0.0);
        double z = 0;
        for (int i = 0; i < k; ++i) z += std::exp(double(order[size_t(i)].first) / temperature);
        for (int i = 0; i < k; ++i)
            expected[size_t(order[size_t(i)].second)] = std::exp(double(order[size_t(i)].first) / temperature) / z;

        auto p = sampling(temperature);
        p.topK = topK;
        p.seed = 1234;
        Sampler s(p);
        const int draws = 200000;
        std::vector<int> counts(logits.size(), 0);
        for (int i = 0; i < draws; ++i) {
            auto l = logits;
            ++counts[size_t(s.sample(l.data(), int32_t(l.size()), {}))];
        }
        double chi2 = 0;
        int dof = -1;
        for (size_t i = 0; i < logits.size(); ++i) {
            const double e = expected[i] * draws;
            if (e == 0) {
                QCOMPARE(counts[i], 0);
                continue;
            }
            ++dof;
            chi2 += (counts[i] - e) * (counts[i] - e) / e;
            // Each frequency within 5 standard deviations of its binomial expectation.
            const double sd = std::sqrt(draws * expected[i] * (1 - expected[i]));
            QVERIFY2(std::abs(counts[i] - e) < 5 * sd + 1,
                     qPrintable(QString("token %1: %2 vs %3").arg(i).arg(counts[i]).arg(e)));
        }
        // Chi-square with <= 5 degrees of freedom: 99.99th percentile is about 25.7.
        QVERIFY2(chi2 < 25.7, qPrintable(QString("chi2 %1 dof %2").arg(chi2).arg(dof)));
    }

    void seedIsReproducible() {
        auto p = sampling(1.0f);
        p.topP = 0.95f;
        p.seed = 42;
        std::vector<float> logits(1000);
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i) * 0.37) * 3);
        auto run = [&](uint64_t seed) {
            auto q = p;
            q.seed = seed;
            Sampler s(q);
            std::vector<int32_t> out;
            for (int i = 0; i < 200; ++i) {
                auto l = logits;
                out.push_back(s.sample(l.data(), int32_t(l.size()), out));
            }
            return out;
        };
        QCOMPARE(run(42), run(42));
        QVERIFY(run(42) != run(43));
    }

    void seedGoldenSequence() {
        // Fixed expectations guard against the draw silently depending on the standard library (the engine
        // bits are specified by std::mt19937_64; the mapping to [0,1) is ours).
        SamplingParams p = sampling(1.0f);
        p.seed = 7;
        Sampler s(p);
        std::mt19937_64 ref(7);
        const std::vector<float> logits = {0.0f, 0.0f, 0.0f, 0.0f};  // uniform: id = floor(u * 4)
        for (int i = 0; i < 50; ++i) {
            auto l = logits;
            const double u = double(ref() >> 11) * 0x1.0p-53;
            QCOMPARE(s.sample(l.data(), 4, {}), int32_t(u * 4));
        }
    }

    void repetitionPenaltyNumeric() {
        SamplingParams p;
        p.repetitionPenalty = 1.5f;
        Sampler s(p);
        std::vector<float> l = {3.0f, -2.0f, 1.0f, 0.5f};
        const std::vector<int32_t> hist = {0, 1, 0, 0};
        (void)s.sample(l.data(), 4, hist);
        QCOMPARE(l[0], 2.0f);   // positive divided, once however often it occurs
        QCOMPARE(l[1], -3.0f);  // negative multiplied
        QCOMPARE(l[2], 1.0f);
        QCOMPARE(l[3], 0.5f);
    }

    void presenceFrequencyNumeric() {
        SamplingParams p;
        p.presencePenalty = 0.5f;
        p.frequencyPenalty = 0.25f;
        Sampler s(p);
        std::vector<float> l = {3.0f, -2.0f, 1.0f};
        const std::vector<int32_t> hist = {0, 1, 0, 0};
        (void)s.sample(l.data(), 3, hist);
        QCOMPARE(l[0], 3.0f - 0.5f - 3 * 0.25f);
        QCOMPARE(l[1], -2.0f - 0.5f - 0.25f);
        QCOMPARE(l[2], 1.0f);
    }

    void penaltyWindow() {
        // The repetition penalty sees the last penaltyLastN ids of prompt + output, as llama.cpp does.
        SamplingParams p;
        p.repetitionPenalty = 2.0f;
        p.penaltyLastN = 2;
        const std::vector<int32_t> hist = {0, 0, 0, 1, 2};  // only {1, 2} are in the window
        Sampler s(p);
        std::vector<float> l = {1.0f, 1.0f, 1.0f};
        (void)s.sample(l.data(), 3, hist, 3);
        QCOMPARE(l[0], 1.0f);
        QCOMPARE(l[1], 0.5f);
        QCOMPARE(l[2], 0.5f);

        p.penaltyLastN = -1;  // whole history, prompt included
        Sampler all(p);
        l = {1.0f, 1.0f, 1.0f};
        (void)all.sample(l.data(), 3, hist, 3);
        QCOMPARE(l[0], 0.5f);

        p.penaltyLastN = 0;  // disabled
        Sampler none(p);
        l = {1.0f, 1.0f, 1.0f};
        (void)none.sample(l.data(), 3, hist, 3);
        QCOMPARE(l[0], 1.0f);
    }

    void presenceFrequencyCountOutputOnly() {
        // OpenAI / vLLM semantics: every generated id counts, no prompt id does, whatever penaltyLastN says.
        SamplingParams p;
        p.frequencyPenalty = 1.0f;
        p.presencePenalty = 0.5f;
        p.penaltyLastN = 1;
        const std::vector<int32_t> hist = {0, 0, 1, 2, 2, 1};  // prompt {0, 0}, output {1, 2, 2, 1}
        Sampler s(p);
        std::vector<float> l = {0.0f, 0.0f, 0.0f};
        (void)s.sample(l.data(), 3, hist, 2);
        QCOMPARE(l[0], 0.0f);
        QCOMPARE(l[1], -2.5f);
        QCOMPARE(l[2], -2.5f);
    }

    void penaltyIgnoresOutOfRangeIds() {
        SamplingParams p;
        p.repetitionPenalty = 2.0f;
        Sampler s(p);
        std::vector<float> l = {1.0f, 2.0f};
        const std::vector<int32_t> hist = {-1, 7, 1};
        QCOMPARE(s.sample(l.data(), 2, hist), 0);
    }

    void allMaskedFallsBack() {
        Sampler s(sampling(1.0f));
        std::vector<float> l(5, -INFINITY);
        QCOMPARE(s.sample(l.data(), 5, {}), 0);
    }

    void largeVocabTopK() {
        const int n = 150000;
        std::vector<float> logits(n);
        for (int i = 0; i < n; ++i) logits[size_t(i)] = float((i * 7919) % 1000) * 0.001f;
        auto p = sampling(1.0f);
        p.topK = 40;
        p.topP = 0.9f;
        Sampler s(p);
        QElapsedTimer t;
        t.start();
        for (int i = 0; i < 50; ++i) {
            auto l = logits;
            const int32_t id = s.sample(l.data(), n, {});
            QVERIFY(logits[size_t(id)] >= 0.99f);  // the top 40 all have 0.999 or 0.998 ... within the best 0.01
        }
        qInfo() << "50 samples over 150k vocab (top-k 40, top-p 0.9):" << t.elapsed() << "ms";
    }
};

QTEST_APPLESS_MAIN(TestSampler)
#include "tst_sampler.moc"
