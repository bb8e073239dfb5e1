// Chat messages → prompt token ids. The checkpoint's template decides the layout; the messages' own text is
// always tokenized as plain text, so a user who types "</s>" or "<|user|>" gets those characters, never the
// control token. Only the template's own text (role markers, BOS) is parsed for special tokens.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "api/tokenizer.h"

namespace wb {

struct ChatMessage;

struct ChatPrompt {
    std::vector<int32_t> ids;
    bool usedTemplate = false;  // false: the checkpoint has no template; a plain transcript was used
    std::string stopString;     // the transcript format's turn marker, to stop on
};

/// Stands for message text `i` while a template renders: it holds control characters, so it never occurs in real
/// text, and no template edits it; the rendered output then splits back into template text and message text.
std::string textSentinel(size_t i);
/// Walks rendered output: onTemplate for each run of the template's own text, onText(i) where text i stood. An
/// error when a sentinel is mangled or names no text.
Result<void> splitAtSentinels(std::string_view rendered, size_t numTexts,
                              const std::function<void(std::string_view)>& onTemplate,
                              const std::function<void(size_t)>& onText);

Result<ChatPrompt> buildChatPrompt(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   bool addGenerationPrompt, bool enableThinking);

}  // namespace wb
