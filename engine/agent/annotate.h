// A small raster routine over decoded 8-bit RGB (media/image.h): the marks of api/agent.h drawn into a
// screenshot without Qt, so the CLI's exported run looks like the view.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/agent.h"
#include "media/image.h"

namespace wb::agent {

using Rgb = std::array<uint8_t, 3>;

/// Pixels whose centre lies within [inner, outer] of (cx, cy); inner 0 fills a disc.
void drawRing(Image& img, int cx, int cy, double inner, double outer, Rgb color);
/// A segment `thickness` wide (pixels whose centre lies within thickness/2 of it).
void drawLine(Image& img, int x0, int y0, int x1, int y1, double thickness, Rgb color);
void fillRect(Image& img, int x, int y, int w, int h, Rgb color);
/// Every mark in order; a badge with its label written inside (badgeText).
void drawMarks(Image& img, const std::vector<AgentMark>& marks);

// ---- The labels: a 5 x 7 bitmap font (bitmap_font.cpp) ----
constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;
/// The 7 rows of a character's glyph (bit 4 the leftmost column); lower case as capitals, others as '?'.
const uint8_t* glyphRows(char c);
/// `text` with its top-left at (x, y), each font dot `scale` x `scale` pixels.
void drawText(Image& img, int x, int y, int scale, std::string_view text, Rgb color);
/// Where a badge's label goes: as large as fits (whole dots) within a margin, centred, cut with ".." when it
/// cannot fit at one pixel a dot; white on dark badges, black on light ones. scale 0: no room for text.
struct BadgeText {
    std::string text;
    int x = 0, y = 0, scale = 0;
    Rgb color{};
};
BadgeText badgeText(const AgentMark& badge);

}  // namespace wb::agent
