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
    // The owner destroys a group only after every rank has left its step (nobody enqueues any more).
    if (m_comm) ncclCommDestroy(m_comm);
}

Result<void> NcclCommunicator::allReduceSum(float* data, int64_t count) {
    NvtxRange r("allReduceSum");
    std::lock_guard lock(m_mutex);
    if (!m_comm) return makeError("nccl: communicator of rank " + std::to_string(m_rank) + " aborted: " + m_why);
    WB_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, m_comm, m_device->stream()));
    return {};
}

void NcclCommunicator::abort(const std::string& why) {
    std::lock_guard lock(m_mutex);  // waits for an enqueue in progress on this communicator
    if (!m_comm) return;
    m_why = why;
    m_aborted = true;
    ncclCommAbort(m_comm);  // frees it; also ends this rank's kernels waiting for a peer
    m_comm = nullptr;
}

}  // namespace wb::cuda
