// `wb chat`: an interactive chat through the engine.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "api/engine.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "cli/run_turn.h"
#include "api/tokenizer.h"

namespace wb::cli {

// Interactive chat through the engine (any model; GLM-4.1V takes images with /image PATH before a question).
int cmdChat(const Args& a) {
    wb::EngineOptions eo;
    std::string err;
    if (!engineOptionsFromArgs(a, eo, err)) return fail(err);
    wb::Request base;
    base.maxTokens = 512;
    base.sampling.temperature = 0.7f;
    if (!samplingFlags(a, base.sampling, base.maxTokens)) return 2;
    base.stop = a.stops;
    base.enableThinking = !a.has("no-think");
    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    const wb::Tokenizer& tok = (*engine)->tokenizer();
    const bool vision = (*engine)->acceptsImages();
    std::vector<wb::ChatMessage> messages;
    if (a.has("system")) messages.push_back({"system", a.get("system"), {}});
    std::fprintf(stderr, "wb chat: %s (%s). %s.%s Empty line or Ctrl-D quits.\n", eo.modelPath.c_str(),
                 (*engine)->modelConfig().architecture.c_str(),
                 tok.chatTemplate() ? "Using the checkpoint's chat template" : "No chat template: plain transcript format",
                 vision ? " /image PATH attaches an image to your next message." : "");
    std::vector<std::vector<uint8_t>> pending;
    std::string line;
    while (true) {
        std::fputs(pending.empty() ? "\n> " : "\n[+image] > ", stderr);
        if (!std::getline(std::cin, line) || line.empty()) break;
        if (line.rfind("/image ", 0) == 0) {
            if (!vision) {
                std::fprintf(stderr, "this model takes text only\n");
                continue;
            }
            std::vector<uint8_t> bytes;
            if (!readFileBytes(line.substr(7), bytes)) {
                std::fprintf(stderr, "cannot read %s\n", line.substr(7).c_str());
                continue;
            }
            pending.push_back(std::move(bytes));
            continue;
        }
        wb::ChatMessage user{"user", line, {}};
        for (auto& b : pending) user.parts.push_back(wb::ContentPart::makeImage(std::move(b)));
        if (!user.parts.empty()) user.parts.push_back(wb::ContentPart::makeText(line));
        pending.clear();
        messages.push_back(std::move(user));
        wb::Request r = base;
        r.messages = messages;
        TurnResult t = runTurn(**engine, std::move(r), false);
        std::fputs("\n", stdout);
        if (t.last.type == wb::EventType::Error) {
            std::fprintf(stderr, "wb chat: %s\n", t.last.text.c_str());
            messages.pop_back();
            continue;
        }
        messages.push_back({"assistant", t.text, {}});
    }
    return 0;
}

}  // namespace wb::cli
