// One request as the scheduler carries it: the request and its sink, its prompt and history, its share of the KV
// cache and its streaming state, and the function that turns a submitted request into a schedulable sequence.
// Internal to the scheduler (compiled into wb_api, see scheduler.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/engine.h"
#include "runtime/engine_model.h"
#include "runtime/detokenizer.h"
#include "runtime/kv_block_pool.h"
#include "runtime/reasoning_splitter.h"
#include "runtime/sampler.h"

namespace wb {

using Clock = std::chrono::steady_clock;
inline double msBetween(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Sequence {
    RequestId id = 0;
    Request request;
    EventSink sink;
    std::vector<int32_t> tokens;  // prompt followed by what was generated
    PreparedPrompt prompt;        // ids, and for vision models positions and image features
    bool prepared = false;        // prompt filled by the preparation thread (prepError set if that failed)
    std::string prepError;
    std::vector<int32_t> keyTokens;  // prompt ids for prefix-cache hashing, image tokens keyed by image content
    int64_t promptLen = 0;
    int64_t numComputed = 0;  // tokens whose keys/values are in the cache
    std::vector<uint64_t> blockHashes;  // history hash of each full computed block, in table order
    int64_t cachedTokens = -1;          // prompt tokens found in the prefix cache at first scheduling
    BlockTable table;
    std::unique_ptr<Sampler> sampler;
    Utf8Stream utf8;
    std::unique_ptr<StopStringMatcher> stops;
    std::unique_ptr<ReasoningSplitter> splitter;
    std::vector<int32_t> stopIds;
    Clock::time_point submitted, scheduledAt, lastTokenAt;
    bool scheduled = false;
    double ttftMs = -1;
    std::vector<double> interTokenMs;
    uint64_t arrival = 0;

    int64_t generated() const { return int64_t(tokens.size()) - promptLen; }
    int64_t pending() const { return int64_t(tokens.size()) - numComputed; }
};

/// Fills a submitted sequence from its request (the prompt, prepared here unless the preparation thread did it;
/// prefix-cache keys; sampler, stop strings and ids) and checks that it can ever run: false with `error` set when
/// it cannot. Runs on the loop thread.
bool prepareSequence(Sequence& s, EngineModel& model, const KvBlockPool& pool, int64_t maxModelLen,
                     std::string& error);

}  // namespace wb
