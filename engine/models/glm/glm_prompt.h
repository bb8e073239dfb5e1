// Prompt assembly for GLM-4.1V: text and images in order → token ids and the three rotary position rows, the
// way Glm4vModel.get_rope_index numbers them: text counts on from the previous maximum + 1; an image's tokens
// take (start + t, start + h, start + w) over its merged grid; the text after it starts at max + 1. Image markers
// come only from image parts: text parts are tokenized as plain text (a user who types "<|begin_of_image|>" gets
// those characters), and template parts, which are parsed for special tokens, may not contain image markers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "models/glm/glm_config.h"
#include "api/tokenizer.h"

namespace wb {

struct GlmPromptPart {
    enum class Kind { Template, Text, Image };
    Kind kind = Kind::Text;
    std::string text;
    int imageIndex = -1;  // into the grids passed to buildGlmPrompt
};

struct GlmImageGrid {
    int64_t t = 1, h = 0, w = 0;  // patches, before the 2×2 merge
};

struct GlmPrompt {
    std::vector<int32_t> ids;
    std::vector<int64_t> positions;  // 3 rows of ids.size(): temporal, height, width
    /// Position of token index i >= ids.size() (generated text) is i + ropeDelta on all three axes.
    int64_t ropeDelta = 0;
    std::vector<int64_t> imageTokenCounts;
};

/// get_rope_index for one unpadded sequence: image-token runs (outside video markers) take the next grid.
Result<GlmPrompt> glmRopeIndex(const std::vector<int32_t>& ids, const std::vector<GlmImageGrid>& grids,
                               const GlmConfig& config);

/// Tokenizes the parts; each image part becomes <|begin_of_image|>, t*h*w/merge² image tokens, <|end_of_image|>.
Result<GlmPrompt> buildGlmPrompt(const Tokenizer& tok, const GlmConfig& config,
                                 const std::vector<GlmPromptPart>& parts, const std::vector<GlmImageGrid>& grids);

}  // namespace wb
