// Embedding gather: one block per token, threads stride over the row and dequantize on the fly. Out-of-range ids
// write zeros (the host validated them; a device fault would poison the context).
#include "backend/cuda/common.cuh"
#include "backend/cuda/embedding.cuh"

namespace wb::cuda {
namespace {

template <typename T>
__global__ void embedKernel(const T* table, const float* scales, int64_t rows, int64_t cols, const int32_t* ids,
                            float* out) {
    const int32_t id = ids[blockIdx.x];
    float* o = out + int64_t(blockIdx.x) * cols;
    const bool ok = id >= 0 && id < rows;
    const float s = scales && ok ? scales[id] : 1.0f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) o[i] = ok ? toFloat(table[int64_t(id) * cols + i]) * s : 0.0f;
}

__global__ void gatherRowsKernel(const float* src, const int32_t* rows, int64_t n, float* dst) {
    const float* s = src + int64_t(rows[blockIdx.x]) * n;
    float* d = dst + int64_t(blockIdx.x) * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) d[i] = s[i];
}

}  // namespace

Result<void> embed(const void* table, const float* rowScales, ElemType type, int64_t rows, int64_t cols,
                   const int32_t* ids, int64_t m, float* out, cudaStream_t stream) {
    if (m == 0) return {};
    NvtxRange r("embed");
    const unsigned grid = unsigned(m);
    switch (type) {
        case ElemType::F32:
            embedKernel<<<grid, 256, 0, stream>>>(static_cast<const float*>(table), nullptr, rows, cols, ids, out);
            break;
        case ElemType::F16:
            embedKernel<<<grid, 256, 0, stream>>>(static_cast<const __half*>(table), nullptr, rows, cols, ids, out);
            break;
        case ElemType::BF16:
            embedKernel<<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(table), nullptr, rows, cols, ids,
                                                  out);
            break;
        case ElemType::I8:
            embedKernel<<<grid, 256, 0, stream>>>(static_cast<const int8_t*>(table), rowScales, rows, cols, ids, out);
            break;
    }
    WB_CUDA_CHECK_LAUNCH("embedKernel");
    return {};
}

Result<void> gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst, cudaStream_t stream) {
    if (m == 0) return {};
    gatherRowsKernel<<<unsigned(m), 256, 0, stream>>>(src, rows, n, dst);
    WB_CUDA_CHECK_LAUNCH("gatherRowsKernel");
    return {};
}

}  // namespace wb::cuda
