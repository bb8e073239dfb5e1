#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// SwiGLU's gate: out[n] = silu(gate) * up; out may alias gate.
Result<void> siluMul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
}  // namespace wb::cuda
