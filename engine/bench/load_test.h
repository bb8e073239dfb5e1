// Load tests: closed loop (keep `concurrency` requests in flight until `numRequests` have finished) or open loop
// (Poisson arrivals at `requestRate`, at most `concurrency` in flight), reporting the metrics of the article's
// comparison (TTFT, tokens/s, P50/P90/P99 latency) plus TPOT and inter-token latency.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "api/engine.h"

namespace wb {

/// Something that serves generation requests: this engine in process, or an OpenAI-compatible HTTP endpoint
/// (serve/http_target.h).
class BenchTarget {
public:
    virtual ~BenchTarget() = default;
    virtual std::string name() const = 0;
    /// Starts one request of exactly `maxTokens` output tokens (EOS ignored where the target allows it);
    /// `onEvent` is called from any thread and ends with one Finished or Error event.
    virtual void start(const std::vector<int32_t>& promptTokens, int64_t maxTokens,
                       std::function<void(const Event&)> onEvent) = 0;
};

class EngineTarget : public BenchTarget {
public:
    explicit EngineTarget(Engine& engine) : m_engine(engine) {}
    std::string name() const override { return "workbench (in process)"; }
    void start(const std::vector<int32_t>& promptTokens, int64_t maxTokens,
               std::function<void(const Event&)> onEvent) override;

private:
    Engine& m_engine;
};

struct LoadTestOptions {
    int concurrency = 1;
    int numRequests = 0;  // 0: max(4 * concurrency, 8)
    int64_t inputTokens = 128;
    int64_t outputTokens = 64;
    int vocabSize = 32000;
    uint64_t seed = 1;
    int warmupRequests = 1;
    double requestRate = 0;  // requests/s with exponential gaps (Poisson); 0: closed loop
    /// Set from any thread to stop starting requests; those in flight are still awaited (a target cannot take a
    /// request back), and the result counts only what finished.
    const std::atomic<bool>* cancel = nullptr;
    /// Called (on the thread that finished a request) after each measured request: finished, total.
    std::function<void(int, int)> onProgress;
};

struct Summary {
    double mean = 0, stddev = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0;
};
Summary summarize(std::vector<double> values);

struct LoadTestResult {
    int concurrency = 0;
    int requests = 0;
    int errors = 0;
    std::string firstError;
    double wallSeconds = 0;
    Summary ttftMs;
    Summary e2eMs;
    Summary itlMs;
    Summary tpotMs;  // per request: (e2e - TTFT) / (output tokens - 1)
    double outputTokensPerSecond = 0;  // all requests' output tokens / wall time
    double requestsPerSecond = 0;
    int64_t outputTokens = 0;
    bool cancelled = false;
    /// Per request, in finishing order: what a latency CDF is drawn from (summaries alone cannot give one).
    std::vector<double> ttftSamplesMs;
    std::vector<double> e2eSamplesMs;
};

LoadTestResult runLoadTest(BenchTarget& target, const LoadTestOptions& options);

}  // namespace wb
