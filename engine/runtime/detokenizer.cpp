#include "runtime/detokenizer.h"

#include <algorithm>

namespace wb {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Scan { Complete, Invalid, Incomplete };

struct Step {
    Scan kind;
    size_t length;  // bytes consumed: the character, or the maximal ill-formed subpart (>= 1)
};

// Decodes one character at s[i] following the Unicode "maximal subpart" rule (Table 3-7 well-formed sequences),
// so overlongs, surrogates and code points above U+10FFFF are rejected as early as their second byte and each
// ill-formed subpart becomes exactly one U+FFFD, as browsers and Python do.
Step scanChar(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return {Scan::Complete, 1};
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return {Scan::Invalid, 1};  // stray continuation byte, C0/C1, F5..FF
    }
    for (size_t k = 1; k < need; ++k) {
        if (i + k >= s.size()) return {Scan::Incomplete, k};
        const auto b = static_cast<unsigned char>(s[i + k]);
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) return {Scan::Invalid, k};
    }
    return {Scan::Complete, need};
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
    m_pending.append(bytes);
    std::string out;
    out.reserve(m_pending.size());
    size_t i = 0;
    while (i < m_pending.size()) {
        const Step st = scanChar(m_pending, i);
        if (st.kind == Scan::Incomplete) break;  // a valid prefix so far: wait for the rest
        if (st.kind == Scan::Complete) {
            out.append(m_pending, i, st.length);
        } else {
            out.append(kReplacement);
        }
        i += st.length;
    }
    m_pending.erase(0, i);
    return out;
}

std::string Utf8Stream::flush() {
    std::string out = push({});
    if (!m_pending.empty()) {
        // Only one valid-but-truncated prefix can remain, and it is one ill-formed subpart.
        out.append(kReplacement);
        m_pending.clear();
    }
    return out;
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
    // An empty stop string would match everywhere; it carries no meaning, so it is dropped.
    for (auto& s : stops) {
        if (!s.empty()) m_stops.push_back(std::move(s));
    }
}

std::string StopStringMatcher::push(std::string_view text) {
    if (m_stopped) return {};
    m_held.append(text);

    // Generation ends as soon as any stop string completes; among those complete now, the earliest start wins
    // so that nothing of a stop string leaks out.
    size_t cut = std::string::npos;
    for (const auto& s : m_stops) {
        const size_t pos = m_held.find(s);
        if (pos < cut) cut = pos;
    }
    if (cut != std::string::npos) {
        m_stopped = true;
        std::string out = m_held.substr(0, cut);
        m_held.clear();
        return out;
    }

    // Hold back the longest tail that is a proper prefix of some stop string; everything before it can no longer
    // be part of a match, because no stop string is complete in the held text.
    size_t holdLen = 0;
    for (const auto& s : m_stops) {
        const size_t maxLen = std::min(s.size() - 1, m_held.size());
        for (size_t len = maxLen; len > holdLen; --len) {
            if (std::string_view(m_held).substr(m_held.size() - len) == std::string_view(s).substr(0, len)) {
                holdLen = len;
                break;
            }
        }
    }
    std::string out = m_held.substr(0, m_held.size() - holdLen);
    m_held.erase(0, m_held.size() - holdLen);
    return out;
}

std::string StopStringMatcher::flush() {
    if (m_stopped) return {};
    std::string out = std::move(m_held);
    m_held.clear();
    return out;
}

}  // namespace wb
