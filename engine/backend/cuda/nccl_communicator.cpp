#include "backend/cuda/nccl_communicator.h"

#include "backend/cuda/common.cuh"

#define WB_NCCL_CHECK(call)                                                                                \
    do {                                                                                                   \
        const ncclResult_t wb_n_ = (call);                                                                 \
        if (wb_n_ != ncclSuccess)                                                                          \
            return ::wb::makeError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #call ": " + \
                                   ncclGetErrorString(wb_n_));                                             \
    } while (0)

namespace wb::cuda {

Result<std::vector<std::unique_ptr<Communicator>>> NcclCommunicator::createGroup(
    const std::vector<CudaDevice*>& devices) {
    const int n = int(devices.size());
    std::vector<int> ids;
    for (CudaDevice* d : devices) ids.push_back(d->index());
    std::vector<ncclComm_t> comms(size_t(n), nullptr);
    WB_NCCL_CHECK(ncclCommInitAll(comms.data(), n, ids.data()));
    std::vector<std::unique_ptr<Communicator>> out;
    for (int r = 0; r < n; ++r)
        out.push_back(std::unique_ptr<Communicator>(new NcclCommunicator(comms[size_t(r)], devices[size_t(r)], r, n)));
    return out;
}

NcclCommunicator::~NcclCommunicator() {
    if (m_comm) ncclCommDestroy(m_comm);
}

Result<void> NcclCommunicator::allReduceSum(float* data, int64_t count) {
    NvtxRange r("allReduceSum");
    WB_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, m_comm, m_device->stream()));
    return {};
}

void NcclCommunicator::abort(const std::string&) {
    // Peers blocked inside a collective on the GPU are released by aborting the communicator; it cannot be
    // used again (the model must be reloaded, which the engine's Faulted state offers).
    if (m_comm) ncclCommAbort(m_comm);
    m_comm = nullptr;
}

}  // namespace wb::cuda
