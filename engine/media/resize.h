// Image resampling as the reference preprocessing does it: PIL's Image.resize(..., BICUBIC) on 8-bit RGB
// (separable, horizontal pass first, a = -0.5 cubic kernel widened by the downscale factor so that shrinking
// averages instead of aliasing, 22-bit fixed-point coefficients, each pass rounded and clipped to 8 bits).
// torchvision's antialiased bicubic resize of uint8 tensors, which the fast HF processors use, is built to give
// the same result.
#pragma once

#include "core/result.h"
#include "media/image.h"

namespace wb {

Result<Image> resizeBicubic(const Image& src, int width, int height);

}  // namespace wb
