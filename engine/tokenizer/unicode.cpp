#include <algorithm>

#include "tokenizer/unicode_tables.h"

namespace wb::unicode {

uint8_t cptFlags(uint32_t cpt) {
    // ASCII is by far the most common input; answer it without the binary search.
    if (cpt < 128) {
        static const auto kAscii = [] {
            struct Table {
                uint8_t f[128];
            } t{};
            for (uint32_t c = 0; c < 128; ++c) {
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                    t.f[c] = kLetter;
                else if (c >= '0' && c <= '9')
                    t.f[c] = kNumber;
                else if (c == ' ' || (c >= 0x09 && c <= 0x0D))
                    t.f[c] = kWhitespace;
            }
            return t;
        }();
        return kAscii.f[cpt];
    }
    const UnicodeRange* begin = kUnicodeRanges;
    const UnicodeRange* end = kUnicodeRanges + kUnicodeRangeCount;
    const UnicodeRange* it =
        std::upper_bound(begin, end, cpt, [](uint32_t c, const UnicodeRange& r) { return c < r.first; });
    if (it == begin) return 0;
    --it;
    return cpt <= it->last ? it->flags : 0;
}

size_t utf8Len(std::string_view s, size_t pos) {
    const auto lead = static_cast<uint8_t>(s[pos]);
    size_t len = 1;
    if (lead >= 0xF0 && lead < 0xF8)
        len = 4;
    else if (lead >= 0xE0)
        len = lead < 0xF0 ? 3 : 1;
    else if (lead >= 0xC0)
        len = 2;
    if (pos + len > s.size()) return 1;
    for (size_t i = 1; i < len; ++i)
        if ((static_cast<uint8_t>(s[pos + i]) & 0xC0) != 0x80) return 1;
    return len;
}

uint32_t utf8Decode(std::string_view s, size_t pos, size_t len) {
    const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i])); };
    switch (len) {
        case 1:
            return b(0) < 0x80 ? b(0) : 0xFFFD;
        case 2:
            return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
        case 3:
            return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
        default:
            return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    }
}

void appendUtf8(std::string& out, uint32_t cpt) {
    if (cpt < 0x80) {
        out.push_back(static_cast<char>(cpt));
    } else if (cpt < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    }
}

}  // namespace wb::unicode
