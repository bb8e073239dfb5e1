// PNG and JPEG through the engine's media code, as a request's image goes: decodeImage (libpng / libjpeg-turbo,
// the pixel budget checked before any buffer, EXIF orientation), then GLM-4.1V's preprocessing (smart resize,
// rescale, normalize, patches). The decoder's pixel budget is lowered from the default 64 Mpx to 4 Mpx so that one
// input stays within -timeout and -rss_limit_mb; the checks are the same. Seeds: the fixtures' llama_cute.jpg
// (tools/fuzz.sh) and tests/fuzz/seeds/fuzz_image.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_common.h"
#include "media/glm4v_image_processor.h"
#include "media/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    wb::DecodeLimits limits;
    limits.maxPixels = 4'000'000;
    auto img = wb::decodeImage(std::span<const uint8_t>(data, size), "fuzz image", limits);
    if (!img) return wbfuzz::note(img.error().message), 0;
    if (img->width <= 0 || img->height <= 0 || img->rgb.size() != size_t(img->width) * size_t(img->height) * 3)
        __builtin_trap();
    // The preprocessing's pixel loops under coverage tracing cost about 6 s for a 1024x1024 photo: only small
    // decoded images go on, resized within a small budget (the reference's is 28*28*15000 pixels).
    if (img->numPixels() > 256 * 256) return 0;
    wb::Glm4vProcessorConfig cfg;
    cfg.maxPixels = 28 * 28 * 64;
    auto in = wb::glm4vPreprocess(*img, cfg);
    wbfuzz::note(in ? "preprocessed" : in.error().message);
    return 0;
}
