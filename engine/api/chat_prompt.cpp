#include "api/chat_prompt.h"

#include "api/engine.h"
#include "template/chat_template.h"

namespace wb {

namespace {

// Placeholders for message contents while the template renders; they cannot occur in real text (they hold
// control characters) and no template edits them, so the rendered text splits back into template text and
// message text exactly.
std::string sentinel(size_t i) { return "\x02wb-content-" + std::to_string(i) + "\x03"; }

void appendIds(std::vector<int32_t>& out, const std::vector<int32_t>& ids) { out.insert(out.end(), ids.begin(), ids.end()); }

}  // namespace

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
        m.set("content", TemplateValue(sentinel(i)));
        msgs.push_back(TemplateValue(std::move(m)));
    }
    TemplateValue::Map extra;
    extra.set("enable_thinking", TemplateValue(enableThinking));
    const std::string bos = tok.bos() >= 0 ? tok.piece(tok.bos()) : "";
    const std::string eos = tok.eos() >= 0 ? tok.piece(tok.eos()) : "";
    auto rendered = t->renderChat(TemplateValue(std::move(msgs)), addGenerationPrompt, TemplateValue(std::move(extra)),
                                  bos, eos);
    if (!rendered) return makeError("chat template: " + rendered.error().message);
    const std::string& s = *rendered;
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t at = s.find('\x02', pos);
        appendIds(p.ids, tok.encode(std::string_view(s).substr(pos, (at == std::string::npos ? s.size() : at) - pos),
                                    false, SpecialTokens::Parse));
        if (at == std::string::npos) break;
        const size_t close = s.find('\x03', at);
        const std::string key = s.substr(at + 13, close == std::string::npos ? 0 : close - at - 13);
        if (close == std::string::npos || s.compare(at, 13, "\x02wb-content-") != 0)
            return makeError("chat template: could not place the message contents in its output");
        const size_t idx = size_t(std::stoul(key.empty() ? "0" : key));
        if (idx >= messages.size()) return makeError("chat template: could not place the message contents");
        appendIds(p.ids, tok.encode(messages[idx].content, false, SpecialTokens::Plain));
        pos = close + 1;
    }
    p.usedTemplate = true;
    return p;
}

}  // namespace wb
