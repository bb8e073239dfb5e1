// Small elementwise ops: residual add, bias broadcast, the f32 -> f16/bf16 conversion that feeds cuBLAS, and the
// INT8 -> FP16 expansion used when a prefill GEMM is large enough for cuBLAS to beat the register-dequant kernel.
#include "backend/cuda/common.cuh"
#include "backend/cuda/elementwise.cuh"

namespace wb::cuda {
namespace {

__global__ void addKernel(float* y, const float* x, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}

__global__ void addBiasKernel(float* y, const float* bias, int64_t m, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < m * n) y[i] += bias[i % n];
}

__global__ void toF16Kernel(const float* src, __half* dst, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2half_rn(src[i]);
}

__global__ void toBf16Kernel(const float* src, __nv_bfloat16* dst, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

}  // namespace

Result<void> add(float* y, const float* x, int64_t n, cudaStream_t stream) {
    if (n == 0) return {};
    addKernel<<<ceilDiv(n, 256), 256, 0, stream>>>(y, x, n);
    WB_CUDA_CHECK_LAUNCH("addKernel");
    return {};
}

Result<void> addBias(float* y, const float* bias, int64_t m, int64_t n, cudaStream_t stream) {
    if (m * n == 0) return {};
    addBiasKernel<<<ceilDiv(m * n, 256), 256, 0, stream>>>(y, bias, m, n);
    WB_CUDA_CHECK_LAUNCH("addBiasKernel");
    return {};
}

Result<void> convertF32(const float* src, void* dst, int64_t n, bool toBf16, cudaStream_t stream) {
    if (n == 0) return {};
    if (toBf16)
        toBf16Kernel<<<ceilDiv(n, 256), 256, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n);
    else
        toF16Kernel<<<ceilDiv(n, 256), 256, 0, stream>>>(src, static_cast<__half*>(dst), n);
    WB_CUDA_CHECK_LAUNCH("convertF32");
    return {};
}

}  // namespace wb::cuda
