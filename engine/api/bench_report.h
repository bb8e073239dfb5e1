// Benchmark runs as JSON records, collected into one comparison file, and printed as the article's table
// (framework | TTFT (ms) | tokens/s | max stable concurrency | memory (GB) | P99 (ms)) or as CSV with every level.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/load_test.h"
#include "core/result.h"

namespace wb {

nlohmann::json summaryJson(const Summary& s);
/// One concurrency level of a run.
nlohmann::json loadTestJson(const LoadTestResult& r, bool withinLimit);
/// A run's "images" list (file, bytes, width, height per image) for the comparison file.
nlohmann::json imageWorkloadJson(const ImageWorkload& w);
/// A run's "memory" for this engine: what it holds, by its own accounts — weights + KV cache (the allocated pool),
/// as peak_bytes — with the process's peak-RSS growth beside it (rss_growth_bytes; < 0: not measured). Activation
/// scratch is not counted, and the source says so. Two precisions of one model differ by their weights here, where
/// RSS growth (mapped files, allocator caches) hid the difference.
nlohmann::json engineMemoryJson(int64_t weightsBytes, int64_t kvCacheBytes, int64_t rssGrowthBytes);

/// Prompt token counts of two runs of one workload (same input/output lengths, seed, images; per concurrency level)
/// further apart than this per request mean they did not process the same prompt.
inline constexpr double kPromptTokenTolerance = 2.0;
/// What a run's prompts were and how their tokens are counted (its "prompts"): token ids, or text that round-trips
/// through the model's tokenizer in a chat (roundTrip), or text that was not drawn to (filler words).
std::string promptsNote(bool roundTrip, const std::string& requestFormat);
/// One line per workload level where the runs' own prompt counts ("prompt_tokens_per_request") differ by more than
/// kPromptTokenTolerance, naming each run's count and how a chat's template tokens are counted, and per run that
/// reported none beside others that did. Runs recorded without counts are left out.
std::vector<std::string> promptTokenWarnings(const nlohmann::json& comparison);

/// Appends `run` to the comparison file (created when missing: {"format":"wb-bench-comparison","version":1,
/// "runs":[...]}); a file that is not such a comparison is left alone and reported. The file's
/// "prompt_token_warnings" is recomputed (promptTokenWarnings).
Result<void> appendRun(const std::string& path, const nlohmann::json& run);
Result<nlohmann::json> loadComparison(const std::string& path);

/// One row per run. Rules (also printed under the table): TTFT and P99 (end-to-end) at the run's lowest
/// concurrency, tokens/s the best output throughput over its levels, max stable concurrency the highest level with
/// no errors (and P99 under the limit when one was set) when a higher level failed, "≥N" when every level held
/// (the limit was not found), memory what the target holds by its own report ("n/a" where nothing reported it).
std::string comparisonMarkdown(const nlohmann::json& comparison);
/// One row per run and concurrency level, every metric.
std::string comparisonCsv(const nlohmann::json& comparison);

}  // namespace wb
