// Streaming detokenization: bytes of tokens go in, only complete UTF-8 characters come out; stop strings are
// held back while they may still be completing, and cut at the first match.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wb {

class Utf8Stream {
public:
    /// Appends bytes; returns the longest prefix of pending bytes that ends on a character boundary.
    std::string push(std::string_view bytes);
    /// What is left at the end (an incomplete sequence becomes U+FFFD).
    std::string flush();

private:
    std::string m_pending;
};

class StopStringMatcher {
public:
    explicit StopStringMatcher(std::vector<std::string> stops);
    /// Feeds new text; returns the text that is safe to emit now. Sets stopped() when a stop string is found
    /// (the stop string and anything after it are dropped).
    std::string push(std::string_view text);
    /// The held-back tail, at the end of generation when no stop string matched.
    std::string flush();
    bool stopped() const { return m_stopped; }

private:
    std::vector<std::string> m_stops;
    std::string m_held;
    bool m_stopped = false;
};

}  // namespace wb
