// Reads llama.cpp's GLM GGUF pair (the `glm4` text model and the `glm4v` mmproj file) as GlmModel's Hugging Face
// view: the config from the files' metadata, the tokenizer (and chat template) from the text file, and every
// tensor under its HF name, so one loader serves both layouts. The two temporal Conv2d slices llama.cpp keeps
// of the patch embedding are joined back into the Conv3d kernel.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/tokenizer.h"
#include "core/result.h"
#include "formats/tensor_info.h"
#include "media/glm4v_image_processor.h"
#include "models/glm/glm_config.h"

namespace wb {

class GgufFile;

struct GlmGgufSource {
    GlmConfig config;
    Glm4vProcessorConfig processor;  // image mean / std and patch sizes from the mmproj file
    std::unique_ptr<Tokenizer> tokenizer;
    /// The tensor under an HF name ("model.language_model.layers.0.self_attn.q_proj.weight", "lm_head.weight",
    /// "model.visual.blocks.0.attn.qkv.weight", ...), or nullptr.
    std::function<const TensorInfo*(const std::string&)> lookup;
    std::shared_ptr<void> keepAlive;  // the mapped files and the joined patch kernel
};

/// True when `path` is a GGUF file whose general.architecture is "glm4".
bool isGlmGguf(const std::string& path);

/// Opens the pair; `mmprojPath` may be empty (text only). Errors name the file and key or tensor.
Result<GlmGgufSource> openGlmGguf(const std::string& textPath, const std::string& mmprojPath, bool loadTokenizer);

/// The mmproj file for `textPath`: `requested` when not empty; else, for a GLM-4.1V text file (one with M-RoPE
/// sections), the single mmproj*.gguf with the glm4v projector in the same folder; "" when there is none (text
/// only). Several candidates are an error naming them (choose one with --mmproj).
Result<std::string> pairedMmproj(const std::string& textPath, const std::string& requested);

/// The config alone (for inspect / memory plans).
Result<GlmConfig> glmConfigFromGguf(const GgufFile& text, const GgufFile* mmproj);

}  // namespace wb
