// `wb ask`: one chat turn through the engine.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "api/engine.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "cli/run_turn.h"

using nlohmann::json;

namespace wb::cli {

// One chat turn through the engine, the path the server and the GUI take: any model, images for vision models.
int cmdAsk(const Args& a) {
    bool ok;
    const std::string question = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    if (question.empty() && a.images.empty()) return fail("nothing to ask: give -p QUESTION and/or --image FILE");
    wb::EngineOptions eo;
    std::string err;
    if (!engineOptionsFromArgs(a, eo, err)) return fail(err);
    wb::Request r;
    r.maxTokens = 512;
    r.sampling.temperature = 0;
    if (!samplingFlags(a, r.sampling, r.maxTokens)) return 2;
    r.stop = a.stops;
    r.ignoreEos = a.has("ignore-eos");
    r.enableThinking = !a.has("no-think");
    if (a.has("system")) r.messages.push_back({"system", a.get("system"), {}});
    wb::ChatMessage user{"user", question, {}};
    for (const std::string& path : a.images) {
        std::vector<uint8_t> bytes;
        if (!readFileBytes(path, bytes)) return fail("cannot read image " + path);
        user.parts.push_back(wb::ContentPart::makeImage(std::move(bytes)));
    }
    if (!user.parts.empty() && !question.empty()) user.parts.push_back(wb::ContentPart::makeText(question));
    r.messages.push_back(std::move(user));

    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    const bool asJson = a.has("json");
    TurnResult t = runTurn(**engine, std::move(r), asJson);
    const wb::Event& last = t.last;
    if (last.type == wb::EventType::Error) return fail(last.text);
    if (asJson) {
        json j;
        j["model"] = eo.modelPath;
        j["reasoning"] = t.reasoning;
        j["answer"] = t.text;
        j["tokens"] = last.tokens;
        j["finish_reason"] = wb::stopReasonName(last.reason);
        j["usage"] = {{"prompt_tokens", last.usage.promptTokens}, {"completion_tokens", last.usage.completionTokens}};
        j["timings"] = {{"ttft_ms", last.timings.ttftMs}, {"total_ms", last.timings.e2eMs}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::fprintf(stdout, "\n");
        std::fprintf(stderr, "[%lld prompt tokens, %lld generated, first token after %.1f ms, %s]\n",
                     (long long)last.usage.promptTokens, (long long)last.usage.completionTokens, last.timings.ttftMs,
                     wb::stopReasonName(last.reason));
    }
    return 0;
}

}  // namespace wb::cli
