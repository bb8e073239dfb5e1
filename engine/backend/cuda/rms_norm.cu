// RMSNorm, one block per row: each thread keeps its strided elements' partial sum of squares, a block reduction
// gives the row's rms, and the same thread writes the same elements (so out may alias the input it read).
#include "backend/cuda/common.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace wb::cuda {
namespace {

template <bool kAdd>
__global__ void rmsNormKernel(float* x, const float* delta, const float* weight, float eps, int64_t n, float* out) {
    __shared__ float scratch[32];
    float* row = x + blockIdx.x * n;
    const float* d = kAdd ? delta + blockIdx.x * n : nullptr;
    float* o = out + blockIdx.x * n;
    float ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = row[i];
        if constexpr (kAdd) {
            v += d[i];
            row[i] = v;
        }
        ss += v * v;
    }
    const float inv = rsqrtf(blockSum(ss, scratch) / float(n) + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = row[i] * inv * weight[i];
}

int threadsFor(int64_t n) { return n >= 1024 ? 1024 : n >= 256 ? 256 : 128; }

}  // namespace

Result<void> rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out,
                     cudaStream_t stream) {
    if (m == 0) return {};
    NvtxRange r("rmsNorm");
    rmsNormKernel<false><<<unsigned(m), threadsFor(n), 0, stream>>>(const_cast<float*>(x), nullptr, weight, eps, n, out);
    WB_CUDA_CHECK_LAUNCH("rmsNormKernel");
    return {};
}

Result<void> addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m, int64_t n, float* out,
                        cudaStream_t stream) {
    if (m == 0) return {};
    NvtxRange r("addRmsNorm");
    rmsNormKernel<true><<<unsigned(m), threadsFor(n), 0, stream>>>(x, delta, weight, eps, n, out);
    WB_CUDA_CHECK_LAUNCH("addRmsNormKernel");
    return {};
}

}  // namespace wb::cuda
