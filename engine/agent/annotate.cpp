#include "agent/annotate.h"

#include <algorithm>
#include <cmath>

namespace wb {

namespace agent {

namespace {

void put(Image& img, int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    uint8_t* p = img.rgb.data() + (int64_t(y) * img.width + x) * 3;
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
}

}  // namespace

void drawRing(Image& img, int cx, int cy, double inner, double outer, Rgb color) {
    const int r = int(std::ceil(outer));
    for (int y = std::max(0, cy - r); y <= std::min(img.height - 1, cy + r); ++y)
        for (int x = std::max(0, cx - r); x <= std::min(img.width - 1, cx + r); ++x) {
            const double d = std::hypot(double(x - cx), double(y - cy));
            if (d <= outer && d >= inner) put(img, x, y, color);
        }
}

void drawLine(Image& img, int x0, int y0, int x1, int y1, double thickness, Rgb color) {
    const double half = thickness / 2.0;
    const int pad = int(std::ceil(half));
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = std::max(0, std::min(y0, y1) - pad); y <= std::min(img.height - 1, std::max(y0, y1) + pad); ++y)
        for (int x = std::max(0, std::min(x0, x1) - pad); x <= std::min(img.width - 1, std::max(x0, x1) + pad); ++x) {
            double t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0.0;
            t = std::clamp(t, 0.0, 1.0);
            if (std::hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= half) put(img, x, y, color);
        }
}

void fillRect(Image& img, int x, int y, int w, int h, Rgb color) {
    for (int yy = std::max(0, y); yy < std::min(img.height, y + h); ++yy)
        for (int xx = std::max(0, x); xx < std::min(img.width, x + w); ++xx) put(img, xx, yy, color);
}

void drawMarks(Image& img, const std::vector<AgentMark>& marks) {
    for (const AgentMark& m : marks) {
        switch (m.shape) {
            case AgentMark::Shape::Ring:
                drawRing(img, m.x, m.y, m.radius - m.thickness, m.radius, m.color);
                break;
            case AgentMark::Shape::Disc:
                drawRing(img, m.x, m.y, 0, m.radius, m.color);
                break;
            case AgentMark::Shape::Arrow: {
                drawLine(img, m.x, m.y, m.x2, m.y2, m.thickness, m.color);
                // The head: two strokes back from the end at ±28 degrees, as long as the arrow's head size.
                const double angle = std::atan2(double(m.y2 - m.y), double(m.x2 - m.x));
                const double head = std::max(3.0 * m.thickness, 8.0);
                for (double a : {angle + M_PI - 0.5, angle + M_PI + 0.5})
                    drawLine(img, m.x2, m.y2, int(std::lround(m.x2 + head * std::cos(a))),
                             int(std::lround(m.y2 + head * std::sin(a))), m.thickness, m.color);
                break;
            }
            case AgentMark::Shape::Badge: {
                fillRect(img, m.x, m.y, m.width, m.height, m.color);
                const BadgeText t = badgeText(m);
                if (t.scale > 0) drawText(img, t.x, t.y, t.scale, t.text, t.color);
                break;
            }
        }
    }
}

}  // namespace agent

const char* agentMarkShapeName(AgentMark::Shape s) {
    switch (s) {
        case AgentMark::Shape::Ring:
            return "ring";
        case AgentMark::Shape::Disc:
            return "disc";
        case AgentMark::Shape::Arrow:
            return "arrow";
        case AgentMark::Shape::Badge:
            return "badge";
    }
    return "?";
}

namespace {

using Rgb = agent::Rgb;

Rgb badgeColor(AgentActionKind k) {
    switch (k) {
        case AgentActionKind::Type:
        case AgentActionKind::TypeName:
            return {30, 170, 80};
        case AgentActionKind::Launch:
            return {0, 150, 160};
        case AgentActionKind::Back:
            return {110, 110, 110};
        case AgentActionKind::Home:
            return {90, 70, 200};
        case AgentActionKind::Wait:
            return {230, 190, 0};
        case AgentActionKind::Finish:
            return {0, 110, 50};
        case AgentActionKind::TakeOver:
            return {230, 90, 20};
        case AgentActionKind::Note:
        case AgentActionKind::CallApi:
        case AgentActionKind::Interact:
            return {150, 100, 50};
        default:
            return {20, 20, 20};  // unknown action, parse error
    }
}

}  // namespace

