#include "parallel/in_process_communicator.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace wb {

// A reusable barrier that can be aborted: std::barrier cannot wake its waiters when a peer dies.
class InProcessGroup {
public:
    explicit InProcessGroup(int n) : m_buffers(size_t(n), nullptr), m_counts(size_t(n), 0), m_size(n) {}

    int size() const { return m_size; }

    Result<void> arriveAndWait() {
        std::unique_lock lock(m_mutex);
        if (m_aborted) return makeError("communicator aborted: " + m_why);
        const uint64_t gen = m_generation;
        if (++m_arrived == m_size) {
            m_arrived = 0;
            ++m_generation;
            m_cv.notify_all();
            return {};
        }
        m_cv.wait(lock, [&] { return m_generation != gen || m_aborted; });
        if (m_generation == gen) return makeError("communicator aborted: " + m_why);
        return {};
    }

    void abort(const std::string& why) {
        std::lock_guard lock(m_mutex);
        if (!m_aborted) m_why = why;
        m_aborted = true;
        m_cv.notify_all();
    }

    bool aborted() const {
        std::lock_guard lock(m_mutex);
        return m_aborted;
    }

    // Written by each rank before the first barrier of a collective, read by all after it.
    std::vector<float*> m_buffers;
    std::vector<int64_t> m_counts;

private:
    int m_size;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    int m_arrived = 0;
    uint64_t m_generation = 0;
    bool m_aborted = false;
    std::string m_why;
};

std::vector<std::unique_ptr<Communicator>> InProcessCommunicator::createGroup(int worldSize) {
    auto group = std::make_shared<InProcessGroup>(std::max(worldSize, 1));
    std::vector<std::unique_ptr<Communicator>> out;
    for (int r = 0; r < group->size(); ++r) out.push_back(std::make_unique<InProcessCommunicator>(group, r));
    return out;
}

InProcessCommunicator::InProcessCommunicator(std::shared_ptr<InProcessGroup> group, int rank)
    : m_group(std::move(group)), m_rank(rank) {}

int InProcessCommunicator::worldSize() const { return m_group->size(); }

void InProcessCommunicator::abort(const std::string& why) { m_group->abort(why); }

bool InProcessCommunicator::aborted() const { return m_group->aborted(); }

Result<void> InProcessCommunicator::allReduceSum(float* data, int64_t count) {
    InProcessGroup& g = *m_group;
    const int n = g.size();
    if (n == 1) {  // nothing to sum, but an aborted group still fails (communicator.h, step 2)
        if (g.aborted()) return makeError("communicator aborted");
        return {};
    }
    g.m_buffers[size_t(m_rank)] = data;
    g.m_counts[size_t(m_rank)] = count;
    WB_TRY(g.arriveAndWait());
    for (int r = 0; r < n; ++r)
        if (g.m_counts[size_t(r)] != count) {
            // Every rank sees the same mismatch, so all of them leave with the error and nobody waits.
            return makeError("allReduceSum: rank " + std::to_string(r) + " passed " +
                             std::to_string(g.m_counts[size_t(r)]) + " values, rank " + std::to_string(m_rank) +
                             " passed " + std::to_string(count));
        }
    // Reduce-scatter: this rank sums slice [begin, end) over all ranks in rank order (same bits everywhere)...
    const int64_t chunk = (count + n - 1) / n;
    const int64_t begin = std::min(count, chunk * m_rank), end = std::min(count, begin + chunk);
    m_partial.assign(size_t(end - begin), 0.0f);
    for (int r = 0; r < n; ++r) {
        const float* src = g.m_buffers[size_t(r)] + begin;
        for (int64_t i = 0; i < end - begin; ++i) m_partial[size_t(i)] += src[i];
    }
    // ...and once nobody reads the inputs any more, all-gathers it into every rank's buffer.
    WB_TRY(g.arriveAndWait());
    for (int r = 0; r < n; ++r) std::copy(m_partial.begin(), m_partial.end(), g.m_buffers[size_t(r)] + begin);
    // Nobody may reuse its buffer (or start the next collective) before all copies are done.
    return g.arriveAndWait();
}

}  // namespace wb
