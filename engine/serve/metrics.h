// Prometheus text exposition for the server: counters and histograms it records, gauges read from the engine.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/devices.h"
#include "api/engine.h"

namespace wb {

class Histogram {
public:
    explicit Histogram(std::vector<double> bounds) : m_bounds(std::move(bounds)), m_counts(m_bounds.size() + 1) {}
    void observe(double v);
    void write(std::string& out, const std::string& name, const std::string& help) const;

private:
    std::vector<double> m_bounds;
    std::vector<uint64_t> m_counts;  // per bucket, not cumulative; the last is +Inf
    double m_sum = 0;
    uint64_t m_count = 0;
};

class ServerMetrics {
public:
    ServerMetrics();
    void countRequest(const std::string& endpoint, int status);
    /// A finished engine request: tokens and the engine's own timings.
    void recordFinished(const Event& finished);
    /// The whole exposition; `stats` supplies the KV and scheduler gauges.
    std::string render(const StatsSnapshot& stats, const std::string& modelName) const;

private:
    mutable std::mutex m_mutex;
    std::map<std::pair<std::string, int>, uint64_t> m_requests;
    std::map<std::string, uint64_t> m_finishReasons;
    uint64_t m_promptTokens = 0;
    uint64_t m_generationTokens = 0;
    Histogram m_ttft, m_itl, m_e2e, m_queue;
};

/// Peak and current resident set size of this process from /proc/self/status (VmHWM, VmRSS); -1 if unknown.

}  // namespace wb
