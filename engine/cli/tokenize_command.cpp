// `wb tokenize`: token ids and pieces of a text.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/tokenizer.h"

using nlohmann::json;

namespace wb::cli {

int cmdTokenize(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    bool ok;
    const std::string text = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    auto t = loadTokenizerOnly(a.get("model"));
    if (!t) return fail(t.error().message);
    const wb::Tokenizer& tok = **t;
    const auto special = a.has("special") ? wb::SpecialTokens::Parse : wb::SpecialTokens::Plain;
    auto ids = tok.encode(text, !a.has("no-bos") && tok.addBosByDefault(), special);
    if (a.has("json")) {
        json j;
        j["ids"] = ids;
        json pieces = json::array();
        for (int32_t id : ids) pieces.push_back(tok.piece(id));
        j["pieces"] = pieces;
        j["count"] = ids.size();
        std::cout << j.dump(2) << "\n";
    } else {
        for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok.piece(id).c_str());
        std::printf("%zu tokens\n", ids.size());
    }
    return 0;
}

}  // namespace wb::cli
