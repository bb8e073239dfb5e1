// ChatTemplate: an interpreter for the Jinja2 subset that checkpoints' chat templates use (the `chat_template` of
// tokenizer_config.json / chat_template.jinja, or GGUF's tokenizer.chat_template). It follows transformers'
// rendering environment: trim_blocks and lstrip_blocks on, loop controls, raise_exception, strftime_now, and a
// tojson that keeps key order and non-ASCII text. Errors (syntax, unknown filter, raise_exception, runaway
// loops or recursion) come back as wb::Error naming the template line; nothing throws.
#pragma once

#include "core/result.h"
#include "template/template_value.h"

#include <memory>
#include <string>

namespace wb {

struct ChatTemplateOptions {
    bool trimBlocks = true;    // drop the first newline after a block tag, as transformers configures Jinja
    bool lstripBlocks = true;  // drop spaces/tabs before a block tag that starts a line
    size_t maxLoopIterations = 1'000'000;  // across the whole render
    size_t maxCallDepth = 64;              // macro recursion
    size_t maxOutputBytes = 64u << 20;
};

namespace template_detail {
struct Program;
}

class ChatTemplate {
public:
    static Result<ChatTemplate> parse(std::string source, ChatTemplateOptions options = {});

    // Renders with `context` (a map) as the template's variables.
    Result<std::string> render(const TemplateValue& context) const;

    // The variables transformers passes to apply_chat_template: messages, add_generation_prompt, bos_token,
    // eos_token, plus every entry of `extra` (e.g. enable_thinking, tools). `messages` is a list of maps with a
    // role and a content that is a string or a list of parts ({type: text|image|image_url|audio|video, ...}).
    Result<std::string> renderChat(const TemplateValue& messages, bool addGenerationPrompt,
                                   const TemplateValue& extra = TemplateValue::Map{},
                                   const std::string& bosToken = "", const std::string& eosToken = "") const;

    const std::string& source() const;

private:
    std::shared_ptr<const template_detail::Program> m_program;
};

}  // namespace wb
