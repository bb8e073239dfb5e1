#include "media/image.h"

#include "media/exif.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>

#ifndef WB_NO_JPEG
#include <jpeglib.h>
#include <jerror.h>
#endif
#ifndef WB_NO_PNG
#include <png.h>
#endif

namespace wb {

ImageFormat detectImageFormat(std::span<const uint8_t> b) {
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (b.size() >= 8 && std::memcmp(b.data(), png, 8) == 0) return ImageFormat::Png;
    if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return ImageFormat::Jpeg;
    return ImageFormat::Unknown;
}

namespace {

Result<void> checkSize(int64_t w, int64_t h, const std::string& source, const DecodeLimits& limits) {
    if (w <= 0 || h <= 0)
        return makeError(source + ": image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
    if (w > limits.maxDimension || h > limits.maxDimension)
        return makeError(source + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                         ", larger than the limit of " + std::to_string(limits.maxDimension) + " pixels a side");
    if (w * h > limits.maxPixels)
        return makeError(source + ": image is " + std::to_string(w) + "x" + std::to_string(h) + " (" +
                         std::to_string(w * h) + " pixels), over the budget of " + std::to_string(limits.maxPixels) +
                         " pixels");
    return {};
}

// ---- PNG -------------------------------------------------------------------------------------------------------
// libpng reports errors by longjmp. Everything with a destructor lives in the caller's frame (PngState), so a
// jump back to decodePngInner's setjmp skips no destructor.

#ifndef WB_NO_PNG
struct PngState {
    std::span<const uint8_t> bytes;
    size_t offset = 0;
    char message[256] = {0};
    std::jmp_buf jump;
};

void pngError(png_structp png, png_const_charp msg) {
    auto* st = static_cast<PngState*>(png_get_error_ptr(png));
    std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "error");
    std::longjmp(st->jump, 1);
}

void pngWarning(png_structp, png_const_charp) {}  // benign (e.g. an unknown chunk); real damage is an error

void pngRead(png_structp png, png_bytep out, png_size_t n) {
    auto* st = static_cast<PngState*>(png_get_io_ptr(png));
    if (n > st->bytes.size() - st->offset) png_error(png, "truncated file: the data ends early");
    std::memcpy(out, st->bytes.data() + st->offset, n);
    st->offset += n;
}

// Returns an empty string on success, else the reason. `out` and `rows` are sized here before the pixel reads.
std::string decodePngInner(PngState& st, const DecodeLimits& limits, const std::string& source, Image& out,
                           std::vector<png_bytep>& rows, std::string& sizeError) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, pngError, pngWarning);
    if (!png) return "cannot create a PNG reader";
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        return "cannot create a PNG reader";
    }
    if (setjmp(st.jump)) {
        png_destroy_read_struct(&png, &info, nullptr);
        return st.message[0] ? st.message : "corrupt PNG data";
    }
    png_set_read_fn(png, &st, pngRead);
    // libpng refuses larger headers itself, before it allocates anything for them.
    png_set_user_limits(png, png_uint_32(limits.maxDimension), png_uint_32(limits.maxDimension));
    png_set_chunk_malloc_max(png, 64u << 20);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int bitDepth = 0, colorType = 0;
    png_get_IHDR(png, info, &w, &h, &bitDepth, &colorType, nullptr, nullptr, nullptr);
    if (auto ok = checkSize(int64_t(w), int64_t(h), source, limits); !ok) {
        sizeError = ok.error().message;
        png_destroy_read_struct(&png, &info, nullptr);
        return "size";
    }
    // To 8-bit RGB without colour management, as PIL's convert("RGB") does.
    png_set_expand(png);      // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
    png_set_strip_16(png);    // high byte: as PIL for RGB; PIL clamps 16-bit grey instead (docs/GLM.md)
    png_set_strip_alpha(png); // dropped, not composited
    if (colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != png_size_t(w) * 3) {
        png_destroy_read_struct(&png, &info, nullptr);
        return "unsupported PNG pixel layout";
    }
    out.width = int(w);
    out.height = int(h);
    out.rgb.assign(size_t(w) * h * 3, 0);
    rows.resize(h);
    for (png_uint_32 y = 0; y < h; ++y) rows[y] = out.rgb.data() + size_t(y) * w * 3;
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);  // checks the trailing CRCs and IEND
    png_destroy_read_struct(&png, &info, nullptr);
    return "";
}

