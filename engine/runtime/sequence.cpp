#include "runtime/sequence.h"

#include "runtime/prefix_cache.h"

namespace wb {

bool prepareSequence(Sequence& s, EngineModel& model, const KvBlockPool& pool, int64_t maxModelLen,
                     std::string& error) {
    const Request& r = s.request;
    if (s.prepared) {
        if (!s.prepError.empty()) {
            error = s.prepError;
            return false;
        }
    } else {
        auto prepared = model.prepare(r);
        if (!prepared) {
            error = prepared.error().message;
            return false;
        }
        s.prompt = std::move(*prepared);
    }
    s.tokens = s.prompt.ids;
    if (!s.prompt.stopString.empty()) s.request.stop.push_back(s.prompt.stopString);
    if (s.prompt.numImages() > 0) setImageKeyTokens(s);
    s.promptLen = int64_t(s.tokens.size());
    const ModelConfig& c = model.config();
    if (s.promptLen == 0) {
        error = "the prompt is empty";
        return false;
    }
    for (int32_t t : s.tokens)
        if (t < 0 || t >= c.vocabSize) {
            error = "prompt token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(c.vocabSize);
            return false;
        }
    if (r.maxTokens <= 0) {
        error = "max_tokens must be positive";
        return false;
    }
    if (s.promptLen + r.maxTokens > maxModelLen) {
        error = "the request needs " + std::to_string(s.promptLen) + " prompt + " + std::to_string(r.maxTokens) +
                " new tokens, more than the maximum model length of " + std::to_string(maxModelLen);
        return false;
    }
    const int64_t blocks = BlockTable::blocksFor(s.promptLen + r.maxTokens, pool.blockSize());
    if (blocks > pool.numBlocks()) {
        error = "the request needs " + std::to_string(blocks) + " KV cache blocks (" +
                std::to_string(s.promptLen + r.maxTokens) + " tokens) but the whole cache has " +
                std::to_string(pool.numBlocks()) + "; it can never fit";
        return false;
    }
    s.sampler = std::make_unique<Sampler>(r.sampling);
    s.stops = std::make_unique<StopStringMatcher>(r.stop);
    s.splitter = std::make_unique<ReasoningSplitter>(false);
    if (!r.ignoreEos) {
        s.stopIds = model.stopIds();
    }
    return true;
}

}  // namespace wb
