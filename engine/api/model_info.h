// What a model is, read from its headers only (no weights converted): the model library's cards, `wb inspect`
// and memory plans. One call for every family: the registry (models/model_registry.h) recognises the model and
// its family fills this in.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "api/model_types.h"
#include "core/result.h"

namespace wb {

/// What one rank holds when the model is split tensor-parallel (the largest share when the split is uneven).
struct ModelShardPlan {
    int degree = 1;
    std::map<std::string, int64_t> weightBytesByPrecision;
    int64_t kvBytesPerToken = 0;
};

struct ModelInfo {
    std::string path;
    std::string family;        // "llama", "glm"
    std::string format;        // "gguf", "hf-safetensors"
    std::string architecture;  // the text model's: "llama", "qwen2", "glm4", "glm4v"...
    std::string name;
    ModelConfig config;        // the text decoder's shape
    int64_t numParameters = 0;     // all of them, a vision tower's included
    int64_t visionParameters = 0;  // 0: text-only
    bool hasVision = false;
    /// Tensors per stored dtype, when the family reads the weights' headers (empty when planned from config.json).
    std::map<std::string, int64_t> tensorCountByDtype;
    /// Bytes of weights at each precision ("native": as stored; matrices converted, norms and biases kept f32).
    std::map<std::string, int64_t> weightBytesByPrecision;
    int64_t kvBytesPerToken = 0;  // f32 keys and values, all layers
    std::string tokenizerKind;    // e.g. "tokenizer.json", "gguf-gpt2", "none"
    std::vector<ModelShardPlan> tensorParallel;  // per-rank figures at degree > 1, where the family plans them
    const ModelShardPlan* shardPlan(int degree) const {
        for (const ModelShardPlan& p : tensorParallel)
            if (p.degree == degree) return &p;
        return nullptr;
    }
};

/// Recognises the model (a .gguf file or a checkpoint folder) and reads what its headers say. Cheap: a GLM-4.1V
/// folder is planned from config.json alone. Errors name the file and what is wrong with it.
Result<ModelInfo> inspectModel(const std::string& path);
/// Only the family that would load the model ("llama", "glm"): reads what names its architecture, nothing more.
Result<std::string> modelFamily(const std::string& path);

}  // namespace wb
