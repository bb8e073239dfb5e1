// A small raster routine over decoded 8-bit RGB (media/image.h): the marks of api/agent.h drawn into a
// screenshot without Qt, so the CLI's exported run looks like the view.
#pragma once

#include <array>
#include <cstdint>

#include "api/agent.h"
#include "media/image.h"

namespace wb::agent {

using Rgb = std::array<uint8_t, 3>;

/// Pixels whose centre lies within [inner, outer] of (cx, cy); inner 0 fills a disc.
void drawRing(Image& img, int cx, int cy, double inner, double outer, Rgb color);
/// A segment `thickness` wide (pixels whose centre lies within thickness/2 of it).
void drawLine(Image& img, int x0, int y0, int x1, int y1, double thickness, Rgb color);
void fillRect(Image& img, int x, int y, int w, int h, Rgb color);
/// Every mark in order.
void drawMarks(Image& img, const std::vector<AgentMark>& marks);

}  // namespace wb::agent
