// A fixed pool of worker threads for data-parallel kernels: parallelFor splits [0, n) into chunks and the
// calling thread takes part, so a pool of N threads uses N cores in total.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace wb {

class ThreadPool {
public:
    /// numThreads <= 0 means one per hardware core.
    explicit ThreadPool(int numThreads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return m_numThreads; }

    /// Runs fn(begin, end, threadIndex) over [0, n) in chunks of at least `grain`; returns when all are done.
    /// Not re-entrant: call from one thread at a time.
    void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

    /// Runs fn(threadIndex, numThreads) once on each of the pool's threads (the caller is thread 0).
    void runOnAll(const std::function<void(int, int)>& fn);

    static int hardwareThreads();

private:
    void workerLoop(int index);

    int m_numThreads = 1;
    std::vector<std::thread> m_workers;
    // Dispatch is lock-free while the pool is busy: workers spin briefly on m_generation after each job (a
    // decode step issues a few hundred small jobs, and a condition-variable wake-up per job costs more than the
    // job), then sleep on m_cv so an idle engine uses no CPU.
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::condition_variable m_doneCv;
    const std::function<void(int, int)>* m_job = nullptr;
    std::atomic<uint64_t> m_generation{0};
    std::atomic<int> m_pending{0};
    std::atomic<int> m_sleepers{0};
    std::atomic<bool> m_stop{false};
};

/// Runs fn(begin, end) over [0, n) in up to `maxThreads` near-equal shares: share 0 on the calling thread, the others
/// on threads started for this call alone. For one-shot work where no pool is at hand or the pool's size is not the
/// point (a matrix converted or copied at load, a tensor encoded for export). A share whose thread cannot be started
/// (a process's thread limit) runs on the caller; returns when every share is done.
template <class Fn>
void splitAcrossThreads(int64_t n, int64_t maxThreads, Fn fn) {
    const int64_t threads = std::max<int64_t>(1, std::min(maxThreads, n));
    if (threads == 1) {
        fn(int64_t(0), n);
        return;
    }
    auto share = [&](int64_t t) { fn(n * t / threads, n * (t + 1) / threads); };
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads - 1));
    int64_t started = 1;
    try {
        for (; started < threads; ++started) pool.emplace_back(share, started);
    } catch (const std::system_error&) {
        // The shares not started run below.
    }
    for (int64_t t = started; t < threads; ++t) share(t);
    share(0);
    for (auto& th : pool) th.join();
}

}  // namespace wb
