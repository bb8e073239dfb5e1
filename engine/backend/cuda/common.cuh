// Shared by every CUDA kernel file: status checks that turn CUDA/cuBLAS errors into wb::Error values with file:line
// (nothing aborts), NVTX ranges, and small device helpers (warp reductions, dtype loads).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <string>

#include "core/result.h"

namespace wb::cuda {

/// The last CUDA status that became an error on this thread (so that the device can tell a sticky fault from an
/// ordinary failure without parsing messages); read and cleared by takeLastCudaError().
inline thread_local cudaError_t tlsLastCudaError = cudaSuccess;

inline cudaError_t takeLastCudaError() {
    const cudaError_t e = tlsLastCudaError;
    tlsLastCudaError = cudaSuccess;
    return e;
}

/// Errors after which the context is unusable: every later call of the process on that device fails with the
/// same error until everything on it is destroyed and the device is reset (cudaDeviceReset).
inline bool isStickyCudaError(cudaError_t e) {
    switch (e) {
        case cudaErrorIllegalAddress:
        case cudaErrorLaunchFailure:
        case cudaErrorLaunchTimeout:
        case cudaErrorHardwareStackError:
        case cudaErrorIllegalInstruction:
        case cudaErrorMisalignedAddress:
        case cudaErrorInvalidAddressSpace:
        case cudaErrorInvalidPc:
        case cudaErrorAssert:
        case cudaErrorECCUncorrectable:
        case cudaErrorContextIsDestroyed: return true;
        default: return false;
    }
}

inline Error cudaStatusError(cudaError_t e, const char* what, const char* file, int line) {
    tlsLastCudaError = e;
    return makeError(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + cudaGetErrorName(e) + " (" +
                     cudaGetErrorString(e) + ")");
}

inline Error cublasStatusError(cublasStatus_t s, const char* what, const char* file, int line) {
    return makeError(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + cublasGetStatusName(s) +
                     " (" + cublasGetStatusString(s) + ")");
}

}  // namespace wb::cuda

/// Returns a wb::Error from the enclosing function when a CUDA runtime call fails.
#define WB_CUDA_CHECK(call)                                                              \
    do {                                                                                 \
        const cudaError_t wb_e_ = (call);                                                \
        if (wb_e_ != cudaSuccess) return ::wb::cuda::cudaStatusError(wb_e_, #call, __FILE__, __LINE__); \
    } while (0)

#define WB_CUBLAS_CHECK(call)                                                            \
    do {                                                                                 \
        const cublasStatus_t wb_s_ = (call);                                             \
        if (wb_s_ != CUBLAS_STATUS_SUCCESS)                                              \
            return ::wb::cuda::cublasStatusError(wb_s_, #call, __FILE__, __LINE__);      \
    } while (0)

/// After a kernel launch: launch-configuration errors surface here; faults inside the kernel surface later, from
/// the next synchronising call.
#define WB_CUDA_CHECK_LAUNCH(name)                                                        \
    do {                                                                                  \
        const cudaError_t wb_e_ = cudaGetLastError();                                     \
        if (wb_e_ != cudaSuccess) return ::wb::cuda::cudaStatusError(wb_e_, name, __FILE__, __LINE__); \
    } while (0)

namespace wb::cuda {

/// Opens an NVTX range for the lifetime of the object (visible in Nsight Systems).
struct NvtxRange {
    explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
    ~NvtxRange() { nvtxRangePop(); }
};

}  // namespace wb::cuda

#ifdef __CUDACC__  // device helpers: only the .cu files see them
namespace wb::cuda {

constexpr int kWarp = 32;

__device__ __forceinline__ float warpSum(float v) {
    for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/// Sum over a block of up to 1024 threads; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    v = warpSum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    const int numWarps = (blockDim.x + kWarp - 1) / kWarp;
    v = lane < numWarps ? scratch[lane] : 0.0f;
    return warpSum(v);
}

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float toFloat(int8_t x) { return float(x); }

inline unsigned ceilDiv(int64_t a, int64_t b) { return unsigned((a + b - 1) / b); }

}  // namespace wb::cuda
#endif
