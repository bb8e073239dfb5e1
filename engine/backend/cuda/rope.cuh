#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// Rotary embedding in place. style 0: rotate-half (dims j, j + rotaryDim/2), 1: interleaved (2j, 2j+1); only the first
/// rotaryDim dims of each head rotate (partial rotary).
Result<void> rope(float* x,                // [m, numHeads * headDim]
                  int64_t m, int numHeads, int headDim, int rotaryDim,
                  const int32_t* positions,  // [m]
                  const float* invFreq,      // [rotaryDim / 2]
                  int style, cudaStream_t stream);
}  // namespace wb::cuda
