// Which still-image formats the engine decodes, told from an input's first bytes (media/image.cpp), so that a
// front end can refuse or convert a file before it sends it.
#pragma once

#include <cstdint>
#include <span>

namespace wb {

enum class ImageFormat { Unknown, Png, Jpeg };
/// Sniffs the magic bytes.
ImageFormat detectImageFormat(std::span<const uint8_t> bytes);

}  // namespace wb
