#include "models/decoder/generator.h"

#include <algorithm>
#include <chrono>

#include "runtime/detokenizer.h"

namespace wb {

const char* finishReasonName(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "?";
}

std::vector<int32_t> stopTokenIds(const Tokenizer& tok, const std::vector<int32_t>& eosIds) {
    std::vector<int32_t> ids = tok.stopTokens();
    if (tok.eos() >= 0) ids.push_back(tok.eos());
    ids.insert(ids.end(), eosIds.begin(), eosIds.end());
    return ids;
}

std::vector<int32_t> stopTokenIds(const LlamaModel& model) {
    return stopTokenIds(model.tokenizer(), model.config().generation.eosTokenIds);
}

Result<GenerateResult> generate(LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                const std::function<void(const std::string&)>& onText) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto ms = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
    };
    const ModelConfig& c = model.config();
    const Tokenizer& tok = model.tokenizer();
    GenerateResult res;
    res.promptTokens = prompt;
    if (prompt.empty()) return makeError("generate: the prompt has no tokens");
    const int64_t capacity = std::min<int64_t>(c.maxContext, int64_t(prompt.size()) + options.maxNewTokens);
    if (int64_t(prompt.size()) >= c.maxContext)
        return makeError("generate: the prompt has " + std::to_string(prompt.size()) +
                         " tokens, the model's context is " + std::to_string(c.maxContext));
    KvCache cache(c, capacity);
    std::vector<float> logits(size_t(c.vocabSize));
    Sampler sampler(options.sampling);
    std::vector<int32_t> history = prompt;
    const std::vector<int32_t> stopIds = stopTokenIds(model);

    const int64_t chunk = std::max<int64_t>(1, options.prefillChunk);
    for (int64_t p = 0; p < int64_t(prompt.size()); p += chunk) {
        const int64_t n = std::min<int64_t>(chunk, int64_t(prompt.size()) - p);
        WB_TRY(model.forward(std::span<const int32_t>(prompt.data() + p, size_t(n)), p, cache, logits.data()));
        if (options.cancel && options.cancel->load()) {
            res.finish = FinishReason::Cancelled;
            res.totalMs = ms(t0, Clock::now());
            return res;
        }
    }
    res.prefillMs = ms(t0, Clock::now());

    Utf8Stream utf8;
    StopStringMatcher stops(options.stopStrings);
    auto emit = [&](const std::string& s) {
        if (s.empty()) return;
        res.text += s;
        if (onText) onText(s);
    };
    int64_t pos = int64_t(prompt.size());
    Clock::time_point firstAt = t0;
    res.finish = FinishReason::Length;
    for (int64_t i = 0; i < options.maxNewTokens; ++i) {
        const int32_t next = sampler.sample(logits.data(), int32_t(c.vocabSize), history, prompt.size());
        if (i == 0) {
            firstAt = Clock::now();
            res.firstTokenMs = ms(t0, firstAt);
        }
        if (!options.ignoreEos && std::find(stopIds.begin(), stopIds.end(), next) != stopIds.end()) {
            res.finish = FinishReason::Stop;
            break;
        }
        res.tokens.push_back(next);
        history.push_back(next);
        emit(stops.push(utf8.push(tok.tokenBytes(next))));
        if (stops.stopped()) {
            res.finish = FinishReason::Stop;
            break;
        }
        if (options.cancel && options.cancel->load()) {
            res.finish = FinishReason::Cancelled;
            break;
        }
        if (i + 1 == options.maxNewTokens || pos >= capacity) break;
        WB_TRY(model.forward(std::span<const int32_t>(&next, 1), pos, cache, logits.data()));
        ++pos;
    }
    if (!stops.stopped()) emit(stops.push(utf8.flush()) + stops.flush());
    const auto tEnd = Clock::now();
    res.decodeMs = res.tokens.empty() ? 0 : ms(firstAt, tEnd);
    res.totalMs = ms(t0, tEnd);
    return res;
}

}  // namespace wb
