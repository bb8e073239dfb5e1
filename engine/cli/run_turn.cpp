#include "cli/run_turn.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <utility>

namespace wb::cli {

TurnResult runTurn(wb::Engine& engine, wb::Request r, bool quiet) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    TurnResult out;
    engine.submit(std::move(r), [&](const wb::Event& e) {
        std::lock_guard lock(mu);
        if (e.type == wb::EventType::TextDelta) {
            out.text += e.text;
            if (!quiet) {
                std::fputs(e.text.c_str(), stdout);
                std::fflush(stdout);
            }
        } else if (e.type == wb::EventType::ReasoningDelta) {
            out.reasoning += e.text;
            if (!quiet) std::fputs(e.text.c_str(), stderr);
        } else {
            out.last = e;
            done = true;
            cv.notify_all();
        }
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    return out;
}

}  // namespace wb::cli
