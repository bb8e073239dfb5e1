// Chat messages → prompt token ids. The checkpoint's template decides the layout; the messages' own text is
// always tokenized as plain text, so a user who types "</s>" or "<|user|>" gets those characters, never the
// control token. Only the template's own text (role markers, BOS) is parsed for special tokens.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "tokenizer/tokenizer.h"

namespace wb {

struct ChatMessage;

struct ChatPrompt {
    std::vector<int32_t> ids;
    bool usedTemplate = false;  // false: the checkpoint has no template; a plain transcript was used
    std::string stopString;     // the transcript format's turn marker, to stop on
};

Result<ChatPrompt> buildChatPrompt(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   bool addGenerationPrompt, bool enableThinking);

}  // namespace wb
