// GLM-4 / GLM-4.1V's text model in the terms of the shared decoder (models/decoder/LlamaModel), which runs it on
// GPUs and at tensor-parallel degree > 1: its hyper-parameters with GLM's switches (post norms, fused gate_up, partial
// interleaved rotary, M-RoPE sections, the image token) and the names of its tensors.
#pragma once

#include "models/decoder/llama_model.h"
#include "models/glm/glm_config.h"

namespace wb {

/// A GLM-4 / GLM-4.1V text model as the decoder runs it.
ModelConfig configFromGlm(const GlmConfig& glm);
/// What LlamaModel::load needs to run the text model of the GLM folder whose config is `glm`.
DecoderLayout glmDecoderLayout(const GlmConfig& glm);
/// The same from dir/config.json; an error when the folder is not a GLM-4 / GLM-4.1V checkpoint.
Result<DecoderLayout> glmDecoderLayoutFromFolder(const std::string& dir);

}  // namespace wb
