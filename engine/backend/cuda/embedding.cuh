#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// Table element types on the device.
enum class ElemType { F32 = 0, F16 = 1, BF16 = 2, I8 = 3 };
/// out[m, cols] = table rows ids[m], dequantized (I8: times the row's scale).
Result<void> embed(const void* table,     // [rows, cols] of `type`
                   const float* rowScales,  // [rows], I8 only
                   ElemType type, int64_t rows, int64_t cols,
                   const int32_t* ids,  // [m]
                   int64_t m, float* out, cudaStream_t stream);
/// dst[m, n] = src[rows[m], n].
Result<void> gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst, cudaStream_t stream);
}  // namespace wb::cuda
