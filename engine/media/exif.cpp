#include "media/exif.h"

#include <cstring>
#include <string_view>

namespace wb {

namespace {

// Orientation from TIFF-structured EXIF data (starting at the byte-order mark).
int tiffOrientation(std::span<const uint8_t> t) {
    if (t.size() < 8) return 1;
    bool little;
    if (t[0] == 'I' && t[1] == 'I')
        little = true;
    else if (t[0] == 'M' && t[1] == 'M')
        little = false;
    else
        return 1;
    auto u16 = [&](size_t at) -> uint32_t {
        return little ? uint32_t(t[at]) | uint32_t(t[at + 1]) << 8 : uint32_t(t[at]) << 8 | uint32_t(t[at + 1]);
    };
    auto u32 = [&](size_t at) -> uint32_t {
        return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
    };
    if (u16(2) != 42) return 1;
    const uint32_t ifd = u32(4);
    if (ifd > t.size() || t.size() - ifd < 2) return 1;
    const uint32_t count = u16(ifd);
    for (uint32_t i = 0; i < count; ++i) {
        const size_t e = size_t(ifd) + 2 + size_t(i) * 12;
        if (e + 12 > t.size()) return 1;
        if (u16(e) != 0x0112) continue;
        if (u16(e + 2) != 3 || u32(e + 4) != 1) return 1;  // SHORT, one value
        const uint32_t v = u16(e + 8);
        return v >= 1 && v <= 8 ? int(v) : 1;
    }
    return 1;
}

int jpegOrientation(std::span<const uint8_t> b) {
    size_t at = 2;  // after SOI
    while (at + 4 <= b.size()) {
        if (b[at] != 0xFF) return 1;
        const uint8_t marker = b[at + 1];
        if (marker == 0xFF) {  // fill byte
            ++at;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return 1;  // start of scan / end: no EXIF before the image data
        const size_t len = size_t(b[at + 2]) << 8 | b[at + 3];
        if (len < 2 || at + 2 + len > b.size()) return 1;
        if (marker == 0xE1 && len >= 8 && std::memcmp(b.data() + at + 4, "Exif\0\0", 6) == 0)
            return tiffOrientation(b.subspan(at + 10, len - 8));
        at += 2 + len;
    }
    return 1;
}

int pngOrientation(std::span<const uint8_t> b) {
    size_t at = 8;  // after the signature
    while (at + 12 <= b.size()) {
        const size_t len = size_t(b[at]) << 24 | size_t(b[at + 1]) << 16 | size_t(b[at + 2]) << 8 | b[at + 3];
        const std::string_view type(reinterpret_cast<const char*>(b.data() + at + 4), 4);
        if (len > b.size() - at - 12) return 1;
        if (type == "eXIf") return tiffOrientation(b.subspan(at + 8, len));
        if (type == "IDAT" || type == "IEND") return 1;  // PIL reads eXIf before the image data only
        at += 12 + len;
    }
    return 1;
}

}  // namespace

int exifOrientation(std::span<const uint8_t> bytes) {
    switch (detectImageFormat(bytes)) {
        case ImageFormat::Jpeg: return jpegOrientation(bytes);
        case ImageFormat::Png: return pngOrientation(bytes);
        default: return 1;
    }
}

Image applyExifOrientation(Image in, int orientation) {
    if (orientation < 2 || orientation > 8 || in.width <= 0 || in.height <= 0) return in;
    const int W = in.width, H = in.height;
    const bool swap = orientation >= 5;  // transpose, quarter turns, transverse
    Image out;
    out.width = swap ? H : W;
    out.height = swap ? W : H;
    out.rgb.resize(in.rgb.size());
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
            int sx = x, sy = y;
            switch (orientation) {
                case 2: sx = W - 1 - x; break;                    // FLIP_LEFT_RIGHT
                case 3: sx = W - 1 - x; sy = H - 1 - y; break;    // ROTATE_180
                case 4: sy = H - 1 - y; break;                    // FLIP_TOP_BOTTOM
                case 5: sx = y; sy = x; break;                    // TRANSPOSE
                case 6: sx = y; sy = H - 1 - x; break;            // ROTATE_270 (a quarter turn clockwise)
                case 7: sx = W - 1 - y; sy = H - 1 - x; break;    // TRANSVERSE
                case 8: sx = W - 1 - y; sy = x; break;            // ROTATE_90 (a quarter turn anticlockwise)
            }
            std::memcpy(out.rgb.data() + (size_t(y) * out.width + x) * 3, in.rgb.data() + (size_t(sy) * W + sx) * 3, 3);
        }
    return out;
}

}  // namespace wb
