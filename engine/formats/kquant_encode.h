// llama.cpp's Q4_K_M recipe: which type each tensor of a file gets. Shared by the GLM GGUF writer
// (wb-make-model --format gguf --dtype q4_k_m) and wb-quantize. The K-quant encoders themselves are quantizeRow's
// (engine/backend/cpu/weight_matrix.h: a min/max fit per sub-block, not llama.cpp's search for the best scales).
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace wb {

/// llama.cpp's Q4_K_M recipe (llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M) for a 2-D weight:
/// output.weight Q6_K; attn_v and ffn_down Q6_K in the layers use_more_bits picks (the first and last eighth, and
/// every third in between), everything else Q4_K. `layer` is -1 outside the blocks. A row that is not whole
/// 256-value super-blocks falls back as llama.cpp does: Q4_K to Q5_0, Q6_K to Q8_0 (GLM-4's 13,696-wide ffn_down),
/// and to F16 where even 32 does not divide it.
DType q4KMTypeFor(const std::string& ggufName, int layer, int numLayers, int64_t cols);

}  // namespace wb
