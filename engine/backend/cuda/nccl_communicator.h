// NCCL behind the Communicator interface: one communicator per rank, all made together in this process
// (ncclCommInitAll), each driven by its rank's worker on that device's compute stream, so a collective is ordered
// after the matmul that produced its input without extra events. Errors become wb::Error with file:line.
//
// Recovery (parallel/communicator.h): abort() takes the same mutex as allReduceSum's enqueue, so ncclCommAbort never
// runs while this rank's thread is inside an NCCL call on the communicator (NCCL forbids concurrent use), and the
// handle is never read after it is freed. ncclCommAbort also ends this rank's kernels that wait for a peer that will
// never arrive, so a rank blocked in a stream synchronize returns. The owner then makes a new group.
#pragma once

#include <nccl.h>

#include <atomic>
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
    std::mutex m_mutex;  // serialises this communicator's NCCL calls: the enqueue (rank's worker) and abort (any)
    ncclComm_t m_comm;   // under m_mutex; null once aborted
    std::atomic<bool> m_aborted{false};
    std::string m_why;   // under m_mutex
    CudaDevice* m_device;
    int m_rank, m_world;
};

}  // namespace wb::cuda
