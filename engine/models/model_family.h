// The contract between the scheduler and a model family (docs/ARCHITECTURE.md, "Model families"): a family
// recognises its checkpoints by architecture name and loads them into an EngineModel, the adapter the scheduler
// drives (api/engine_model.h). Families live in one folder each under models/ (llama/, glm/) and include only
// this header, the shared decoder (models/decoder/) and the engine's lower modules, never another family.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine_model.h"
#include "api/model_info.h"
#include "core/result.h"
#include "models/decoder/llama_model.h"

namespace wb {

/// What the registry read of a checkpoint to choose its family, read once and handed to the family.
struct ModelIdentity {
    std::string path;
    std::string format;        // "gguf" (a file) or "hf" (a folder with config.json)
    std::string architecture;  // GGUF general.architecture; config.json architectures[0], else its model_type
};

struct ModelFamily {
    std::string name;                            // "llama", "glm"
    std::vector<std::string> hfArchitectures;    // config.json architectures[0]
    std::vector<std::string> hfModelTypes;       // config.json model_type, when it names no architectures
    std::vector<std::string> ggufArchitectures;  // GGUF general.architecture
    /// Loads config, tokenizer and weights. maxImagePixels > 0 overrides a vision processor's max_pixels.
    Result<std::unique_ptr<EngineModel>> (*load)(const ModelIdentity& id, const LoadOptions& options,
                                                 int64_t maxImagePixels) = nullptr;
    /// Reads headers only (api/model_info.h); `family` and `path` are filled in by the registry.
    Result<ModelInfo> (*inspect)(const ModelIdentity& id) = nullptr;
};

/// Each rank's share when a decoder runs on devices of its own (tensor parallel or GPUs); empty on the host alone.
std::vector<EngineModel::DeviceShare> decoderDeviceShares(const LlamaModel& m);

}  // namespace wb
