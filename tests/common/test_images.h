// Procedural test images. procedural() is the integer formula tools/hf-goldens/make_glm_goldens.py repeats
// (procedural_image), so a test and the goldens see the same pixels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "media/image.h"

namespace wbtest {

inline wb::Image procedural(int w, int h, int variant) {
    wb::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * size_t(h) * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.rgb.data() + (size_t(y) * size_t(w) + size_t(x)) * 3;
            p[0] = uint8_t((x * 7 + y * 3 + variant * 50) % 256);
            p[1] = uint8_t((x * y + variant * 17) % 251);
            p[2] = uint8_t(((x / 8) ^ (y / 8)) * 16 % 256);
        }
    return img;
}

}  // namespace wbtest
