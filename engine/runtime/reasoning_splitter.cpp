#include "runtime/reasoning_splitter.h"

#include <array>

namespace wb {

namespace {

constexpr std::array<std::string_view, 4> kTags = {"<think>", "</think>", "<answer>", "</answer>"};

// Length of the longest suffix of `s` that is a proper prefix of some tag.
size_t partialTagSuffix(std::string_view s) {
    size_t best = 0;
    for (std::string_view tag : kTags)
        for (size_t len = std::min(s.size(), tag.size() - 1); len > best; --len)
            if (s.substr(s.size() - len) == tag.substr(0, len)) {
                best = len;
                break;
            }
    return best;
}

}  // namespace

void ReasoningSplitter::route(Delta& d, std::string_view text) const {
    (m_inReasoning ? d.reasoning : d.content) += text;
}

ReasoningSplitter::Delta ReasoningSplitter::push(std::string_view text) {
    Delta d;
    m_held += text;
    std::string_view rest = m_held;
    for (;;) {
        // The earliest complete tag in what we have.
        size_t at = std::string_view::npos, tagLen = 0;
        int which = -1;
        for (int i = 0; i < int(kTags.size()); ++i) {
            const size_t p = rest.find(kTags[size_t(i)]);
            if (p != std::string_view::npos && p < at) {
                at = p;
                tagLen = kTags[size_t(i)].size();
                which = i;
            }
        }
        if (which < 0) break;
        route(d, rest.substr(0, at));
        if (which == 0) m_inReasoning = true;
        if (which == 1) m_inReasoning = false;
        rest.remove_prefix(at + tagLen);
    }
    const size_t keep = partialTagSuffix(rest);
    route(d, rest.substr(0, rest.size() - keep));
    m_held = std::string(rest.substr(rest.size() - keep));
    return d;
}

ReasoningSplitter::Delta ReasoningSplitter::flush() {
    Delta d;
    route(d, m_held);
    m_held.clear();
    return d;
}

}  // namespace wb