Result<Image> decodePng(std::span<const uint8_t> bytes, const std::string& source, const DecodeLimits& limits) {
    PngState st;
    st.bytes = bytes;
    Image out;
    std::vector<png_bytep> rows;
    std::string sizeError;
    const std::string err = decodePngInner(st, limits, source, out, rows, sizeError);
    if (!sizeError.empty()) return makeError(sizeError);
    if (!err.empty()) return makeError(source + ": corrupt PNG: " + err);
    return out;
}

// ---- JPEG ------------------------------------------------------------------------------------------------------

#else
Result<Image> decodePng(std::span<const uint8_t>, const std::string& source, const DecodeLimits&) {
    return makeError(source + ": this build has no PNG decoder (a WB_MINIMAL build without libpng)");
}
#endif  // WB_NO_PNG

#ifndef WB_NO_JPEG
struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX] = {0};
    bool truncated = false;
};

void jpegErrorExit(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

void jpegEmit(j_common_ptr cinfo, int level) {
    // libjpeg pads a file that ends early with grey and only warns; PIL refuses such a file, and so do we.
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegError*>(cinfo->err)->truncated = true;
}

std::string decodeJpegInner(jpeg_decompress_struct& cinfo, JpegError& jerr, std::span<const uint8_t> bytes,
                            const DecodeLimits& limits, const std::string& source, Image& out,
                            std::vector<uint8_t>& cmykRow, std::string& sizeError) {
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpegErrorExit;
    jerr.mgr.emit_message = jpegEmit;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return jerr.message[0] ? jerr.message : "corrupt JPEG data";
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = 512l << 20;
    jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&cinfo, TRUE);
    if (auto ok = checkSize(cinfo.image_width, cinfo.image_height, source, limits); !ok) {
        sizeError = ok.error().message;
        jpeg_destroy_decompress(&cinfo);
        return "size";
    }
    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const int w = int(cinfo.output_width), h = int(cinfo.output_height);
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
        jpeg_destroy_decompress(&cinfo);
        return "unsupported JPEG colour layout";
    }
    out.width = w;
    out.height = h;
    out.rgb.assign(size_t(w) * size_t(h) * 3, 0);
    cmykRow.resize(cmyk ? size_t(w) * 4 : 0);
    // Adobe's CMYK JPEGs store inverted values; PIL reads them as "CMYK;I" and un-inverts.
    const bool inverted = cmyk && cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        const size_t y = cinfo.output_scanline;
        JSAMPROW row = cmyk ? cmykRow.data() : out.rgb.data() + y * size_t(w) * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (cmyk) {
            uint8_t* dst = out.rgb.data() + y * size_t(w) * 3;
            for (int x = 0; x < w; ++x) {
                int c[4];
                for (int i = 0; i < 4; ++i) c[i] = inverted ? 255 - cmykRow[size_t(x) * 4 + i] : cmykRow[size_t(x) * 4 + i];
                // PIL's cmyk2rgb: (255 - k) - c * (255 - k) / 255, with its rounding MULDIV255.
                const int nk = 255 - c[3];
                for (int i = 0; i < 3; ++i) {
                    const int t = c[i] * nk + 128;
                    const int v = nk - (((t >> 8) + t) >> 8);
                    dst[x * 3 + i] = uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
        if (jerr.truncated) break;
    }
    if (jerr.truncated) {
        jpeg_destroy_decompress(&cinfo);
        return "truncated file: the data ends before the last scan line";
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return "";
}

Result<Image> decodeJpeg(std::span<const uint8_t> bytes, const std::string& source, const DecodeLimits& limits) {
    jpeg_decompress_struct cinfo;
    std::memset(&cinfo, 0, sizeof cinfo);
    JpegError jerr;
    Image out;
    std::vector<uint8_t> cmykRow;
    std::string sizeError;
    const std::string err = decodeJpegInner(cinfo, jerr, bytes, limits, source, out, cmykRow, sizeError);
    if (!sizeError.empty()) return makeError(sizeError);
    if (!err.empty()) return makeError(source + ": corrupt JPEG: " + err);
    return out;
}

// ---- PNG writer ------------------------------------------------------------------------------------------------

#else
Result<Image> decodeJpeg(std::span<const uint8_t>, const std::string& source, const DecodeLimits&) {
    return makeError(source + ": this build has no JPEG decoder (a WB_MINIMAL build without libjpeg)");
}
#endif  // WB_NO_JPEG

#ifndef WB_NO_PNG
struct PngWriteState {
    std::vector<uint8_t>* out;
    char message[256] = {0};
    std::jmp_buf jump;
};

void pngWrite(png_structp png, png_bytep data, png_size_t n) {
    auto* st = static_cast<PngWriteState*>(png_get_io_ptr(png));
    st->out->insert(st->out->end(), data, data + n);
}
void pngFlush(png_structp) {}
void pngWriteError(png_structp png, png_const_charp msg) {
    auto* st = static_cast<PngWriteState*>(png_get_error_ptr(png));
    std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "error");
    std::longjmp(st->jump, 1);
}

std::string encodePngInner(const Image& image, PngWriteState& st, std::vector<png_const_bytep>& rows) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, pngWriteError, pngWarning);
    if (!png) return "cannot create a PNG writer";
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, nullptr);
        return "cannot create a PNG writer";
    }
    if (setjmp(st.jump)) {
        png_destroy_write_struct(&png, &info);
        return st.message;
    }
    png_set_write_fn(png, &st, pngWrite, pngFlush);
    png_set_IHDR(png, info, png_uint_32(image.width), png_uint_32(image.height), 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_rows(png, const_cast<png_bytepp>(rows.data()), png_uint_32(rows.size()));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return "";
}

