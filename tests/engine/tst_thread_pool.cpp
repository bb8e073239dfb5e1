// The kernel thread pool: every index exactly once, back-to-back jobs (the spinning fast path), jobs after the
// workers went to sleep (the condition-variable path), and clean shutdown.
#include <QtTest>
#include <atomic>
#include <thread>

#include "core/thread_pool.h"

class TestThreadPool : public QObject {
    Q_OBJECT

private slots:
    void coversEveryIndexOnce() {
        for (int threads : {1, 2, 3, 8}) {
            wb::ThreadPool pool(threads);
            QCOMPARE(pool.size(), threads);
            for (int64_t n : {0, 1, 7, 1000, 100003}) {
                std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                pool.parallelFor(n, 3, [&](int64_t b, int64_t e, int t) {
                    QVERIFY(t >= 0 && t < threads);
                    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
                });
                for (int64_t i = 0; i < n; ++i) QCOMPARE(hits[size_t(i)].load(), 1);
            }
        }
    }

    void manyBackToBackJobs() {
        wb::ThreadPool pool(4);
        std::atomic<int64_t> sum{0};
        for (int rep = 0; rep < 5000; ++rep)
            pool.runOnAll([&](int t, int n) {
                QCOMPARE(n, 4);
                sum += t;
            });
        QCOMPARE(sum.load(), int64_t(5000) * (0 + 1 + 2 + 3));
    }

    void wakesAfterSleeping() {
        wb::ThreadPool pool(3);
        for (int rep = 0; rep < 5; ++rep) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // longer than the spin: workers sleep
            std::atomic<int> ran{0};
            pool.runOnAll([&](int, int) { ran++; });
            QCOMPARE(ran.load(), 3);
        }
    }

    void destroyIdleAndBusyPools() {
        for (int rep = 0; rep < 50; ++rep) {
            wb::ThreadPool pool(2);
            if (rep % 2) pool.parallelFor(100, 1, [](int64_t, int64_t, int) {});
        }
    }
};

QTEST_APPLESS_MAIN(TestThreadPool)
#include "tst_thread_pool.moc"
