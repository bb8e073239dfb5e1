// The module's one exported symbol: the versioned table through which the engine reaches CUDA devices and NCCL.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "backend/backend_api.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/nccl_communicator.h"

namespace {

void setError(char* err, size_t len, const std::string& msg) {
    if (err && len) std::snprintf(err, len, "%s", msg.c_str());
}

int deviceCount(char* err, size_t errLen) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        setError(err, errLen, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    return n;
}

int deviceInfo(int index, char* name, size_t nameLen, int64_t* totalBytes, int64_t* freeBytes) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return 1;
    if (name && nameLen) std::snprintf(name, nameLen, "cuda:%d %s (sm_%d%d)", index, prop.name, prop.major, prop.minor);
    size_t f = 0, t = 0;
    int prev = 0;
    cudaGetDevice(&prev);
    if (cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&f, &t) == cudaSuccess) {
        if (totalBytes) *totalBytes = int64_t(t);
        if (freeBytes) *freeBytes = int64_t(f);
    } else if (totalBytes) {
        *totalBytes = int64_t(prop.totalGlobalMem);
    }
    cudaSetDevice(prev);
    return 0;
}

void* createDevice(int index, char* err, size_t errLen) {
    auto d = wb::cuda::CudaDevice::create(index);
    if (!d) {
        setError(err, errLen, d.error().message);
        return nullptr;
    }
    return static_cast<wb::Device*>(d->release());
}

int createCommunicators(int worldSize, void* const* devices, void** out, char* err, size_t errLen) {
    std::vector<wb::cuda::CudaDevice*> devs;
    for (int i = 0; i < worldSize; ++i) {
        auto* d = dynamic_cast<wb::cuda::CudaDevice*>(static_cast<wb::Device*>(devices[i]));
        if (!d) {
            setError(err, errLen, "device " + std::to_string(i) + " is not a CUDA device");
            return 1;
        }
        devs.push_back(d);
    }
    auto comms = wb::cuda::NcclCommunicator::createGroup(devs);
    if (!comms) {
        setError(err, errLen, comms.error().message);
        return 1;
    }
    for (int i = 0; i < worldSize; ++i) out[i] = (*comms)[size_t(i)].release();
    return 0;
}

const WbBackendApi kApi = {WB_BACKEND_API_VERSION, sizeof(WbBackendApi), "cuda", deviceCount, deviceInfo,
                           createDevice, createCommunicators};

}  // namespace

extern "C" __attribute__((visibility("default"))) const WbBackendApi* wbBackendGetApi(uint32_t engineApiVersion) {
    (void)engineApiVersion;  // the engine checks the version it gets back
    return &kApi;
}
