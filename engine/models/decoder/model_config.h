// Hyper-parameters of a Llama-family decoder (Llama 1/2/3, Mistral, TinyLlama, Qwen2), read from GGUF
// metadata or a Hugging Face config.json (+ generation_config.json).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb {

class GgufFile;

struct RopeScaling {
    enum class Type { None, Linear, Llama3 };
    Type type = Type::None;
    float factor = 1.0f;
    float lowFreqFactor = 1.0f;
    float highFreqFactor = 4.0f;
    int originalMaxPositions = 8192;
};

struct GenerationDefaults {
    float temperature = -1.0f;  // < 0: not given
    float topP = -1.0f;
    int topK = -1;
    float repetitionPenalty = -1.0f;
    std::vector<int32_t> eosTokenIds;
};

struct ModelConfig {
    std::string architecture;  // "llama", "mistral", "qwen2"
    std::string name;
    int64_t dim = 0;
    int64_t numLayers = 0;
    int64_t numHeads = 0;
    int64_t numKvHeads = 0;
    int64_t headDim = 0;
    int64_t ffnDim = 0;
    int64_t vocabSize = 0;
    int64_t maxContext = 2048;
    float normEps = 1e-5f;
    float ropeTheta = 10000.0f;
    RopeScaling ropeScaling;
    bool qkvBias = false;
    bool tiedEmbeddings = false;
    // The GLM-4 family's text model ("glm4", and GLM-4.1V's "glm4v" text part) on the device path: a norm after
    // attention and one after the MLP (before each joins the residual), a fused gate_up projection, and rotary
    // on the first rotaryDim dims of each head with pairs (2j, 2j + 1) interleaved.
    bool postNorms = false;
    bool fusedGateUp = false;
    bool interleavedRotary = false;
    int64_t rotaryDim = 0;  // 0: the whole head
    /// GLM-4.1V: frequency pairs given to the temporal, height and width rotary positions (0s: one position).
    std::array<int64_t, 3> mropeSection = {0, 0, 0};
    /// GLM-4.1V: the token whose embedding an image feature row replaces (-1: none).
    int32_t imageTokenId = -1;
    int32_t bosTokenId = -1;
    int32_t eosTokenId = -1;
    GenerationDefaults generation;

    /// Checks that the numbers are positive and consistent (heads divide, head_dim even).
    Result<void> validate(const std::string& source) const;
    /// 1/theta^(2i/d) adjusted for rope scaling; headDim/2 values.
    std::vector<float> ropeInvFreq() const;
};

/// Reads the config of a GGUF file; errors name the file and the missing or bad key.
Result<ModelConfig> configFromGguf(const GgufFile& gguf);
/// Reads dir/config.json and, when present, dir/generation_config.json.
Result<ModelConfig> configFromHfFolder(const std::string& dir);

}  // namespace wb
