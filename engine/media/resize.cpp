#include "media/resize.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace wb {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's PRECISION_BITS for 8-bit images

double bicubicFilter(double x) {
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// For each output index: the first input index, the number of taps, and ksize fixed-point weights.
struct Coeffs {
    int ksize = 0;
    std::vector<int> bounds;  // 2 per output: xmin, count
    std::vector<int32_t> k;   // ksize per output
};

Coeffs precompute(int inSize, int outSize) {
    constexpr double support0 = 2.0;  // bicubic
    const double scale = double(inSize) / outSize;
    const double filterScale = scale < 1.0 ? 1.0 : scale;
    const double support = support0 * filterScale;
    Coeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    c.bounds.resize(size_t(outSize) * 2);
    c.k.assign(size_t(outSize) * c.ksize, 0);
    std::vector<double> w(size_t(c.ksize));
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterScale;
        int xmin = int(center - support + 0.5);  // C truncation, as PIL
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[size_t(x)] = bicubicFilter((x + xmin - center + 0.5) * ss);
            ww += w[size_t(x)];
        }
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
            const double f = v * double(1 << kPrecisionBits);
            c.k[size_t(xx) * c.ksize + x] = v < 0 ? int32_t(-0.5 + f) : int32_t(0.5 + f);
        }
        c.bounds[size_t(xx) * 2] = xmin;
        c.bounds[size_t(xx) * 2 + 1] = xmax;
    }
    return c;
}

inline uint8_t clip8(int32_t ss) {
    const int32_t v = ss >> kPrecisionBits;
    return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

Result<Image> resizeBicubic(const Image& src, int width, int height) {
    if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0)
        return makeError("resizeBicubic: cannot resize " + std::to_string(src.width) + "x" +
                         std::to_string(src.height) + " to " + std::to_string(width) + "x" + std::to_string(height));
    const bool needH = width != src.width, needV = height != src.height;
    Image cur;
    const Image* in = &src;
    if (needH) {
        const Coeffs c = precompute(src.width, width);
        cur.width = width;
        cur.height = src.height;
        cur.rgb.resize(size_t(width) * src.height * 3);
        for (int y = 0; y < src.height; ++y) {
            const uint8_t* row = src.rgb.data() + size_t(y) * src.width * 3;
            uint8_t* out = cur.rgb.data() + size_t(y) * width * 3;
            for (int xx = 0; xx < width; ++xx) {
                const int xmin = c.bounds[size_t(xx) * 2], n = c.bounds[size_t(xx) * 2 + 1];
                const int32_t* k = c.k.data() + size_t(xx) * c.ksize;
                for (int ch = 0; ch < 3; ++ch) {
                    int32_t ss = 1 << (kPrecisionBits - 1);
                    for (int x = 0; x < n; ++x) ss += int32_t(row[(xmin + x) * 3 + ch]) * k[x];
                    out[xx * 3 + ch] = clip8(ss);
                }
            }
        }
        in = &cur;
    }
    if (!needV) {
        if (!needH) return src;
        return cur;
    }
    const Coeffs c = precompute(in->height, height);
    Image out;
    out.width = width;
    out.height = height;
    out.rgb.resize(size_t(width) * height * 3);
    const size_t stride = size_t(width) * 3;
    for (int yy = 0; yy < height; ++yy) {
        const int ymin = c.bounds[size_t(yy) * 2], n = c.bounds[size_t(yy) * 2 + 1];
        const int32_t* k = c.k.data() + size_t(yy) * c.ksize;
        uint8_t* dst = out.rgb.data() + size_t(yy) * stride;
        for (size_t i = 0; i < stride; ++i) {
            int32_t ss = 1 << (kPrecisionBits - 1);
            for (int y = 0; y < n; ++y) ss += int32_t(in->rgb[size_t(ymin + y) * stride + i]) * k[y];
            dst[i] = clip8(ss);
        }
    }
    return out;
}

}  // namespace wb