std::vector<AgentMark> agentMarks(const AgentParse& parse, int w, int h) {
    std::vector<AgentMark> marks;
    if (w <= 0 || h <= 0) return marks;
    // Sizes follow the screen: a ring of a twentieth of its short side (54 px on a 1080-wide phone).
    const int r = std::max(8, std::min(w, h) / 20);
    const int t = std::max(2, r / 4);
    const AgentAction& a = parse.action;
    auto ring = [&](AgentPixel p, int radius, Rgb c) {
        AgentMark m;
        m.shape = AgentMark::Shape::Ring;
        m.x = p.x;
        m.y = p.y;
        m.radius = radius;
        m.thickness = t;
        m.color = c;
        m.label = a.name;
        marks.push_back(m);
    };
    auto disc = [&](AgentPixel p, int radius, Rgb c) {
        AgentMark m;
        m.shape = AgentMark::Shape::Disc;
        m.x = p.x;
        m.y = p.y;
        m.radius = radius;
        m.color = c;
        m.label = a.name;
        marks.push_back(m);
    };
    if (parse.ok() && a.point && a.kind == AgentActionKind::Tap) {
        ring(agentPointToPixel(*a.point, w, h), r, {235, 40, 40});
        return marks;
    }
    if (parse.ok() && a.point && a.kind == AgentActionKind::DoubleTap) {
        const AgentPixel p = agentPointToPixel(*a.point, w, h);
        ring(p, r, {255, 150, 0});
        ring(p, r / 2 + t / 2, {255, 150, 0});
        return marks;
    }
    if (parse.ok() && a.point && a.kind == AgentActionKind::LongPress) {
        const AgentPixel p = agentPointToPixel(*a.point, w, h);
        ring(p, r, {200, 40, 200});
        disc(p, std::max(2, r / 3), {200, 40, 200});
        return marks;
    }
    if (parse.ok() && a.kind == AgentActionKind::Swipe && a.start && a.end) {
        const AgentPixel s = agentPointToPixel(*a.start, w, h), e = agentPointToPixel(*a.end, w, h);
        disc(s, t * 2, {40, 110, 255});
        AgentMark m;
        m.shape = AgentMark::Shape::Arrow;
        m.x = s.x;
        m.y = s.y;
        m.x2 = e.x;
        m.y2 = e.y;
        m.thickness = t;
        m.color = {40, 110, 255};
        m.label = a.name;
        marks.push_back(m);
        return marks;
    }
    // Everything else is a badge across the top middle; an unknown action with a point also gets a ring.
    if (parse.ok() && a.kind == AgentActionKind::Unknown && a.point)
        ring(agentPointToPixel(*a.point, w, h), r, {20, 20, 20});
    AgentMark b;
    b.shape = AgentMark::Shape::Badge;
    b.width = std::max(16, w / 3);
    b.height = std::max(8, h / 25);
    b.x = (w - b.width) / 2;
    b.y = std::max(0, h / 20);
    b.color = parse.ok() ? badgeColor(a.kind) : Rgb{20, 20, 20};
    b.label = parse.ok() ? a.name : "parse error";
    marks.push_back(b);
    return marks;
}

Result<std::vector<uint8_t>> annotateAgentScreenshot(const std::vector<uint8_t>& encoded,
                                                     const std::vector<AgentMark>& marks) {
    auto img = decodeImage(encoded, "screenshot");
    if (!img) return img.error();
    agent::drawMarks(*img, marks);
    return encodePng(*img);
}

}  // namespace wb
