// Hyper-parameters of a Llama-family decoder (Llama 1/2/3, Mistral, TinyLlama, Qwen2), read from GGUF
// metadata or a Hugging Face config.json (+ generation_config.json).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "api/model_types.h"
#include "core/result.h"

namespace wb {

class GgufFile;


/// Reads the config of a GGUF file; errors name the file and the missing or bad key.
Result<ModelConfig> configFromGguf(const GgufFile& gguf);
/// Reads dir/config.json and, when present, dir/generation_config.json.
Result<ModelConfig> configFromHfFolder(const std::string& dir);

}  // namespace wb
