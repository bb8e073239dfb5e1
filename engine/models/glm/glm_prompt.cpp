#include "models/glm/glm_prompt.h"

#include <algorithm>

namespace wb {

Result<GlmPrompt> glmRopeIndex(const std::vector<int32_t>& ids, const std::vector<GlmImageGrid>& grids,
                               const GlmConfig& c) {
    GlmPrompt p;
    p.ids = ids;
    const size_t n = ids.size();
    p.positions.assign(3 * n, 0);
    const int64_t m = c.hasVision ? c.vision.spatialMergeSize : 2;
    size_t imageIndex = 0;
    int64_t next = 0;  // previous group's maximum position + 1
    bool inVideo = false;
    size_t i = 0;
    while (i < n) {
        auto isImage = [&](size_t k) {
            if (ids[k] == c.videoStartTokenId) inVideo = true;
            if (ids[k] == c.videoEndTokenId) inVideo = false;
            return ids[k] == c.imageTokenId && !inVideo;
        };
        const bool image = isImage(i);
        size_t j = i + 1;
        while (j < n && isImage(j) == image) ++j;
        if (image) {
            if (imageIndex >= grids.size())
                return makeError("prompt: image token run " + std::to_string(imageIndex + 1) + " has no image");
            const GlmImageGrid g = grids[imageIndex++];
            const int64_t lt = g.t, lh = g.h / m, lw = g.w / m;
            if (int64_t(j - i) != lt * lh * lw)
                return makeError("prompt: image " + std::to_string(imageIndex) + " has " + std::to_string(j - i) +
                                 " tokens, its grid " + std::to_string(g.t) + "x" + std::to_string(g.h) + "x" +
                                 std::to_string(g.w) + " needs " + std::to_string(lt * lh * lw));
            int64_t maxPos = next;
            for (int64_t k = 0; k < int64_t(j - i); ++k) {
                const int64_t tt = k / (lh * lw), hh = (k / lw) % lh, ww = k % lw;
                const size_t at = i + size_t(k);
                p.positions[at] = next + tt;
                p.positions[n + at] = next + hh;
                p.positions[2 * n + at] = next + ww;
                maxPos = std::max({maxPos, next + tt, next + hh, next + ww});
            }
            p.imageTokenCounts.push_back(int64_t(j - i));
            next = maxPos + 1;
        } else {
            for (size_t k = i; k < j; ++k) {
                const int64_t pos = next + int64_t(k - i);
                p.positions[k] = p.positions[n + k] = p.positions[2 * n + k] = pos;
            }
            next += int64_t(j - i);
        }
        i = j;
    }
    if (imageIndex != grids.size())
        return makeError("prompt: " + std::to_string(grids.size()) + " images but " + std::to_string(imageIndex) +
                         " image token runs");
    p.ropeDelta = next - int64_t(n);
    return p;
}

Result<GlmPrompt> buildGlmPrompt(const Tokenizer& tok, const GlmConfig& c, const std::vector<GlmPromptPart>& parts,
                                 const std::vector<GlmImageGrid>& grids) {
    if (!c.hasVision && !grids.empty()) return makeError("prompt: this GLM checkpoint has no vision tower");
    const int64_t m = c.hasVision ? c.vision.spatialMergeSize : 2;
    std::vector<int32_t> ids;
    std::vector<GlmImageGrid> used;
    const int32_t markers[] = {c.imageTokenId, c.imageStartTokenId, c.imageEndTokenId, c.videoStartTokenId,
                               c.videoEndTokenId};
    // Runs of template and text parts are tokenized as the one string they form (as the reference tokenizes the
    // rendered prompt), template text parsed for special tokens, message text plain; image parts cut the runs.
    std::vector<Tokenizer::Segment> run;
    size_t runStart = 0;
    auto flush = [&](size_t end) -> Result<void> {
        if (run.empty()) return {};
        auto enc = tok.encodeSegments(run, false);
        run.clear();
        for (int32_t id : enc)
            for (int32_t mk : markers)
                if (id == mk)
                    return makeError("prompt: parts " + std::to_string(runStart) + ".." + std::to_string(end - 1) +
                                     " (template or text) contain an image or video marker token " +
                                     std::to_string(id) + "; markers come only from image parts");
        ids.insert(ids.end(), enc.begin(), enc.end());
        return {};
    };
    for (size_t k = 0; k < parts.size(); ++k) {
        const GlmPromptPart& part = parts[k];
        if (part.kind == GlmPromptPart::Kind::Image) {
            WB_TRY(flush(k));
            if (part.imageIndex < 0 || size_t(part.imageIndex) >= grids.size())
                return makeError("prompt: part " + std::to_string(k) + " names image " +
                                 std::to_string(part.imageIndex) + " of " + std::to_string(grids.size()));
            const GlmImageGrid g = grids[size_t(part.imageIndex)];
            if (g.t <= 0 || g.h <= 0 || g.w <= 0 || g.h % m != 0 || g.w % m != 0)
                return makeError("prompt: image grid " + std::to_string(g.t) + "x" + std::to_string(g.h) + "x" +
                                 std::to_string(g.w) + " is not a multiple of the merge size");
            ids.push_back(c.imageStartTokenId);
            ids.insert(ids.end(), size_t(g.t * g.h * g.w / (m * m)), c.imageTokenId);
            ids.push_back(c.imageEndTokenId);
            used.push_back(g);
            continue;
        }
        if (run.empty()) runStart = k;
        run.push_back({part.text, part.kind == GlmPromptPart::Kind::Template ? SpecialTokens::Parse
                                                                             : SpecialTokens::Plain});
    }
    WB_TRY(flush(parts.size()));
    return glmRopeIndex(ids, used, c);
}

}  // namespace wb
