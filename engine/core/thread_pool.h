// A fixed pool of worker threads for data-parallel kernels: parallelFor splits [0, n) into chunks and the
// calling thread takes part, so a pool of N threads uses N cores in total.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
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

}  // namespace wb
