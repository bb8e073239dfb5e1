// NCCL behind the Communicator interface: one communicator per rank, all made together in this process
// (ncclCommInitAll), each driven by its rank's worker on that device's compute stream, so a collective is ordered
// after the matmul that produced its input without extra events. Errors become wb::Error with file:line.
//
// Recovery (parallel/communicator.h): abort() takes the same mutex as allReduceSum's enqueue, so ncclCommAbort does
// not run while this rank's thread is inside an NCCL call on the communicator (NCCL forbids concurrent use), and the
// handle is never read after it is freed. An enqueue takes microseconds; one that holds the mutex for seconds is
// itself blocked in NCCL (a lazy connection waiting for the peer that failed), and then abort goes ahead after
// kAbortLockWait, as NCCL's own remedy for a call blocked on a dead peer is ncclCommAbort from another thread.
// ncclCommAbort also ends this rank's kernels that wait for a peer that will never arrive, so a rank blocked in a
// stream synchronize returns (without an error: its results are garbage, but the step fails through the rank that
// failed first). The owner then makes a new group.
#pragma once

#include <nccl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_device.h"
#include "parallel/communicator.h"

namespace wb::cuda {

class NcclCommunicator final : public Communicator {
public:
    static Result<std::vector<std::unique_ptr<Communicator>>> createGroup(const std::vector<CudaDevice*>& devices);
    ~NcclCommunicator() override;
    int rank() const override { return m_rank; }
    int worldSize() const override { return m_world; }
    Result<void> allReduceSum(float* data, int64_t count) override;
    void abort(const std::string& why) override;
    bool aborted() const override { return m_aborted.load(); }

private:
    NcclCommunicator(ncclComm_t comm, CudaDevice* device, int rank, int world)
        : m_comm(comm), m_device(device), m_rank(rank), m_world(world) {}
    static constexpr std::chrono::seconds kAbortLockWait{2};
    std::timed_mutex m_mutex;  // serialises this communicator's NCCL calls: the enqueue (rank's worker) and abort
    std::atomic<ncclComm_t> m_comm;  // null once aborted
    std::atomic<bool> m_aborted{false};
    CudaDevice* m_device;
    int m_rank, m_world;
};

}  // namespace wb::cuda
