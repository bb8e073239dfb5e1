#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// Weight-only INT8 matmul y[m, rows] = x[m, cols] · (q * scales)ᵀ, dequantizing in registers. Reads the weights
/// once per 8 tokens: the decode path (m small); large prefills go through cuBLAS instead.
Result<void> int8Gemv(const int8_t* q,       // [rows, cols], cols % 4 == 0
                      const float* scales,   // [rows]
                      int64_t rows, int64_t cols,
                      const float* x,  // [m, cols]
                      int64_t m,
                      float* y,  // [m, rows]
                      cudaStream_t stream);
}  // namespace wb::cuda
