// SwiGLU activation, elementwise with float4 loads when the pointers allow it.
#include "backend/cuda/common.cuh"
#include "backend/cuda/silu_mul.cuh"

namespace wb::cuda {
namespace {

__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

__global__ void siluMulKernel(const float* gate, const float* up, int64_t n, float* out) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = silu(gate[i]) * up[i];
}

__global__ void siluMulKernel4(const float4* gate, const float4* up, int64_t n4, float4* out) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n4) return;
    const float4 g = gate[i], u = up[i];
    out[i] = make_float4(silu(g.x) * u.x, silu(g.y) * u.y, silu(g.z) * u.z, silu(g.w) * u.w);
}

}  // namespace

Result<void> siluMul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
    if (n == 0) return {};
    NvtxRange r("siluMul");
    const bool aligned = n % 4 == 0 && (uintptr_t(gate) | uintptr_t(up) | uintptr_t(out)) % 16 == 0;
    if (aligned)
        siluMulKernel4<<<ceilDiv(n / 4, 256), 256, 0, stream>>>(reinterpret_cast<const float4*>(gate),
                                                                reinterpret_cast<const float4*>(up), n / 4,
                                                                reinterpret_cast<float4*>(out));
    else
        siluMulKernel<<<ceilDiv(n, 256), 256, 0, stream>>>(gate, up, n, out);
    WB_CUDA_CHECK_LAUNCH("siluMulKernel");
    return {};
}

}  // namespace wb::cuda
