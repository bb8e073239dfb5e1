// Image decoding (PNG, JPEG; corrupt, truncated and oversized inputs) and the GLM-4.1V image processor:
// smart_resize numbers derived by hand from the reference formula, the bicubic resize, the patch order.
#include "media/glm4v_image_processor.h"
#include "media/exif.h"
#include "media/image.h"
#include "media/resize.h"

#include <QtTest>

#include <cmath>
#include <fstream>

#include <zlib.h>

#include "fixtures.h"

using namespace wb;

namespace {

Image synthetic(int w, int h) {
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.rgb.data() + (size_t(y) * w + x) * 3;
            p[0] = uint8_t(x * 7 + y);
            p[1] = uint8_t(y * 5 + 3);
            p[2] = uint8_t((x ^ y) * 3);
        }
    return img;
}

uint64_t fnv1a(const std::vector<uint8_t>& b) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t x : b) h = (h ^ x) * 0x100000001b3ull;
    return h;
}

std::vector<uint8_t> readFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

class TestImageProcessor : public QObject {
    Q_OBJECT

private slots:
    void smartResize_data() {
        QTest::addColumn<int>("height");
        QTest::addColumn<int>("width");
        QTest::addColumn<qint64>("maxPixels");
        QTest::addColumn<int>("expH");
        QTest::addColumn<int>("expW");
        const qint64 glm41v = 9633792;  // GLM-4.1V-9B-Thinking's preprocessor_config.json longest_edge
        // 2400/28 = 85.7 -> 86*28 = 2408, 1080/28 = 38.6 -> 39*28 = 1092; 2*2408*1092 = 5.26M > 5M, so
        // beta = sqrt(2*2400*1080/5e6) = 1.01823: floor(2400/beta/28) = 84 -> 2352, floor(1080/beta/28) = 37 -> 1036.
        QTest::newRow("phone 1080x2400, max 5M") << 2400 << 1080 << qint64(5000000) << 2352 << 1036;
        // Under GLM-4.1V's own budget the rounded size fits: 2*2408*1092 = 5.26M <= 9.63M.
        QTest::newRow("phone 1080x2400, GLM-4.1V budget") << 2400 << 1080 << glm41v << 2408 << 1092;
        // 1024/28 = 36.57 -> 37*28 = 1036 (the fixture photo).
        QTest::newRow("1024 square") << 1024 << 1024 << glm41v << 1036 << 1036;
        // Aspect ratio exactly 200 is allowed: 28 x 5600 stays; 2*28*5600 = 313600 is within the budget.
        QTest::newRow("200:1 strip") << 28 << 5600 << glm41v << 28 << 5600;
        // Smaller than the factor: scaled by max(28/1, 28/100) = 28 to 28 x 2800 first.
        QTest::newRow("1x100 line") << 1 << 100 << glm41v << 28 << 2800;
        // scale = 28/15: height int(3000*1.8667) = 5600, width 28; ratio 200 exactly.
        QTest::newRow("15x3000 column") << 3000 << 15 << glm41v << 5600 << 28;
        // 20x20 -> 28x28 (scale 1.4); 2*28*28 = 1568 < 12544, beta = sqrt(8) = 2.83: ceil(2.83) = 3 -> 84.
        QTest::newRow("tiny 20x20") << 20 << 20 << glm41v << 84 << 84;
        // round() is half-to-even: 126/28 = 4.5 -> 4 (112), 182/28 = 6.5 -> 6 (168).
        QTest::newRow("half-even rounding") << 126 << 182 << glm41v << 112 << 168;
        // 8000x8000: beta = sqrt(2*64e6/9633792) = 3.645, floor(8000/3.645/28) = 78 -> 2184.
        QTest::newRow("8000 square") << 8000 << 8000 << glm41v << 2184 << 2184;
    }
    void smartResize() {
        QFETCH(int, height);
        QFETCH(int, width);
        QFETCH(qint64, maxPixels);
        QFETCH(int, expH);
        QFETCH(int, expW);
        auto r = glm4vSmartResize(2, height, width, 2, 28, 112 * 112, maxPixels);
        QVERIFY2(r.ok(), r.ok() ? "" : r.error().message.c_str());
        QCOMPARE(r->first, expH);
        QCOMPARE(r->second, expW);
        QCOMPARE(r->first % 28, 0);
        QCOMPARE(r->second % 28, 0);
    }
    void smartResizeRejectsExtremeAspect() {
        // 10x2100: scaled by 2.8 to 28 x 5880, a ratio of 210 > 200.
        auto r = glm4vSmartResize(2, 10, 2100, 2, 28, 112 * 112, 9633792);
        QVERIFY(!r.ok());
        QVERIFY(r.error().message.find("aspect ratio") != std::string::npos);
        QVERIFY(!glm4vSmartResize(1, 100, 100, 2, 28, 112 * 112, 9633792).ok());
    }

