// Chat templates (the Jinja subset of engine/template/): the input is a template, parsed and rendered with a chat
// of text, image parts, a tool turn, tools and a thinking flag, as buildChatPrompt renders a checkpoint's
// template. The limits are the engine's defaults scaled down so that one input stays within -timeout.
// Seeds: tests/fuzz/seeds/fuzz_chat_template and the GLM templates of tests/goldens (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_common.h"
#include "template/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const wb::TemplateValue messages = wb::TemplateValue::fromJson(nlohmann::ordered_json::parse(R"([
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "image"},
                                     {"type": "text", "text": "this picture?"}]},
        {"role": "assistant", "content": "<think>hmm</think>A llama.", "reasoning_content": "hmm",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "user", "content": "Thanks! \u00e9\u65e5"}
    ])"));
    static const wb::TemplateValue extra = wb::TemplateValue::fromJson(nlohmann::ordered_json::parse(R"({
        "enable_thinking": false,
        "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                   "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]})"));
    wb::ChatTemplateOptions opt;
    opt.maxLoopIterations = 100'000;
    opt.maxOutputBytes = 1u << 20;
    auto t = wb::ChatTemplate::parse(std::string(wbfuzz::view(data, size)), opt);
    if (!t) return 0;
    (void)t->renderChat(messages, size % 2 == 0, extra, "<s>", "</s>");
    return 0;
}
