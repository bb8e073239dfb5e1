// Writes a GLM-4 / GLM-4.1V Hugging Face folder as the GGUF pair llama.cpp reads: the text model in llama.cpp's
// own `glm4` architecture (its tensor names and metadata keys, the GPT-2-style tokenizer with the `glm4`
// pre-tokenizer) and, for GLM-4.1V, the vision tower as an mmproj file with the `glm4v` projector (`clip.*`
// keys, `v.blk.N.*` / `mm.*` tensors). Every tensor is streamed from the memory-mapped safetensors into the file
// one row range at a time: a 9B checkpoint never sits in memory whole.
#pragma once

#include <string>

#include "core/dtype.h"
#include "core/result.h"

namespace wb {

struct GlmGgufOptions {
    /// Type of the 2-D weights: F16, BF16, F32 or Q8_0. 1-D tensors (norms, biases) stay F32 as llama.cpp keeps
    /// them; a Q8_0 tensor whose rows are not whole 32-value blocks falls back to F16, as llama.cpp's converter does.
    /// Q4_K asks for llama.cpp's Q4_K_M mix (Q4_K, with Q6_K for output and some layers' attn_v / ffn_down;
    /// general.file_type 15); text file only.
    DType textType = DType::F16;
    DType visionType = DType::F16;
    std::string name;  // general.name; the folder's name when empty
};

/// What writeGlmGguf wrote.
struct GlmGgufResult {
    int textTensors = 0;
    int visionTensors = 0;  // 0 when the folder has no vision tower or no mmproj path was given
};

/// `hfDir`: a folder in the published layout (config.json, safetensors, tokenizer.json, tokenizer_config.json).
/// Writes `textPath`; writes `mmprojPath` too when it is not empty and the folder is a GLM-4.1V one (an error
/// when it is not). Errors name the file and tensor.
Result<GlmGgufResult> writeGlmGguf(const std::string& hfDir, const std::string& textPath,
                                   const std::string& mmprojPath, const GlmGgufOptions& options = {});

/// llama_ftype of a file whose weights are mostly `t` (general.file_type): F32 0, F16 1, Q8_0 7, BF16 32, Q4_K
/// (the Q4_K_M mix) 15.
uint32_t llamaFileType(DType t);

}  // namespace wb
