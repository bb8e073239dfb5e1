// Hyper-parameters of the GLM-4 family as Hugging Face publishes it: Glm4ForCausalLM (text only) and
// Glm4vForConditionalGeneration (GLM-4.1V-Thinking, AutoGLM-Phone-9B: config.json with text_config and
// vision_config), plus generation_config.json's stop tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb {

struct GlmTextConfig {
    int64_t vocabSize = 0;
    int64_t dim = 0;
    int64_t numLayers = 0;
    int64_t numHeads = 0;
    int64_t numKvHeads = 0;
    int64_t headDim = 0;
    int64_t ffnDim = 0;
    int64_t maxContext = 0;
    float normEps = 1e-5f;
    float ropeTheta = 10000.0f;
    float partialRotaryFactor = 1.0f;
    int64_t rotaryDim = 0;  // int(headDim * partialRotaryFactor); the first rotaryDim dims rotate, pairs interleaved
    /// Rotary frequency pairs given to the temporal, height and width positions (sums to rotaryDim / 2). Text-only
    /// GLM-4 has no sections: every pair uses the one position.
    std::array<int64_t, 3> mropeSection = {0, 0, 0};
    bool attentionBias = true;
    bool tiedEmbeddings = false;
};

struct GlmVisionConfig {
    int64_t depth = 0;
    int64_t hiddenSize = 0;
    int64_t numHeads = 0;
    int64_t headDim = 0;
    int64_t patchSize = 14;
    int64_t temporalPatchSize = 2;
    int64_t spatialMergeSize = 2;
    int64_t inChannels = 3;
    int64_t imageSize = 336;
    int64_t outHiddenSize = 0;     // the merger's width = the text model's dim
    int64_t intermediateSize = 0;  // the merger's MLP width (the blocks' MLP is outHiddenSize wide, as in HF)
    float normEps = 1e-5f;
    bool attentionBias = false;

    int64_t patchDim() const { return inChannels * temporalPatchSize * patchSize * patchSize; }
    int64_t numPositions() const { return (imageSize / patchSize) * (imageSize / patchSize); }
};

struct GlmConfig {
    std::string architecture;  // "glm4" (Glm4ForCausalLM) or "glm4v" (Glm4vForConditionalGeneration)
    GlmTextConfig text;
    bool hasVision = false;
    GlmVisionConfig vision;
    int32_t imageTokenId = 151343;
    int32_t imageStartTokenId = 151339;
    int32_t imageEndTokenId = 151340;
    int32_t videoStartTokenId = 151341;
    int32_t videoEndTokenId = 151342;
    std::vector<int32_t> eosTokenIds;

    Result<void> validate(const std::string& source) const;
};

/// Reads dir/config.json and, when present, dir/generation_config.json. Errors name the file and key.
Result<GlmConfig> glmConfigFromFolder(const std::string& dir);
/// Parses config.json text (for tests and tools); `source` names it in errors.
Result<GlmConfig> glmConfigFromJson(const std::string& json, const std::string& source);

}  // namespace wb
