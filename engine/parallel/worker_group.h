// One worker thread per device, pinned for its lifetime (a CUDA device is bound once with cudaSetDevice and the
// thread keeps its stream and handles). run() hands each worker the same job and waits for all of them: the ranks
// of a tensor-parallel step run in lockstep, meeting in their communicator's collectives.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/result.h"

namespace wb {

class WorkerGroup {
public:
    using Job = std::function<Result<void>(int rank)>;
    /// Starts `size` threads; each runs init(rank) first (binding its device). A failed init is reported by
    /// every later run().
    WorkerGroup(int size, Job init = {});
    ~WorkerGroup();
    WorkerGroup(const WorkerGroup&) = delete;
    WorkerGroup& operator=(const WorkerGroup&) = delete;

    int size() const { return int(m_threads.size()); }
    /// Runs job(rank) on every worker and waits. Returns the first error by rank order; onError(message) is
    /// called as soon as a rank fails, so that peers blocked in a collective can be woken (Communicator::abort).
    /// Not re-entrant: one run at a time.
    Result<void> run(const Job& job, const std::function<void(const std::string&)>& onError = {});

private:
    void loop(int rank, Job init);

    std::vector<std::thread> m_threads;
    std::mutex m_mutex;
    std::condition_variable m_cv, m_doneCv;
    const Job* m_job = nullptr;
    const std::function<void(const std::string&)>* m_onError = nullptr;
    uint64_t m_generation = 0;
    int m_pending = 0;
    bool m_stop = false;
    std::vector<Result<void>> m_results;
    std::vector<Result<void>> m_initResults;
};

}  // namespace wb
