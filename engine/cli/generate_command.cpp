// `wb generate`: one prompt through a single-sequence model, streamed (or --json with ids, text and timings).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/direct_model.h"
#include "api/tokenizer.h"

using nlohmann::json;

namespace wb::cli {

int cmdGenerate(const Args& a) {
    bool ok;
    const std::string prompt = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    auto m = loadModel(a);
    if (!m) return fail(m.error().message);
    wb::DirectModel& model = **m;
    wb::GenerateOptions g;
    if (!samplingFromArgs(a, g)) return 2;
    g.stopStrings = a.stops;
    g.ignoreEos = a.has("ignore-eos");
    const auto special = a.has("special") ? wb::SpecialTokens::Parse : wb::SpecialTokens::Plain;
    const bool addBos = !a.has("no-bos") && model.tokenizer().addBosByDefault();
    std::vector<int32_t> ids = model.tokenizer().encode(prompt, addBos, special);
    const bool asJson = a.has("json");
    if (!asJson) {
        std::fputs(prompt.c_str(), stdout);
        std::fflush(stdout);
    }
    auto r = model.generate(ids, g, [&](const std::string& t) {
        if (!asJson) {
            std::fputs(t.c_str(), stdout);
            std::fflush(stdout);
        }
    });
    if (!r) return fail(r.error().message);
    if (asJson) {
        json j;
        j["model"] = model.path();
        j["precision"] = wb::precisionName(model.precision());
        j["prompt_tokens"] = r->promptTokens;
        j["tokens"] = r->tokens;
        j["text"] = r->text;
        j["finish_reason"] = wb::finishReasonName(r->finish);
        j["timings"] = {{"prompt_ms", r->prefillMs},
                        {"first_token_ms", r->firstTokenMs},
                        {"decode_ms", r->decodeMs},
                        {"total_ms", r->totalMs},
                        {"prompt_tokens_per_s", r->prefillMs > 0 ? r->promptTokens.size() * 1000.0 / r->prefillMs : 0},
                        {"decode_tokens_per_s",
                         r->tokens.size() > 1 && r->decodeMs > 0 ? (r->tokens.size() - 1) * 1000.0 / r->decodeMs : 0}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::fprintf(stdout, "\n");
        std::fprintf(stderr, "\n[%zu prompt tokens in %.1f ms, %zu generated at %.2f tokens/s, finish: %s]\n",
                     r->promptTokens.size(), r->prefillMs, r->tokens.size(),
                     r->tokens.size() > 1 && r->decodeMs > 0 ? (r->tokens.size() - 1) * 1000.0 / r->decodeMs : 0.0,
                     wb::finishReasonName(r->finish));
    }
    return 0;
}

}  // namespace wb::cli
