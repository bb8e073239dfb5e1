// Still images for the vision models: PNG and JPEG decoded into 8-bit RGB, the way PIL's Image.open(...)
// .convert("RGB") sees them (alpha dropped, not composited; palettes and grey expanded; no gamma or ICC
// correction; 16-bit samples truncated to their high byte), so that processor outputs can match the reference.
//
// Decoders: Debian's libpng and libjpeg-turbo (security-maintained system libraries, not a vendored header).
// Every input is untrusted: sizes are checked against a pixel budget before any pixel buffer is allocated, and
// corrupt or truncated data is an Error naming the source, never a crash or a partially grey image.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "api/image_format.h"
#include "core/result.h"

namespace wb {

/// 8-bit RGB, rows top to bottom, pixels interleaved (R, G, B).
struct Image {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> rgb;  // width * height * 3

    int64_t numPixels() const { return int64_t(width) * height; }
    const uint8_t* pixel(int x, int y) const { return rgb.data() + (int64_t(y) * width + x) * 3; }
};

/// What a decoder accepts. The defaults admit any real photo or screenshot (a 1080×2400 phone screenshot is
/// 2.6 megapixels) while keeping one decoded image under ~200 MB.
struct DecodeLimits {
    int64_t maxPixels = 64'000'000;
    int maxDimension = 32768;
    int64_t maxEncodedBytes = 256ll << 20;
    /// Turn the picture upright by its EXIF orientation tag (media/exif.h), as the reference's load_image does.
    bool applyExifOrientation = true;
};


/// Decodes PNG or JPEG bytes; `source` names the input in errors ("request image 2", a file path).
Result<Image> decodeImage(std::span<const uint8_t> bytes, const std::string& source, const DecodeLimits& limits = {});
/// Reads and decodes a file.
Result<Image> loadImageFile(const std::string& path, const DecodeLimits& limits = {});

/// Encodes 8-bit RGB as PNG (tests, fixtures, debugging dumps).
Result<std::vector<uint8_t>> encodePng(const Image& image);

}  // namespace wb
