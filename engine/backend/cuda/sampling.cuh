#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {
/// One token per row of logits: argmax when topK <= 1 or temperature <= 0, else a draw among the topK largest
/// (softmax of logit / temperature) with uniforms[row] in [0, 1). Ties go to the lowest id, as on the CPU.
Result<void> sampleTopK(const float* logits,   // [m, vocab]
                        int64_t m, int64_t vocab, int topK, float temperature,
                        const float* uniforms,  // [m], device
                        int32_t* tokens,        // [m], device
                        cudaStream_t stream);
constexpr int kMaxTopK = 256;
}  // namespace wb::cuda
