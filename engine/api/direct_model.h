// A model run directly, one sequence at a time, without the scheduler: what `wb generate` (one prompt, streamed;
// Llama-family models) and `wb bench` (llama-bench's prompt-processing and generation figures over a private KV
// cache; any family, GLM-4 / GLM-4.1V text included) measure. Everything else — chat, images, batching, the server — goes through Engine (api/engine.h).
// Not thread-safe: one thread drives a DirectModel.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "api/model_types.h"
#include "api/sampling.h"
#include "core/result.h"

namespace wb {

class Tokenizer;  // api/tokenizer.h

struct GenerateOptions {
    SamplingParams sampling;
    int64_t maxNewTokens = 128;
    std::vector<std::string> stopStrings;
    bool ignoreEos = false;  // benchmarks generate a fixed count
    int64_t prefillChunk = 512;  // prompt tokens per forward call
    const std::atomic<bool>* cancel = nullptr;
};

enum class FinishReason { Stop, Length, Cancelled };

struct GenerateResult {
    std::vector<int32_t> promptTokens;
    std::vector<int32_t> tokens;  // generated ids
    std::string text;
    FinishReason finish = FinishReason::Length;
    double prefillMs = 0;   // prompt processing (time to first token minus sampling)
    double firstTokenMs = 0;
    double decodeMs = 0;    // after the first token
    double totalMs = 0;
};

const char* finishReasonName(FinishReason r);

class DirectModel {
public:
    /// A .gguf file or a model folder. Llama-family models run on models/decoder's LlamaModel; other families (GLM-4,
    /// GLM-4.1V) through their engine model, forward() only and on one CPU device (canGenerate() is false).
    static Result<std::unique_ptr<DirectModel>> load(const std::string& path, const LoadOptions& options = {});
    ~DirectModel();
    DirectModel(const DirectModel&) = delete;
    DirectModel& operator=(const DirectModel&) = delete;

    const ModelConfig& config() const;
    const Tokenizer& tokenizer() const;
    Precision precision() const;
    const std::string& path() const;
    int numThreads() const;
    int64_t weightBytes() const;
    /// generate() is there for Llama-family models only.
    bool canGenerate() const;

    /// Generates from `prompt`, calling onText with each UTF-8-complete piece of text.
    Result<GenerateResult> generate(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                    const std::function<void(const std::string&)>& onText = {});
    /// Replaces the private KV cache that forward() writes with one of capacityTokens positions.
    /// kvType: F32, or F16 (half the memory; CPU only). Auto: F16 from kLongContextTokens of capacity on.
    void resetCache(int64_t capacityTokens, KvCacheType kvType = KvCacheType::F32);
    /// What the current cache stores (F32 or F16; F32 before resetCache).
    KvCacheType cacheType() const;
    /// Runs tokens at positions [startPos, startPos + size) through the cache; `logits` gets the last token's
    /// vocabulary row. Errors when no cache is set or it is too small.
    Result<void> forward(std::span<const int32_t> tokens, int64_t startPos, float* logits);

private:
    DirectModel();
    struct Impl;
    std::unique_ptr<Impl> m;
};

}  // namespace wb
