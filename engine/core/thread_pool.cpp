#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

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

namespace {
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
// How long a thread spins before it sleeps. A pause instruction takes anything from a few cycles (AMD Zen) to
// 140 (Intel Skylake and later), so the limit is in time, checked every 256 pauses.
constexpr auto kSpinTime = std::chrono::microseconds(1000);

template <typename Pred>
bool spinUntil(Pred pred) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 1;; ++i) {
        if (pred()) return true;
        cpuRelax();
        if ((i & 255) == 0) {
            if (std::chrono::steady_clock::now() - start > kSpinTime) return false;
            // With more runnable threads than cores (other processes, or a pool larger than the machine) the
            // thread we wait for may need this core.
            std::this_thread::yield();
        }
    }
}
}  // namespace

void ThreadPool::workerLoop(int index) {
    uint64_t seen = 0;
    for (;;) {
        const bool got = spinUntil([&] {
            return m_generation.load(std::memory_order_acquire) != seen || m_stop.load(std::memory_order_relaxed);
        });
        if (!got) {
            std::unique_lock lock(m_mutex);
            m_sleepers.fetch_add(1);
            m_cv.wait(lock, [&] { return m_stop.load() || m_generation.load() != seen; });
            m_sleepers.fetch_sub(1);
        }
        if (m_stop.load()) return;
        seen = m_generation.load(std::memory_order_acquire);
        const std::function<void(int, int)>* job = m_job;
        (*job)(index, m_numThreads);
        if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard lock(m_mutex);
            m_doneCv.notify_one();
        }
    }
}

void ThreadPool::runOnAll(const std::function<void(int, int)>& fn) {
    if (m_numThreads == 1) {
        fn(0, 1);
        return;
    }
    m_job = &fn;
    m_pending.store(m_numThreads - 1, std::memory_order_relaxed);
    m_generation.fetch_add(1);  // seq_cst: ordered before the sleeper check below
    if (m_sleepers.load() > 0) {
        std::lock_guard lock(m_mutex);
        m_cv.notify_all();
    }
    fn(0, m_numThreads);
    if (spinUntil([&] { return m_pending.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock lock(m_mutex);
    m_doneCv.wait(lock, [&] { return m_pending.load(std::memory_order_acquire) == 0; });
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
