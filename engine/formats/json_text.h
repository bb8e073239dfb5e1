// Parsing the JSON files of a checkpoint (config.json, tokenizer.json, preprocessor_config.json...) with errors that
// say where the text goes wrong: "tokenizer.json: not valid JSON: syntax error at line 3, column 14 ...", not just
// "not valid JSON". Header-only: every module that reads JSON links nlohmann_json itself.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace wb {

/// The document in `text`, which must be a JSON object; errors name `source` and, for bad syntax, the line and
/// column as the parser reports them.
inline Result<nlohmann::json> parseJsonObject(const std::string& text, const std::string& source) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like -1e400
        std::string why = e.what();
        if (why.rfind("[json.exception.", 0) == 0 && why.find("] ") != std::string::npos)
            why = why.substr(why.find("] ") + 2);  // the library's tag says nothing to a user
        return makeError(source + ": not valid JSON: " + why);
    }
    if (!j.is_object())
        return makeError(source + ": not a JSON object (its top level is of type " + std::string(j.type_name()) + ")");
    return j;
}

}  // namespace wb
