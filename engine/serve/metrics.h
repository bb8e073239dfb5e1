// Prometheus text exposition for the server: counters and histograms it records, gauges read from the engine.
#pragma once

#include <cstdint>
#include <functional>
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
    /// A request the server refused before or instead of running it (a limit, a timeout, bad framing).
    void countRefused(const std::string& reason);
    /// The configured limits, shown as gauges (name without the wb_limit_ prefix → value).
    void setLimits(std::map<std::string, double> limits);
    /// Connections open and image pixels being decoded now, read at render time.
    void setLiveGauges(std::function<std::map<std::string, double>()> read);
    /// A finished engine request: tokens and the engine's own timings.
    void recordFinished(const Event& finished);
    /// The whole exposition; `stats` supplies the KV and scheduler gauges.
    std::string render(const StatsSnapshot& stats, const std::string& modelName) const;

private:
    mutable std::mutex m_mutex;
    std::map<std::pair<std::string, int>, uint64_t> m_requests;
    std::map<std::string, uint64_t> m_finishReasons;
    std::map<std::string, uint64_t> m_refused;
    std::map<std::string, double> m_limits;
    std::function<std::map<std::string, double>()> m_liveGauges;
    uint64_t m_promptTokens = 0;
    uint64_t m_generationTokens = 0;
    Histogram m_ttft, m_itl, m_e2e, m_queue;
};

/// Peak and current resident set size of this process from /proc/self/status (VmHWM, VmRSS); -1 if unknown.

}  // namespace wb
