#include "api/chat_prompt.h"

#include "api/engine.h"
#include "template/chat_template.h"

namespace wb {

namespace {
constexpr char kSentinel[] = "\x02wb-text-";
constexpr size_t kSentinelLen = sizeof(kSentinel) - 1;
}  // namespace

std::string textSentinel(size_t i) { return kSentinel + std::to_string(i) + "\x03"; }

Result<void> splitAtSentinels(std::string_view s, size_t numTexts,
                              const std::function<void(std::string_view)>& onTemplate,
                              const std::function<void(size_t)>& onText) {
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t at = s.find('\x02', pos);
        const size_t end = at == std::string_view::npos ? s.size() : at;
        if (end > pos) onTemplate(s.substr(pos, end - pos));
        if (at == std::string_view::npos) break;
        const size_t close = s.find('\x03', at);
        if (close == std::string_view::npos || close < at + kSentinelLen || s.compare(at, kSentinelLen, kSentinel) != 0)
            return makeError("chat template: could not place the message texts in its output");
        const std::string_view key = s.substr(at + kSentinelLen, close - at - kSentinelLen);
        if (key.empty() || key.find_first_not_of("0123456789") != std::string_view::npos)
            return makeError("chat template: could not place the message texts in its output");
        const size_t idx = size_t(std::stoul(std::string(key)));
        if (idx >= numTexts) return makeError("chat template: could not place the message texts in its output");
        onText(idx);
        pos = close + 1;
    }
    return {};
}

Result<ChatPrompt> buildChatPrompt(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                   bool addGenerationPrompt, bool enableThinking) {
    ChatPrompt p;
    if (!tok.chatTemplate()) {
        std::string transcript;
        for (const ChatMessage& m : messages)
            transcript += (m.role == "user" ? "User: " : m.role == "system" ? "System: " : "Assistant: ") + m.content +
                          "\n";
        if (addGenerationPrompt) transcript += "Assistant:";
        p.ids = tok.encode(transcript, tok.addBosByDefault(), SpecialTokens::Plain);
        p.stopString = "\nUser:";
        return p;
    }
    auto t = ChatTemplate::parse(*tok.chatTemplate());
    if (!t) return makeError("chat template: " + t.error().message);
    TemplateValue::List msgs;
    for (size_t i = 0; i < messages.size(); ++i) {
        TemplateValue::Map m;
        m.set("role", TemplateValue(messages[i].role));
        m.set("content", TemplateValue(textSentinel(i)));
        msgs.push_back(TemplateValue(std::move(m)));
    }
    TemplateValue::Map extra;
    extra.set("enable_thinking", TemplateValue(enableThinking));
    const std::string bos = tok.bos() >= 0 ? tok.piece(tok.bos()) : "";
    const std::string eos = tok.eos() >= 0 ? tok.piece(tok.eos()) : "";
    auto rendered = t->renderChat(TemplateValue(std::move(msgs)), addGenerationPrompt, TemplateValue(std::move(extra)),
                                  bos, eos);
    if (!rendered) return makeError("chat template: " + rendered.error().message);
    // Template text is parsed for special tokens, message text is plain, and the pieces are tokenized as the one
    // string they form (so ids match the reference's whole-string encoding unless a user typed a special token).
    std::vector<Tokenizer::Segment> segments;
    WB_TRY(splitAtSentinels(
            *rendered, messages.size(),
            [&](std::string_view text) { segments.push_back({text, SpecialTokens::Parse}); },
            [&](size_t i) { segments.push_back({messages[i].content, SpecialTokens::Plain}); }));
    p.ids = tok.encodeSegments(segments, false);
    p.usedTemplate = true;
    return p;
}

}  // namespace wb
