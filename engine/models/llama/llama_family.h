// The Llama family (Llama 1/2/3, Mistral, TinyLlama, Qwen2; GGUF files and HF folders): the shared decoder
// (models/decoder/LlamaModel) run as it is, behind the adapter the scheduler drives.
#pragma once

#include "models/model_family.h"

namespace wb {

const ModelFamily& llamaFamily();

}  // namespace wb
