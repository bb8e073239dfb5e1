// One request through the engine, waited for: what chat and ask share.
#pragma once
#include <string>

#include "api/engine.h"

namespace wb::cli {

struct TurnResult {
    std::string text, reasoning;
    wb::Event last;
};

// Submits one request and waits for it; streams the answer to stdout and the reasoning to stderr unless quiet.
TurnResult runTurn(wb::Engine& engine, wb::Request r, bool quiet);

}  // namespace wb::cli
