// EXIF orientation, applied the way Transformers' load_image applies it (PIL.ImageOps.exif_transpose): phone
// cameras store portrait photos as landscape pixels plus an orientation tag, and the model must see the picture
// upright, as every viewer shows it. Read from a JPEG's APP1 "Exif" segment or a PNG's eXIf chunk; anything
// malformed counts as "no orientation", never as an error.
#pragma once

#include <cstdint>
#include <span>

#include "media/image.h"

namespace wb {

/// The orientation tag (1..8) of an encoded JPEG or PNG; 1 (upright) when there is none or it cannot be read.
int exifOrientation(std::span<const uint8_t> bytes);

/// Applies orientation 2..8 (flips and quarter turns as PIL's exif_transpose does); 1 or unknown: unchanged.
Image applyExifOrientation(Image image, int orientation);

}  // namespace wb
