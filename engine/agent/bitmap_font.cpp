// A 5 x 7 bitmap font of the workbench's own (capital letters, digits and some punctuation), for the labels the
// exported screenshots carry on their badges: the raster routine has no font engine and needs none for names like
// "TAKE_OVER" or "PARSE ERROR". Lower case is drawn as capitals; any other character as '?'.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <utility>

#include "agent/annotate.h"

namespace wb::agent {

namespace {

struct Glyph {
    char c;
    uint8_t rows[7];  // top to bottom; bit 4 is the leftmost column
};

// Each row's comment draws it (# lit).
constexpr Glyph kGlyphs[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},   // ..... ..... ..... ..... ..... ..... .....
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},   // ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..
    {'"', {0x0a, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00}},   // .#.#. .#.#. .#.#. ..... ..... ..... .....
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},  // ..#.. ..#.. .#... ..... ..... ..... .....
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},   // ...#. ..#.. .#... .#... .#... ..#.. ...#.
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},   // .#... ..#.. ...#. ...#. ...#. ..#.. .#...
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},   // ..... ..... ..... ..... .##.. ..#.. .#...
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},   // ..... ..... ..... ##### ..... ..... .....
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},   // ..... ..... ..... ..... ..... .##.. .##..
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},   // ..... ....# ...#. ..#.. .#... #.... .....
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},   // .###. #...# #..## #.#.# ##..# #...# .###.
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},   // ..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},   // .###. #...# ....# ...#. ..#.. .#... #####
    {'3', {0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e}},   // ####. ....# ....# .###. ....# ....# ####.
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},   // ...#. ..##. .#.#. #..#. ##### ...#. ...#.
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},   // ##### #.... ####. ....# ....# #...# .###.
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},   // ..##. .#... #.... ####. #...# #...# .###.
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},   // ##### ....# ...#. ..#.. .#... .#... .#...
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},   // .###. #...# #...# .###. #...# #...# .###.
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},   // .###. #...# #...# .#### ....# ...#. .##..
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},   // ..... .##.. .##.. ..... .##.. .##.. .....
    {'?', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},   // .###. #...# ....# ...#. ..#.. ..... ..#..
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},   // .###. #...# #...# ##### #...# #...# #...#
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},   // ####. #...# #...# ####. #...# #...# ####.
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},   // .###. #...# #.... #.... #.... #...# .###.
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},   // ####. #...# #...# #...# #...# #...# ####.
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},   // ##### #.... #.... ####. #.... #.... #####
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},   // ##### #.... #.... ####. #.... #.... #....
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},   // .###. #...# #.... #.### #...# #...# .####
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},   // #...# #...# #...# ##### #...# #...# #...#
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},   // .###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},   // ..### ...#. ...#. ...#. ...#. #..#. .##..
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},   // #...# #..#. #.#.. ##... #.#.. #..#. #...#
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},   // #.... #.... #.... #.... #.... #.... #####
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},   // #...# ##.## #.#.# #.#.# #...# #...# #...#
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},   // #...# #...# ##..# #.#.# #..## #...# #...#
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},   // .###. #...# #...# #...# #...# #...# .###.
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},   // ####. #...# #...# ####. #.... #.... #....
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},   // .###. #...# #...# #...# #.#.# #..#. .##.#
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},   // ####. #...# #...# ####. #.#.. #..#. #...#
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},   // .#### #.... #.... .###. ....# ....# ####.
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},   // ##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},   // #...# #...# #...# #...# #...# #...# .###.
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},   // #...# #...# #...# #...# #...# .#.#. ..#..
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},   // #...# #...# #...# #.#.# #.#.# #.#.# .#.#.
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},   // #...# #...# .#.#. ..#.. .#.#. #...# #...#
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},   // #...# #...# .#.#. ..#.. ..#.. ..#.. ..#..
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},   // ##### ....# ...#. ..#.. .#... #.... #####
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}},   // ..... ..... ..... ..... ..... ..... #####
};

const Glyph& glyphOf(char c) {
    const char up = char(std::toupper(static_cast<unsigned char>(c)));
    for (const Glyph& g : kGlyphs)
        if (g.c == up) return g;
    for (const Glyph& g : kGlyphs)
        if (g.c == '?') return g;
    return kGlyphs[0];
}

}  // namespace

const uint8_t* glyphRows(char c) {
    return glyphOf(c).rows;
}

void drawText(Image& img, int x, int y, int scale, std::string_view text, Rgb color) {
    for (size_t i = 0; i < text.size(); ++i) {
        const uint8_t* rows = glyphRows(text[i]);
        const int gx = x + int(i) * kGlyphAdvance * scale;
        for (int r = 0; r < kGlyphHeight; ++r)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (rows[r] & (0x10 >> col)) fillRect(img, gx + col * scale, y + r * scale, scale, scale, color);
    }
}

BadgeText badgeText(const AgentMark& m) {
    BadgeText t;
    t.text = m.label;
    // A margin of an eighth of the height (at least a pixel) keeps the badge's edge in its colour.
    const int pad = std::max(1, m.height / 8);
    const int h = m.height - 2 * pad, w = m.width - 2 * pad;
    if (h < kGlyphHeight || w < kGlyphWidth || t.text.empty()) return {};
    auto textWidth = [](size_t n, int s) { return (int(n) * kGlyphAdvance - 1) * s; };
    t.scale = std::max(1, std::min(h / kGlyphHeight, w / std::max(1, textWidth(t.text.size(), 1))));
    if (textWidth(t.text.size(), t.scale) > w) {  // too long even at one pixel a dot: cut, with ".." at the end
        size_t n = size_t((w + 1) / kGlyphAdvance);
        t.text = n >= 3 ? t.text.substr(0, n - 2) + ".." : t.text.substr(0, n);
    }
    t.x = m.x + (m.width - textWidth(t.text.size(), t.scale)) / 2;
    t.y = m.y + (m.height - kGlyphHeight * t.scale) / 2;
    // Dark text on light badges (Wait's yellow), white on the others.
    const int luma = (299 * m.color[0] + 587 * m.color[1] + 114 * m.color[2]) / 1000;
    t.color = luma > 150 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
    return t;
}

}  // namespace wb::agent
