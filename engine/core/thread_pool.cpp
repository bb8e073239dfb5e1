#include "core/thread_pool.h"

#include <algorithm>

namespace wb {

int ThreadPool::hardwareThreads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : int(n);
}

ThreadPool::ThreadPool(int numThreads) {
    m_numThreads = numThreads > 0 ? numThreads : hardwareThreads();
    for (int i = 1; i < m_numThreads; ++i) m_workers.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_cv.notify_all();
    for (auto& t : m_workers) t.join();
}

void ThreadPool::workerLoop(int index) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int, int)>* job;
        {
            std::unique_lock lock(m_mutex);
            m_cv.wait(lock, [&] { return m_stop || m_generation != seen; });
            if (m_stop) return;
            seen = m_generation;
            job = m_job;
        }
        (*job)(index, m_numThreads);
        {
            std::lock_guard lock(m_mutex);
            if (--m_pending == 0) m_doneCv.notify_one();
        }
    }
}

void ThreadPool::runOnAll(const std::function<void(int, int)>& fn) {
    if (m_numThreads == 1) {
        fn(0, 1);
        return;
    }
    {
        std::lock_guard lock(m_mutex);
        m_job = &fn;
        m_pending = m_numThreads - 1;
        ++m_generation;
    }
    m_cv.notify_all();
    fn(0, m_numThreads);
    std::unique_lock lock(m_mutex);
    m_doneCv.wait(lock, [&] { return m_pending == 0; });
    m_job = nullptr;
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t maxChunks = (n + grain - 1) / grain;
    if (m_numThreads == 1 || maxChunks == 1) {
        fn(0, n, 0);
        return;
    }
    // Dynamic scheduling over a few chunks per thread keeps cores busy when chunks cost unequal time.
    const int64_t numChunks = std::min<int64_t>(maxChunks, int64_t(m_numThreads) * 4);
    const int64_t chunk = (n + numChunks - 1) / numChunks;
    std::atomic<int64_t> next{0};
    runOnAll([&](int t, int) {
        for (;;) {
            const int64_t begin = next.fetch_add(chunk);
            if (begin >= n) break;
            fn(begin, std::min(n, begin + chunk), t);
        }
    });
}

}  // namespace wb