    void phoneScreenshotTokens() {
        Glm4vProcessorConfig c;
        c.maxPixels = 5000000;
        auto in = glm4vPreprocess(synthetic(1080, 2400), c);
        QVERIFY2(in.ok(), in.ok() ? "" : in.error().message.c_str());
        QCOMPARE(in->gridT, 1);
        QCOMPARE(in->gridH, 2352 / 14);
        QCOMPARE(in->gridW, 1036 / 14);
        QCOMPARE(in->patchDim, 3 * 2 * 14 * 14);
        QCOMPARE(in->numTokens(2), int64_t(168 * 74 / 4));  // 3108 image tokens
        QCOMPARE(int64_t(in->pixels.size()), in->numPatches() * in->patchDim);
    }

    void patchOrder() {
        // 56x84 image (already multiples of 28): grid 4 x 6 patches, 2 x 3 merge blocks.
        Glm4vProcessorConfig c;
        c.doRescale = false;
        c.doNormalize = false;  // pixels come out as the raw 0..255 values
        const Image img = synthetic(84, 56);
        auto in = glm4vPatchify(img, c);
        QVERIFY(in.ok());
        QCOMPARE(in->gridH, 4);
        QCOMPARE(in->gridW, 6);
        const int p = 14, m = 2, T = 2;
        // Independent statement of the reference's order: reshape (C, gh/m, m, p, gw/m, m, p), permute to
        // (gh/m, gw/m, m, m, C, p, p), repeat over T after C.
        for (int64_t row = 0; row < in->numPatches(); ++row) {
            const int64_t j = row % m, i = (row / m) % m, bw = (row / (m * m)) % (6 / m), bh = row / (m * m * (6 / m));
            for (int64_t col = 0; col < in->patchDim; col += 37) {
                const int64_t x = col % p, y = (col / p) % p, t = (col / (p * p)) % T, ch = col / (p * p * T);
                (void)t;
                const int px = int((bw * m + j) * p + x), py = int((bh * m + i) * p + y);
                QCOMPARE(in->pixels[size_t(row * in->patchDim + col)], float(img.pixel(px, py)[ch]));
            }
        }
        // Row 1 is the patch right of row 0 (same merge block), row 2 the one below row 0.
        QCOMPARE(in->pixels[size_t(1 * in->patchDim)], float(img.pixel(14, 0)[0]));
        QCOMPARE(in->pixels[size_t(2 * in->patchDim)], float(img.pixel(0, 14)[0]));
        QCOMPARE(in->pixels[size_t(4 * in->patchDim)], float(img.pixel(28, 0)[0]));
        // The two temporal copies are equal.
        for (int k = 0; k < p * p; ++k) QCOMPARE(in->pixels[size_t(k)], in->pixels[size_t(p * p + k)]);
    }

    void normalization() {
        Glm4vProcessorConfig c;
        Image img;
        img.width = img.height = 28;
        img.rgb.assign(28 * 28 * 3, 255);
        auto in = glm4vPatchify(img, c);
        QVERIFY(in.ok());
        QVERIFY(std::fabs(in->pixels[0] - float((1.0 - 0.48145466) / 0.26862954)) < 1e-6);
        const size_t blue = size_t(2 * 2 * 14 * 14);
        QVERIFY(std::fabs(in->pixels[blue] - float((1.0 - 0.40821073) / 0.27577711)) < 1e-6);
    }

