#include "media/glm4v_image_processor.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "formats/json_text.h"
#include "media/resize.h"

namespace wb {

Result<void> Glm4vProcessorConfig::validate(const std::string& source) const {
    if (patchSize <= 0 || temporalPatchSize <= 0 || mergeSize <= 0)
        return makeError(source + ": patch_size, temporal_patch_size and merge_size must be positive");
    // Real processors use 14 / 2 / 2; the bounds keep patch_size * merge_size and the patch dimension from
    // overflowing.
    if (patchSize > 1024 || temporalPatchSize > 64 || mergeSize > 64)
        return makeError(source + ": patch_size " + std::to_string(patchSize) + ", temporal_patch_size " +
                         std::to_string(temporalPatchSize) + " or merge_size " + std::to_string(mergeSize) +
                         " is implausibly large");
    if (minPixels <= 0 || maxPixels < minPixels)
        return makeError(source + ": pixel budget [" + std::to_string(minPixels) + ", " + std::to_string(maxPixels) +
                         "] is empty");
    for (int c = 0; c < 3; ++c)
        if (!(std[size_t(c)] > 0)) return makeError(source + ": image_std must be positive");
    if (!(rescaleFactor > 0)) return makeError(source + ": rescale_factor must be positive");
    return {};
}

Result<Glm4vProcessorConfig> loadGlm4vProcessorConfig(const std::string& path) {
    std::ifstream f(path);
    if (!f) return makeError(path + ": cannot open");
    std::stringstream text;
    text << f.rdbuf();
    auto parsed = parseJsonObject(text.str(), path);
    if (!parsed) return parsed.error();
    nlohmann::json j = std::move(*parsed);
    Glm4vProcessorConfig c;
    try {
        // A field must hold its type, integers one that fits: get<int>() of 1e308 would be an undefined
        // conversion, and a wrong type would throw without naming the key.
        auto fitsInt = [](const nlohmann::json& v, auto& field) {
            using T = std::decay_t<decltype(field)>;
            if constexpr (std::is_same_v<T, bool>) {
                return v.is_boolean();
            } else if constexpr (std::is_floating_point_v<T>) {
                return v.is_number();
            } else {
                if (!v.is_number_integer()) return false;
                if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max());
                const int64_t x = v.get<int64_t>();
                return x >= int64_t(std::numeric_limits<T>::min()) && x <= int64_t(std::numeric_limits<T>::max());
            }
        };
        std::string badKey;
        auto geti = [&](const char* key, auto& field) {
            if (!j.contains(key) || j[key].is_null()) return;
            if (!fitsInt(j[key], field)) {
                if (badKey.empty()) badKey = key;
                return;
            }
            field = j[key].get<std::decay_t<decltype(field)>>();
        };
        geti("patch_size", c.patchSize);
        geti("temporal_patch_size", c.temporalPatchSize);
        geti("merge_size", c.mergeSize);
        geti("do_resize", c.doResize);
        geti("do_rescale", c.doRescale);
        geti("rescale_factor", c.rescaleFactor);
        geti("do_normalize", c.doNormalize);
        // Older processors wrote min_pixels/max_pixels; newer ones size {shortest_edge, longest_edge} (both
        // pixel counts despite the names). The size dict wins when both are there, as in transformers.
        geti("min_pixels", c.minPixels);
        geti("max_pixels", c.maxPixels);
        if (j.contains("size") && j["size"].is_object()) {
            const auto& s = j["size"];
            for (auto [key, field] : {std::pair{"shortest_edge", &c.minPixels}, {"longest_edge", &c.maxPixels}}) {
                if (!s.contains(key)) continue;
                if (!fitsInt(s[key], *field)) {
                    if (badKey.empty()) badKey = std::string("size.") + key;
                    continue;
                }
                *field = s[key].get<int64_t>();
            }
        }
        if (!badKey.empty()) return makeError(path + ": " + badKey + " has the wrong type or is out of range");
        for (const char* key : {"image_mean", "image_std"}) {
            if (!j.contains(key)) continue;
            const auto& v = j[key];
            if (!v.is_array() || v.size() != 3) return makeError(path + ": " + key + " must be a list of 3 numbers");
            auto& dst = std::string(key) == "image_mean" ? c.mean : c.std;
            for (size_t i = 0; i < 3; ++i) dst[i] = v[i].get<double>();
        }
    } catch (const nlohmann::json::exception& e) {
        return makeError(path + ": bad value: " + e.what());
    }
    WB_TRY(c.validate(path));
    return c;
}

