// The GLM-4.1V image processor (HF Glm4vImageProcessor) for still images: smart_resize to multiples of
// patch_size * merge_size within the pixel budget, PIL-exact bicubic resize, rescale and normalise with the
// checkpoint's mean and std, the frame repeated over temporal_patch_size, and patches flattened in the
// reference's order: row = ((block_h * blocks_w + block_w) * merge + i) * merge + j (the 2×2 blocks that the
// vision tower merges are consecutive), column = ((channel * temporal + t) * patch + y) * patch + x.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "media/image.h"

namespace wb {

struct Glm4vProcessorConfig {
    int patchSize = 14;
    int temporalPatchSize = 2;
    int mergeSize = 2;
    /// Budget on temporal_patch_size × height × width after resizing (HF's size.shortest_edge/longest_edge,
    /// or the older min_pixels/max_pixels keys).
    int64_t minPixels = 112 * 112;
    int64_t maxPixels = 28 * 28 * 15000;
    bool doResize = true;
    bool doRescale = true;
    double rescaleFactor = 1.0 / 255.0;
    bool doNormalize = true;
    std::array<double, 3> mean = {0.48145466, 0.4578275, 0.40821073};  // OpenAI CLIP
    std::array<double, 3> std = {0.26862954, 0.26130258, 0.27577711};

    int factor() const { return patchSize * mergeSize; }
    Result<void> validate(const std::string& source) const;
};

/// Reads preprocessor_config.json; keys it lacks keep the reference's defaults.
Result<Glm4vProcessorConfig> loadGlm4vProcessorConfig(const std::string& path);

/// HF's smart_resize(num_frames, height, width, temporal_factor, factor, min_pixels, max_pixels): (height, width),
/// both multiples of factor. Python's semantics kept: round() is round-half-even, images smaller than factor are
/// first scaled up, an aspect ratio over 200 is an error.
Result<std::pair<int, int>> glm4vSmartResize(int numFrames, int height, int width, int temporalFactor, int factor,
                                             int64_t minPixels, int64_t maxPixels);

struct Glm4vImageInput {
    int64_t gridT = 0, gridH = 0, gridW = 0;  // in patches
    int resizedWidth = 0, resizedHeight = 0;
    int64_t patchDim = 0;                     // channels * temporal * patch * patch
    std::vector<float> pixels;                // [gridT * gridH * gridW, patchDim]

    int64_t numPatches() const { return gridT * gridH * gridW; }
    /// Image tokens in the language model's sequence: one per merged mergeSize × mergeSize block.
    int64_t numTokens(int mergeSize) const { return numPatches() / (int64_t(mergeSize) * mergeSize); }
};

/// Resizes, normalises and patchifies one still image.
Result<Glm4vImageInput> glm4vPreprocess(const Image& image, const Glm4vProcessorConfig& config);

/// Patchifies an already resized image (both sides multiples of patch * merge); exposed for tests.
Result<Glm4vImageInput> glm4vPatchify(const Image& resized, const Glm4vProcessorConfig& config);

}  // namespace wb
