#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// y[n] += x[n].
Result<void> add(float* y, const float* x, int64_t n, cudaStream_t stream);
/// y[m, n] += bias[n].
Result<void> addBias(float* y, const float* bias, int64_t m, int64_t n, cudaStream_t stream);
/// Activations to the GEMM input type: dst[n] = half(src) (toBf16: bfloat16).
Result<void> convertF32(const float* src, void* dst, int64_t n, bool toBf16, cudaStream_t stream);
}  // namespace wb::cuda
