// NCCL behind the Communicator interface: one communicator per rank, all made together in this process
// (ncclCommInitAll), each driven by its rank's worker on that device's compute stream, so a collective is ordered
// after the matmul that produced its input without extra events. Errors become wb::Error with file:line.
#pragma once

#include <nccl.h>

#include <memory>
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

private:
    NcclCommunicator(ncclComm_t comm, CudaDevice* device, int rank, int world)
        : m_comm(comm), m_device(device), m_rank(rank), m_world(world) {}
    ncclComm_t m_comm;
    CudaDevice* m_device;
    int m_rank, m_world;
};

}  // namespace wb::cuda
