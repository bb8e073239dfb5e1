// Tiny random-weight GLM-4 / GLM-4.1V checkpoints in the published Hugging Face layout (config.json with
// text_config and vision_config, safetensors (sharded with an index when asked), tokenizer.json,
// tokenizer_config.json with a GLM-4.1V-style chat template, preprocessor_config.json, generation_config.json).
// Tests, `wb-make-model --arch glm4v` and the demos use them: no hub is reachable, and the shapes are those of
// the real model scaled down (partial rotary, M-RoPE sections, 2x2 merge, the extra post norms).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace wb {

struct TinyGlmOptions {
    bool vision = true;      // Glm4vForConditionalGeneration; false: Glm4ForCausalLM
    bool newNames = true;    // "model.language_model." / "model.visual." (current HF) or "model." / "visual."
    int shards = 1;
    uint32_t seed = 7;
    bool chatTemplate = true;  // tokenizer_config.json carries a chat template
};

/// Vocabulary of the tiny tokenizer: 256 byte tokens, then GLM's special tokens, padded to 300.
constexpr int kTinyGlmVocab = 300;
constexpr int32_t kTinyGlmGmask = 256, kTinyGlmSop = 257, kTinyGlmSystem = 258, kTinyGlmUser = 259,
                  kTinyGlmAssistant = 260, kTinyGlmEndOfText = 261, kTinyGlmBeginImage = 262,
                  kTinyGlmEndImage = 263, kTinyGlmImage = 264, kTinyGlmBeginVideo = 265, kTinyGlmEndVideo = 266,
                  kTinyGlmThink = 267, kTinyGlmEndThink = 268;

/// The chat template written into tokenizer_config.json: the layout of GLM-4.1V's own ([gMASK]<sop>, role
/// markers, image parts as <|begin_of_image|><|image|><|end_of_image|>, <think></think> when thinking is off).
const char* tinyGlmChatTemplate();

/// config.json of the tiny model (dim 64, 2 layers, 4 heads / 2 KV heads, vision 2 blocks of width 32).
std::string tinyGlmConfigJson(bool vision);

Result<void> writeTinyGlmCheckpoint(const std::string& dir, const TinyGlmOptions& options = {});

}  // namespace wb
