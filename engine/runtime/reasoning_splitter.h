// Routes generated text to "reasoning" or "content": <think>…</think> is reasoning, GLM's <answer>…</answer>
// wrapper is dropped around the content. Tags split across deltas are recognised: a tail that could still
// become a tag is held back until it is decided.
#pragma once

#include <string>
#include <string_view>

namespace wb {

class ReasoningSplitter {
public:
    struct Delta {
        std::string reasoning;
        std::string content;
        bool empty() const { return reasoning.empty() && content.empty(); }
    };

    /// startInReasoning: the prompt already opened <think> (templates that prefill it).
    explicit ReasoningSplitter(bool startInReasoning = false) : m_inReasoning(startInReasoning) {}
    Delta push(std::string_view text);
    /// Releases what was held back (an unfinished tag prefix is plain text).
    Delta flush();
    bool inReasoning() const { return m_inReasoning; }

private:
    void route(Delta& d, std::string_view text) const;
    std::string m_held;
    bool m_inReasoning;
};

}  // namespace wb
