#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// out[m, n] = x / rms(x) * weight. out may alias x.
Result<void> rmsNorm(const float* x,       // [m, n]
                     const float* weight,  // [n]
                     float eps, int64_t m, int64_t n,
                     float* out,  // [m, n]
                     cudaStream_t stream);
/// x += delta, then out = rmsNorm(x): the residual add fused into the norm (one read of each, one write of each).
Result<void> addRmsNorm(float* x,             // [m, n] residual stream, updated
                        const float* delta,   // [m, n]; may alias out
                        const float* weight,  // [n]
                        float eps, int64_t m, int64_t n,
                        float* out,  // [m, n]
                        cudaStream_t stream);
}  // namespace wb::cuda
