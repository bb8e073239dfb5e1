// Benchmark runs as JSON records, collected into one comparison file, and printed as the article's table
// (framework | TTFT (ms) | tokens/s | max concurrency | VRAM (GB) | P99 (ms)) or as CSV with every level.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/load_test.h"
#include "core/result.h"

namespace wb {

nlohmann::json summaryJson(const Summary& s);
/// One concurrency level of a run.
nlohmann::json loadTestJson(const LoadTestResult& r, bool withinLimit);
/// A run's "images" list (file, bytes, width, height per image) for the comparison file.
nlohmann::json imageWorkloadJson(const ImageWorkload& w);

/// Appends `run` to the comparison file (created when missing: {"format":"wb-bench-comparison","version":1,
/// "runs":[...]}); a file that is not such a comparison is left alone and reported.
Result<void> appendRun(const std::string& path, const nlohmann::json& run);
Result<nlohmann::json> loadComparison(const std::string& path);

/// One row per run. Rules (also printed under the table): TTFT and P99 (end-to-end) at the run's lowest
/// concurrency, tokens/s the best output throughput over its levels, max concurrency the highest level with no
/// errors (and P99 under the limit when one was set), VRAM the measured peak ("n/a" where nothing reported it).
std::string comparisonMarkdown(const nlohmann::json& comparison);
/// One row per run and concurrency level, every metric.
std::string comparisonCsv(const nlohmann::json& comparison);

}  // namespace wb