#endif  // WB_NO_PNG

}  // namespace

Result<Image> decodeImage(std::span<const uint8_t> bytes, const std::string& source, const DecodeLimits& limits) {
    if (int64_t(bytes.size()) > limits.maxEncodedBytes)
        return makeError(source + ": " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                         std::to_string(limits.maxEncodedBytes) + " bytes for an encoded image");
    Result<Image> img = makeError(source + ": not a PNG or JPEG image (" + std::to_string(bytes.size()) + " bytes)");
    switch (detectImageFormat(bytes)) {
        case ImageFormat::Png: img = decodePng(bytes, source, limits); break;
        case ImageFormat::Jpeg: img = decodeJpeg(bytes, source, limits); break;
        case ImageFormat::Unknown: return img;
    }
    if (!img || !limits.applyExifOrientation) return img;
    const int orientation = exifOrientation(bytes);
    if (orientation == 1) return img;
    return applyExifOrientation(std::move(*img), orientation);
}

Result<Image> loadImageFile(const std::string& path, const DecodeLimits& limits) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return makeError(path + ": cannot open");
    const std::streamoff size = f.tellg();
    if (size < 0) return makeError(path + ": cannot read");
    if (size > limits.maxEncodedBytes)
        return makeError(path + ": " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(limits.maxEncodedBytes) + " bytes for an encoded image");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(bytes.data()), size)) return makeError(path + ": read failed");
    return decodeImage(bytes, path, limits);
}

Result<std::vector<uint8_t>> encodePng(const Image& image) {
#ifdef WB_NO_PNG
    (void)image;
    return makeError("encodePng: this build has no PNG encoder (a WB_MINIMAL build without libpng)");
#else
    if (image.width <= 0 || image.height <= 0 || image.rgb.size() != size_t(image.numPixels()) * 3)
        return makeError("encodePng: image buffer does not match its " + std::to_string(image.width) + "x" +
                         std::to_string(image.height) + " size");
    std::vector<uint8_t> out;
    PngWriteState st;
    st.out = &out;
    std::vector<png_const_bytep> rows(size_t(image.height));
    for (int y = 0; y < image.height; ++y) rows[size_t(y)] = image.rgb.data() + size_t(y) * image.width * 3;
    const std::string err = encodePngInner(image, st, rows);
    if (!err.empty()) return makeError("encodePng: " + err);
    return out;
#endif
}

}  // namespace wb
