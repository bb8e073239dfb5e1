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
    if (ncclComm_t c = m_comm.exchange(nullptr)) ncclCommDestroy(c);
}

Result<void> NcclCommunicator::allReduceSum(float* data, int64_t count) {
    NvtxRange r("allReduceSum");
    std::lock_guard lock(m_mutex);
    const ncclComm_t comm = m_comm.load();
    if (!comm) return makeError("nccl: the communicator of rank " + std::to_string(m_rank) + " was aborted");
    WB_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, comm, m_device->stream()));
    return {};
}

void NcclCommunicator::abort(const std::string&) {
    // Waits for an enqueue in progress on this communicator; see the header for why not for ever.
    std::unique_lock lock(m_mutex, kAbortLockWait);
    m_aborted = true;
    if (ncclComm_t c = m_comm.exchange(nullptr)) ncclCommAbort(c);  // frees it; ends this rank's waiting kernels
}

}  // namespace wb::cuda
