// Encoders for GGUF's K-quant super-blocks (256 values), in ggml's block layouts, so that wb-make-model can write
// Q4_K_M files: Q4_K (fp16 d and dmin, eight 6-bit (scale, min) pairs packed in 12 bytes, 4-bit values) and Q6_K
// (6-bit values split into low nibbles and high 2-bit pairs, sixteen int8 scales, fp16 d). The scales come from each
// sub-block's range (min / max), not from llama.cpp's iterative search, so the error is somewhat larger than
// llama-quantize's for the same type; the decoders (engine/backend/cpu/weight_matrix.cpp) and llama.cpp read them
// alike.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace wb {

/// `n` must be a multiple of 256.
void quantizeRowQ4K(const float* src, uint8_t* dst, int64_t n);
void quantizeRowQ6K(const float* src, uint8_t* dst, int64_t n);

/// llama.cpp's Q4_K_M recipe (llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M) for the tensors a GLM-4 text
/// file has: output.weight Q6_K; attn_v and ffn_down Q6_K in the layers use_more_bits picks (the first and last
/// eighth, and every third in between), everything else 2-D Q4_K. `layer` is -1 outside the blocks. A row that
/// is not whole 256-value super-blocks falls back as llama.cpp does for Q6_K (Q8_0); for Q4_K llama.cpp uses Q5_0,
/// which the engine does not read, so Q4_0 here.
DType q4KMTypeFor(const std::string& ggufName, int layer, int numLayers, int64_t cols);

}  // namespace wb
