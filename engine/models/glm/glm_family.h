// The GLM family: GLM-4 (text) and GLM-4.1V / AutoGLM-Phone-9B (a ViT vision tower feeding a GLM-4 text model),
// one family because one GlmModel holds both. On one CPU device GlmModel runs everything; on GPUs or tensor
// parallel it keeps the tokenizer and the vision tower and the shared decoder runs the text model
// (glm_decoder.h).
#pragma once

#include "models/model_family.h"

namespace wb {

const ModelFamily& glmFamily();

}  // namespace wb
