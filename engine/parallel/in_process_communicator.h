// Communicators for N ranks that are threads of one process with host-addressable buffers (CPU devices): a
// barrier-synchronised all-reduce in which each rank sums its own slice of every rank's buffer, then copies the
// summed slices back, so the work is split and every rank ends with the same bits. An abort (communicator.h) ends
// the group for good: every rank's later collectives fail, and the owner makes a new group.
#pragma once

#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace wb {

class InProcessGroup;

class InProcessCommunicator final : public Communicator {
public:
    /// One communicator per rank, all sharing one group.
    static std::vector<std::unique_ptr<Communicator>> createGroup(int worldSize);

    InProcessCommunicator(std::shared_ptr<InProcessGroup> group, int rank);
    int rank() const override { return m_rank; }
    int worldSize() const override;
    Result<void> allReduceSum(float* data, int64_t count) override;
    void abort(const std::string& why) override;
    bool aborted() const override;

private:
    std::shared_ptr<InProcessGroup> m_group;
    int m_rank;
    std::vector<float> m_partial;
};

}  // namespace wb
