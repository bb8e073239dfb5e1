#include "parallel/worker_group.h"

namespace wb {

WorkerGroup::WorkerGroup(int size, Job init) {
    m_results.resize(size_t(std::max(size, 1)));
    m_initResults.resize(m_results.size());
    m_pending = int(m_results.size());
    for (int r = 0; r < int(m_results.size()); ++r) m_threads.emplace_back([this, r, init] { loop(r, init); });
    // Wait for every init so that run() never races a binding.
    std::unique_lock lock(m_mutex);
    m_doneCv.wait(lock, [&] { return m_pending == 0; });
}

WorkerGroup::~WorkerGroup() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) t.join();
}

void WorkerGroup::loop(int rank, Job init) {
    Result<void> initResult = init ? init(rank) : Result<void>();
    uint64_t seen = 0;
    std::unique_lock lock(m_mutex);
    m_initResults[size_t(rank)] = initResult;
    if (--m_pending == 0) m_doneCv.notify_all();
    for (;;) {
        m_cv.wait(lock, [&] { return m_stop || m_generation != seen; });
        if (m_stop) return;
        seen = m_generation;
        const Job* job = m_job;
        const auto* onError = m_onError;
        lock.unlock();
        Result<void> r = m_initResults[size_t(rank)];
        if (r) {
            try {
                r = (*job)(rank);
            } catch (const std::exception& e) {
                r = makeError(std::string("worker ") + std::to_string(rank) + ": " + e.what());
            }
        }
        if (!r && onError && *onError) (*onError)(r.error().message);
        lock.lock();
        m_results[size_t(rank)] = std::move(r);
        if (--m_pending == 0) m_doneCv.notify_all();
    }
}

Result<void> WorkerGroup::run(const Job& job, const std::function<void(const std::string&)>& onError) {
    std::unique_lock lock(m_mutex);
    m_job = &job;
    m_onError = &onError;
    m_pending = int(m_threads.size());
    ++m_generation;
    m_cv.notify_all();
    m_doneCv.wait(lock, [&] { return m_pending == 0; });
    m_job = nullptr;
    m_onError = nullptr;
    for (auto& r : m_results)
        if (!r) return r.error();
    return {};
}

}  // namespace wb
