#include "serve/metrics.h"

#include <cstdio>
#include <cstring>

namespace wb {

void Histogram::observe(double v) {
    size_t i = 0;
    while (i < m_bounds.size() && v > m_bounds[i]) ++i;
    ++m_counts[i];
    m_sum += v;
    ++m_count;
}

static std::string num(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
    uint64_t cum = 0;
    for (size_t i = 0; i < m_bounds.size(); ++i) {
        cum += m_counts[i];
        out += name + "_bucket{le=\"" + num(m_bounds[i]) + "\"} " + std::to_string(cum) + "\n";
    }
    cum += m_counts.back();
    out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
    out += name + "_sum " + num(m_sum) + "\n" + name + "_count " + std::to_string(m_count) + "\n";
}

// Bucket bounds in seconds, close to vLLM's so dashboards read alike.
ServerMetrics::ServerMetrics()
    : m_ttft({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0}),
      m_itl({0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
             0.75, 1.0, 2.5}),
      m_e2e({0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0}),
      m_queue({0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0}) {}

void ServerMetrics::countRequest(const std::string& endpoint, int status) {
    std::lock_guard lock(m_mutex);
    ++m_requests[{endpoint, status}];
}

void ServerMetrics::countRefused(const std::string& reason) {
    std::lock_guard lock(m_mutex);
    ++m_refused[reason];
}

void ServerMetrics::setLimits(std::map<std::string, double> limits) {
    std::lock_guard lock(m_mutex);
    m_limits = std::move(limits);
}

void ServerMetrics::setLiveGauges(std::function<std::map<std::string, double>()> read) {
    std::lock_guard lock(m_mutex);
    m_liveGauges = std::move(read);
}

void ServerMetrics::recordFinished(const Event& e) {
    std::lock_guard lock(m_mutex);
    m_promptTokens += uint64_t(e.usage.promptTokens);
    m_generationTokens += uint64_t(e.usage.completionTokens);
    ++m_finishReasons[e.type == EventType::Error ? "error" : stopReasonName(e.reason)];
    if (e.type == EventType::Error) return;
    if (e.timings.ttftMs >= 0 && e.usage.completionTokens > 0) m_ttft.observe(e.timings.ttftMs / 1000.0);
    for (double ms : e.timings.interTokenMs) m_itl.observe(ms / 1000.0);
    m_e2e.observe(e.timings.e2eMs / 1000.0);
    m_queue.observe(e.timings.queueMs / 1000.0);
}

std::string ServerMetrics::render(const StatsSnapshot& s, const std::string& modelName) const {
    std::string o;
    const std::string lbl = "{model_name=\"" + modelName + "\"}";
    auto gauge = [&](const std::string& name, const std::string& help, double v) {
        o += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + lbl + " " + num(v) + "\n";
    };
    std::lock_guard lock(m_mutex);
    o += "# HELP wb_http_requests_total HTTP requests by endpoint and status.\n# TYPE wb_http_requests_total counter\n";
    for (const auto& [k, v] : m_requests)
        o += "wb_http_requests_total{endpoint=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
             std::to_string(v) + "\n";
    o += "# HELP wb_http_refused_total Requests refused by the server's limits, by reason.\n"
         "# TYPE wb_http_refused_total counter\n";
    for (const auto& [k, v] : m_refused) o += "wb_http_refused_total{reason=\"" + k + "\"} " + std::to_string(v) + "\n";
    for (const auto& [k, v] : m_limits)
        o += "# HELP wb_limit_" + k + " A configured server limit (wb serve --help).\n# TYPE wb_limit_" + k +
             " gauge\nwb_limit_" + k + " " + num(v) + "\n";
    if (m_liveGauges)
        for (const auto& [k, v] : m_liveGauges()) o += "# TYPE wb_" + k + " gauge\nwb_" + k + " " + num(v) + "\n";
    o += "# HELP wb_request_success_total Finished generation requests by finish reason.\n"
         "# TYPE wb_request_success_total counter\n";
    for (const auto& [k, v] : m_finishReasons)
        o += "wb_request_success_total{finished_reason=\"" + k + "\"} " + std::to_string(v) + "\n";
    o += "# HELP wb_prompt_tokens_total Prompt tokens processed.\n# TYPE wb_prompt_tokens_total counter\n";
    o += "wb_prompt_tokens_total" + lbl + " " + std::to_string(m_promptTokens) + "\n";
    o += "# HELP wb_generation_tokens_total Tokens generated.\n# TYPE wb_generation_tokens_total counter\n";
    o += "wb_generation_tokens_total" + lbl + " " + std::to_string(m_generationTokens) + "\n";
    m_ttft.write(o, "wb_time_to_first_token_seconds", "Time from arrival to the first generated token.");
    m_itl.write(o, "wb_inter_token_latency_seconds", "Time between consecutive generated tokens.");
    m_e2e.write(o, "wb_e2e_request_latency_seconds", "Time from arrival to the last token.");
    m_queue.write(o, "wb_request_queue_time_seconds", "Time spent waiting before the first schedule.");
    gauge("wb_engine_faulted", "1 while the engine is Faulted (a device failed for good; reload the model).",
          s.state == EngineState::Faulted ? 1.0 : 0.0);
    gauge("wb_num_requests_running", "Requests in the running batch.", s.numRunning);
    gauge("wb_num_requests_waiting", "Requests waiting to be scheduled.", s.numWaiting);
    gauge("wb_kv_cache_blocks_used", "KV cache blocks in use.", double(s.kvBlocksUsed));
    gauge("wb_kv_cache_blocks_total", "KV cache blocks in the pool.", double(s.kvBlocksTotal));
    gauge("wb_kv_cache_block_size_tokens", "Tokens per KV cache block.", double(s.kvBlockSize));
    gauge("wb_kv_cache_usage_perc", "Fraction of KV cache blocks in use (0-1).",
          s.kvBlocksTotal > 0 ? double(s.kvBlocksUsed) / double(s.kvBlocksTotal) : 0.0);
    gauge("wb_kv_cache_bytes", "Bytes of the KV cache pool.", double(s.kvCacheBytes));
    gauge("wb_model_weights_bytes", "Bytes of model weights as loaded.", double(s.weightBytes));
    gauge("wb_num_preemptions_total", "Sequences preempted for lack of KV blocks.", double(s.totalPreemptions));
    auto counter = [&](const std::string& name, const std::string& help, uint64_t v) {
        o += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" + name + lbl + " " + std::to_string(v) + "\n";
    };
    counter("wb_images_decoded_total", "PNG/JPEG images decoded (a request's count and its preparation share one).",
            s.totalImagesDecoded);
    counter("wb_images_encoded_total", "Vision-tower runs (recently seen images reuse their features).",
            s.totalImagesEncoded);
    o += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
         "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes " +
         std::to_string(processRssBytes()) + "\n";
    o += "# HELP wb_peak_memory_bytes Peak memory of the serving process (the CPU engine's device memory: "
         "resident set high-water mark).\n# TYPE wb_peak_memory_bytes gauge\nwb_peak_memory_bytes " +
         std::to_string(processPeakRssBytes()) + "\n";
    return o;
}

static int64_t procStatusKb(const char* key) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int64_t v = -1;
    const size_t n = std::strlen(key);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
            v = std::atoll(line + n + 1) * 1024;
            break;
        }
    }
    std::fclose(f);
    return v;
}

int64_t processPeakRssBytes() { return procStatusKb("VmHWM"); }
int64_t processRssBytes() { return procStatusKb("VmRSS"); }

}  // namespace wb
