#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {

/// Quantizes activations by the rule of backend/int8_act_quant.h (the CPU backend's, bit for bit).
Result<void> quantizeActs(const float* x,  // [m, cols]
                          int64_t m, int64_t cols,
                          int8_t* q,  // [m, actBlocks(cols) * 32], zero padded
                          float* d,   // [m, actBlocks(cols)]
                          cudaStream_t stream);

/// W8A8 matmul y[m, rows] = wScale[r] * Σ_b float(w[r, b] · q[t, b]) * d[t, b], integer dot products per block of
/// 32 on the tensor cores (mma.sync s8), f32 across blocks in a fixed order that does not depend on m (see
/// backend/int8_act_quant.h: w8a8Reference replays it). Quantizes x into `workspace` first.
Result<void> w8a8Matmul(const int8_t* w,       // [rows, cols]
                        const float* wScale,   // [rows]
                        int64_t rows, int64_t cols,
                        const float* x,  // [m, cols]
                        int64_t m,
                        float* y,  // [m, rows]
                        void* workspace, int64_t workspaceBytes,  // >= w8a8WorkspaceBytes(m, cols) (int8_act_quant.h)
                        cudaStream_t stream);

}  // namespace wb::cuda