Result<std::pair<int, int>> glm4vSmartResize(int numFrames, int height, int width, int temporalFactor, int factor,
                                             int64_t minPixels, int64_t maxPixels) {
    if (numFrames < temporalFactor)
        return makeError("smart_resize: " + std::to_string(numFrames) + " frames, fewer than the temporal factor " +
                         std::to_string(temporalFactor));
    if (height <= 0 || width <= 0 || factor <= 0)
        return makeError("smart_resize: empty image " + std::to_string(width) + "x" + std::to_string(height));
    double h = height, w = width;
    if (height < factor || width < factor) {
        const double scale = std::max(double(factor) / h, double(factor) / w);
        h = std::trunc(h * scale);  // Python int() of a positive float
        w = std::trunc(w * scale);
    }
    if (std::max(h, w) / std::min(h, w) > 200)
        return makeError("smart_resize: aspect ratio of " + std::to_string(width) + "x" + std::to_string(height) +
                         " is over 200");
    // Python's round() rounds halves to even, as does nearbyint in the default rounding mode.
    double hBar = std::nearbyint(h / factor) * factor;
    double wBar = std::nearbyint(w / factor) * factor;
    const double tBar = std::nearbyint(double(numFrames) / temporalFactor) * temporalFactor;
    if (tBar * hBar * wBar > double(maxPixels)) {
        const double beta = std::sqrt((double(numFrames) * h * w) / double(maxPixels));
        hBar = std::max(double(factor), std::floor(h / beta / factor) * factor);
        wBar = std::max(double(factor), std::floor(w / beta / factor) * factor);
    } else if (tBar * hBar * wBar < double(minPixels)) {
        const double beta = std::sqrt(double(minPixels) / (double(numFrames) * h * w));
        hBar = std::ceil(h * beta / factor) * factor;
        wBar = std::ceil(w * beta / factor) * factor;
    }
    if (hBar > 1e6 || wBar > 1e6)
        return makeError("smart_resize: target size " + std::to_string(wBar) + "x" + std::to_string(hBar) +
                         " is unreasonable");
    return std::pair<int, int>(int(hBar), int(wBar));
}

Result<Glm4vImageInput> glm4vPatchify(const Image& img, const Glm4vProcessorConfig& c) {
    const int p = c.patchSize, m = c.mergeSize, T = c.temporalPatchSize;
    if (img.width <= 0 || img.height <= 0 || img.width % (p * m) != 0 || img.height % (p * m) != 0)
        return makeError("glm4v processor: image of " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                         " is not a multiple of " + std::to_string(p * m) + " on both sides");
    Glm4vImageInput out;
    out.gridT = 1;  // one still image: its frame repeated over the temporal patch
    out.gridH = img.height / p;
    out.gridW = img.width / p;
    out.resizedWidth = img.width;
    out.resizedHeight = img.height;
    out.patchDim = int64_t(3) * T * p * p;
    out.pixels.resize(size_t(out.numPatches() * out.patchDim));
    // Per-channel affine map of the 8-bit values, computed in double then rounded once.
    std::array<std::array<float, 256>, 3> lut;
    for (int ch = 0; ch < 3; ++ch)
        for (int v = 0; v < 256; ++v) {
            double x = v;
            if (c.doRescale) x *= c.rescaleFactor;
            if (c.doNormalize) x = (x - c.mean[size_t(ch)]) / c.std[size_t(ch)];
            lut[size_t(ch)][size_t(v)] = float(x);
        }
    const int64_t blocksH = out.gridH / m, blocksW = out.gridW / m;
    float* dst = out.pixels.data();
    for (int64_t bh = 0; bh < blocksH; ++bh)
        for (int64_t bw = 0; bw < blocksW; ++bw)
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < m; ++j) {
                    const int64_t y0 = (bh * m + i) * p, x0 = (bw * m + j) * p;
                    for (int ch = 0; ch < 3; ++ch)
                        for (int t = 0; t < T; ++t)
                            for (int y = 0; y < p; ++y)
                                for (int x = 0; x < p; ++x)
                                    *dst++ = lut[size_t(ch)][img.pixel(int(x0 + x), int(y0 + y))[ch]];
                }
    return out;
}

Result<Glm4vImageInput> glm4vPreprocess(const Image& image, const Glm4vProcessorConfig& c) {
    WB_TRY(c.validate("glm4v processor"));
    if (!c.doResize) return glm4vPatchify(image, c);
    auto size = glm4vSmartResize(c.temporalPatchSize, image.height, image.width, c.temporalPatchSize, c.factor(),
                                 c.minPixels, c.maxPixels);
    if (!size) return size.error();
    auto [h, w] = *size;
    if (int64_t(h) * w > 256ll * 1024 * 1024)
        return makeError("glm4v processor: resized image " + std::to_string(w) + "x" + std::to_string(h) +
                         " exceeds the engine's limit");
    auto resized = resizeBicubic(image, w, h);
    if (!resized) return resized.error();
    return glm4vPatchify(*resized, c);
}

}  // namespace wb