    void resizeProperties() {
        // A constant image stays constant; identity size is a copy; downscale averages.
        Image flat;
        flat.width = 37;
        flat.height = 23;
        flat.rgb.assign(37 * 23 * 3, 200);
        auto r = resizeBicubic(flat, 56, 84);
        QVERIFY(r.ok());
        for (uint8_t v : r->rgb) QCOMPARE(int(v), 200);
        const Image s = synthetic(40, 30);
        auto same = resizeBicubic(s, 40, 30);
        QVERIFY(same.ok());
        QVERIFY(same->rgb == s.rgb);
        Image stripes;
        stripes.width = 64;
        stripes.height = 8;
        stripes.rgb.resize(64 * 8 * 3);
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 64; ++x)
                for (int ch = 0; ch < 3; ++ch) stripes.rgb[size_t((y * 64 + x) * 3 + ch)] = (x % 2) ? 255 : 0;
        auto small = resizeBicubic(stripes, 8, 8);
        QVERIFY(small.ok());
        for (int x = 1; x < 7; ++x) QVERIFY(std::abs(int(small->pixel(x, 4)[0]) - 128) <= 2);  // antialiased
    }

    void pngRoundTrip() {
        const Image s = synthetic(33, 17);
        auto png = encodePng(s);
        QVERIFY(png.ok());
        auto back = decodeImage(*png, "roundtrip.png");
        QVERIFY2(back.ok(), back.ok() ? "" : back.error().message.c_str());
        QCOMPARE(back->width, 33);
        QCOMPARE(back->height, 17);
        QVERIFY(back->rgb == s.rgb);
    }

    void decodeFixtureJpeg() {
        WB_REQUIRE_FIXTURE("images/llama_cute.jpg");
        auto img = loadImageFile(wbtest::fixture("images/llama_cute.jpg"));
        QVERIFY2(img.ok(), img.ok() ? "" : img.error().message.c_str());
        QCOMPARE(img->width, 1024);
        QCOMPARE(img->height, 1024);
        QCOMPARE(img->rgb.size(), size_t(1024 * 1024 * 3));
        uint64_t sum = 0;
        for (uint8_t v : img->rgb) sum += v;
        // Pinned from Pillow 9.4 (Debian 12's python3-pil, same libjpeg-turbo): Image.open(...).convert("RGB")
        // and .resize((w, h), Image.BICUBIC), byte sum and FNV-1a of the RGB bytes. Decoding and resizing
        // matched Pillow byte for byte (also RGBA, grey, palette, progressive and CMYK inputs) when checked.
        QCOMPARE(sum, uint64_t(647968728));
        auto r1 = resizeBicubic(*img, 1036, 1036);
        QVERIFY(r1.ok());
        QCOMPARE(fnv1a(r1->rgb), uint64_t(0xcdfb0f6fce435a84ull));
        auto r2 = resizeBicubic(*img, 392, 700);
        QVERIFY(r2.ok());
        QCOMPARE(fnv1a(r2->rgb), uint64_t(0x7ea74c4dcfe51c8bull));
        auto in = glm4vPreprocess(*img, Glm4vProcessorConfig{});
        QVERIFY(in.ok());
        QCOMPARE(in->gridH, 74);
        QCOMPARE(in->gridW, 74);
        QCOMPARE(in->numTokens(2), int64_t(37 * 37));
    }

    // EXIF orientation turns pictures upright as PIL's exif_transpose does; checked through a PNG eXIf chunk
    // (little- and big-endian TIFF) and a JPEG APP1 header, and every orientation's pixel mapping.
    void exifOrientation() {
        Image img;
        img.width = 3;
        img.height = 2;
        for (int i = 0; i < 6; ++i) img.rgb.insert(img.rgb.end(), {uint8_t(i * 10), uint8_t(i), uint8_t(200 - i)});
        auto at = [](const Image& m, int x, int y) { return int(m.rgb[(size_t(y) * m.width + x) * 3]) / 10; };
        // Input pixels by index: row 0 = 0 1 2, row 1 = 3 4 5. Expected first row of each output.
        const std::vector<std::vector<int>> firstRow = {{}, {0, 1, 2}, {2, 1, 0}, {5, 4, 3}, {3, 4, 5}, {0, 3},
                                                        {3, 0}, {5, 2}, {2, 5}};
        for (int o = 1; o <= 8; ++o) {
            const Image r = applyExifOrientation(img, o);
            QCOMPARE(r.width, o >= 5 ? 2 : 3);
            for (int x = 0; x < r.width; ++x) QCOMPARE(at(r, x, 0), firstRow[size_t(o)][size_t(x)]);
        }
        auto png = encodePng(img);
        QVERIFY(png.ok());
        for (bool little : {true, false}) {
            // TIFF: header, IFD0 with one entry (0x0112 SHORT 1 = 6), no next IFD.
            std::vector<uint8_t> tiff = little ? std::vector<uint8_t>{'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0,
                                                                      1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0}
                                               : std::vector<uint8_t>{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
                                                                      0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
            std::vector<uint8_t> chunk = {0, 0, 0, uint8_t(tiff.size()), 'e', 'X', 'I', 'f'};
            chunk.insert(chunk.end(), tiff.begin(), tiff.end());
            const uLong crc = crc32(0, chunk.data() + 4, uInt(chunk.size() - 4));
            for (int k = 3; k >= 0; --k) chunk.push_back(uint8_t(crc >> (8 * k)));
            std::vector<uint8_t> withExif(png->begin(), png->begin() + 33);  // signature + IHDR
            withExif.insert(withExif.end(), chunk.begin(), chunk.end());
            withExif.insert(withExif.end(), png->begin() + 33, png->end());
            QCOMPARE(wb::exifOrientation(withExif), 6);
            auto d = decodeImage(withExif, "exif.png");
            QVERIFY2(d.ok(), d.ok() ? "" : d.error().message.c_str());
            QCOMPARE(d->width, 2);
            QCOMPARE(d->height, 3);
            QCOMPARE(at(*d, 0, 0), 3);  // a quarter turn clockwise: the bottom-left pixel comes to the top left
            DecodeLimits raw;
            raw.applyExifOrientation = false;
            QCOMPARE(decodeImage(withExif, "exif.png", raw)->width, 3);
        }
        // A JPEG header with an APP1 Exif segment (orientation 8), then nothing: the tag is read from the header.
        std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,
                                     1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xD9};
        QCOMPARE(wb::exifOrientation(jpeg), 8);
        jpeg[5] = 200;  // a segment length past the end: no orientation, no crash
        QCOMPARE(wb::exifOrientation(jpeg), 1);
        QCOMPARE(wb::exifOrientation(std::vector<uint8_t>{0xFF, 0xD8}), 1);
    }

    void corruptAndTruncated() {
        auto png = encodePng(synthetic(64, 48));
        QVERIFY(png.ok());
        // Not an image at all.
        const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
        auto r = decodeImage(text, "text.bin");
        QVERIFY(!r.ok());
        QVERIFY(r.error().message.find("text.bin") != std::string::npos);
        QVERIFY(!decodeImage(std::vector<uint8_t>{}, "empty").ok());
        // Truncated PNG at many lengths: an error every time, never a crash.
        for (size_t n = 8; n < png->size(); n += 7) {
            std::vector<uint8_t> cut(png->begin(), png->begin() + long(n));
            auto t = decodeImage(cut, "cut.png");
            QVERIFY2(!t.ok(), qPrintable(QString("decoded a PNG cut at %1 bytes").arg(n)));
        }
        // Flipped bytes in the image data: the CRC or zlib check fails.
        std::vector<uint8_t> bad = *png;
        for (size_t i = bad.size() / 2; i < bad.size() / 2 + 8; ++i) bad[i] ^= 0x5a;
        QVERIFY(!decodeImage(bad, "bad.png").ok());

        WB_REQUIRE_FIXTURE("images/llama_cute.jpg");
        const auto jpg = readFile(wbtest::fixture("images/llama_cute.jpg"));
        QVERIFY(jpg.size() > 1000);
        for (size_t n : {size_t(3), size_t(20), size_t(200), jpg.size() / 3, jpg.size() - 100}) {
            std::vector<uint8_t> cut(jpg.begin(), jpg.begin() + long(n));
            auto t = decodeImage(cut, "cut.jpg");
            QVERIFY2(!t.ok(), qPrintable(QString("decoded a JPEG cut at %1 bytes").arg(n)));
            QVERIFY(t.error().message.find("cut.jpg") != std::string::npos);
        }
        // Garbage after a valid header: whatever libjpeg makes of it, no crash.
        std::vector<uint8_t> noisy = jpg;
        for (size_t i = 700; i < noisy.size(); i += 97) noisy[i] = uint8_t(noisy[i] * 31 + 7);
        (void)decodeImage(noisy, "noisy.jpg");
    }

    void hugeDimensionsRefused() {
        // A valid PNG header claiming 100000 x 100000 pixels: refused from the header, nothing allocated.
        auto png = encodePng(synthetic(4, 4));
        QVERIFY(png.ok());
        std::vector<uint8_t> big = *png;
        // IHDR width/height at bytes 16..23; the CRC no longer matches, which the size check precedes.
        const uint32_t dim = 100000;
        for (int k = 0; k < 2; ++k)
            for (int b = 0; b < 4; ++b) big[size_t(16 + k * 4 + b)] = uint8_t(dim >> (24 - 8 * b));
        auto r = decodeImage(big, "huge.png");
        QVERIFY(!r.ok());
        // Budget: a small image over a tiny budget names the budget.
        DecodeLimits tight;
        tight.maxPixels = 100;
        auto t = decodeImage(*png, "small.png", tight);
        QVERIFY(t.ok());  // 16 pixels
        tight.maxPixels = 10;
        auto u = decodeImage(*png, "small.png", tight);
        QVERIFY(!u.ok());
        QVERIFY(u.error().message.find("budget") != std::string::npos);
        WB_REQUIRE_FIXTURE("images/llama_cute.jpg");
        DecodeLimits jl;
        jl.maxPixels = 1000 * 1000;
        auto j = loadImageFile(wbtest::fixture("images/llama_cute.jpg"), jl);
        QVERIFY(!j.ok());
        QVERIFY(j.error().message.find("1024x1024") != std::string::npos);
    }

    void processorConfigFile() {
        const QString path = QDir::temp().filePath("wb_preprocessor_config.json");
        {
            std::ofstream f(path.toStdString());
            f << R"({"size": {"shortest_edge": 12544, "longest_edge": 9633792}, "do_rescale": true,
                    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
                    "image_mean": [0.48145466, 0.4578275, 0.40821073],
                    "image_std": [0.26862954, 0.26130258, 0.27577711],
                    "image_processor_type": "Glm4vImageProcessor", "processor_class": "Glm4vProcessor"})";
        }
        auto c = loadGlm4vProcessorConfig(path.toStdString());
        QVERIFY(c.ok());
        QCOMPARE(c->maxPixels, int64_t(9633792));
        QCOMPARE(c->minPixels, int64_t(12544));
        {
            std::ofstream f(path.toStdString());
            f << R"({"image_mean": [0.5, 0.5]})";
        }
        auto bad = loadGlm4vProcessorConfig(path.toStdString());
        QVERIFY(!bad.ok());
        QVERIFY(bad.error().message.find("image_mean") != std::string::npos);
    }

    // Found by wb-fuzz-inputs (kind image): get<int>() of 1e308 was an undefined float-to-int conversion (UBSan),
    // and a huge patch_size overflowed patch_size * merge_size. Both are errors naming the field now.
    void processorConfigHostileNumbers() {
        const QString path = QDir::temp().filePath("wb_preprocessor_config_hostile.json");
        const std::pair<const char*, const char*> cases[] = {
            {R"({"patch_size": -1e308})", "patch_size"},
            {R"({"merge_size": 4294967296})", "merge_size"},
            {R"({"size": {"longest_edge": 1e300}})", "size.longest_edge"},
            {R"({"patch_size": 2147483647, "merge_size": 2})", "patch_size"},
            {R"({"temporal_patch_size": 1000000})", "temporal_patch_size"},
            {R"({"do_resize": 1})", "do_resize"},
        };
        for (const auto& [json, field] : cases) {
            std::ofstream(path.toStdString()) << json;
            auto c = loadGlm4vProcessorConfig(path.toStdString());
            QVERIFY2(!c.ok(), json);
            QVERIFY2(c.error().message.find(field) != std::string::npos, c.error().message.c_str());
            QVERIFY2(c.error().message.find("wb_preprocessor_config_hostile.json") != std::string::npos,
                     c.error().message.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(TestImageProcessor)
#include "tst_image_processor.moc"
