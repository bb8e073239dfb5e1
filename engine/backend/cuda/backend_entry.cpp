// The module's one exported symbol: the versioned table through which the engine reaches CUDA devices and NCCL.
#include <cuda.h>  // driver types only: the entry points are looked up at run time, libcuda is not linked
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>

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

// Whether the process already holds a context on the GPU (cuDevicePrimaryCtxGetState, looked up through the
// runtime so that the module does not link libcuda): only then may probing ask for free memory, which needs one.
bool hasContext(int index) {
    using GetState = CUresult (*)(CUdevice, unsigned int*, int*);
    using DeviceGet = CUresult (*)(CUdevice*, int);
    static GetState getState = nullptr;
    static DeviceGet deviceGet = nullptr;
    static bool looked = false;
    if (!looked) {
        looked = true;
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &f, 7000, cudaEnableDefault, &q) ==
                cudaSuccess && q == cudaDriverEntryPointSuccess)
            getState = reinterpret_cast<GetState>(f);
        if (cudaGetDriverEntryPointByVersion("cuDeviceGet", &f, 2000, cudaEnableDefault, &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            deviceGet = reinterpret_cast<DeviceGet>(f);
        cudaGetLastError();
    }
    CUdevice dev{};
    unsigned int flags = 0;
    int active = 0;
    return getState && deviceGet && deviceGet(&dev, index) == CUDA_SUCCESS &&
           getState(dev, &flags, &active) == CUDA_SUCCESS && active;
}

// Name and memory without making a context on the GPU (a context costs hundreds of MB and seconds): the total
// comes from the properties; the free figure only where this process already has a context (else -1).
int deviceInfo(int index, char* name, size_t nameLen, int64_t* totalBytes, int64_t* freeBytes) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
        cudaGetLastError();
        return 1;
    }
    if (name && nameLen) std::snprintf(name, nameLen, "cuda:%d %s (sm_%d%d)", index, prop.name, prop.major, prop.minor);
    if (totalBytes) *totalBytes = int64_t(prop.totalGlobalMem);
    if (freeBytes) *freeBytes = -1;
    if (!hasContext(index)) return 0;
    size_t f = 0, t = 0;
    int prev = 0;
    cudaGetDevice(&prev);
    if (cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&f, &t) == cudaSuccess) {
        if (totalBytes) *totalBytes = int64_t(t);
        if (freeBytes) *freeBytes = int64_t(f);
    }
    cudaGetLastError();
    cudaSetDevice(prev);
    return 0;
}

int deviceSupported(int index, char* err, size_t errLen) {
    cudaDeviceProp prop{};
    const cudaError_t e = cudaGetDeviceProperties(&prop, index);
    if (e != cudaSuccess) {
        cudaGetLastError();
        setError(err, errLen, "cuda:" + std::to_string(index) + ": " + cudaGetErrorName(e));
        return 0;
    }
    const std::string why = wb::cuda::unsupportedDeviceReason(index, prop);
    if (why.empty()) return 1;
    setError(err, errLen, why);
    return 0;
}

int resetDevice(int index, char* err, size_t errLen) {
    if (const int live = wb::cuda::liveObjectsOn(index); live > 0) {
        setError(err, errLen, "cuda:" + std::to_string(index) + ": not reset: " + std::to_string(live) +
                                  " device or buffer objects of this process are still alive on it (another model?)");
        return 1;
    }
    int prev = 0;
    cudaGetDevice(&prev);
    cudaError_t e = cudaSetDevice(index);
    if (e == cudaSuccess) e = cudaDeviceReset();
    cudaSetDevice(prev);
    if (e != cudaSuccess) {
        setError(err, errLen, "cuda:" + std::to_string(index) + ": cudaDeviceReset: " + cudaGetErrorName(e) + " (" +
                                  cudaGetErrorString(e) + ")");
        return 1;
    }
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
                           createDevice, createCommunicators, deviceSupported, resetDevice};

}  // namespace

extern "C" __attribute__((visibility("default"))) const WbBackendApi* wbBackendGetApi(uint32_t engineApiVersion) {
    (void)engineApiVersion;  // the engine checks the version it gets back
    return &kApi;
}
