#include "api/bench_report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

using nlohmann::json;

namespace wb {

namespace {

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

const json* lowestLevel(const json& run) {
    const json* best = nullptr;
    if (!run.contains("results") || !run["results"].is_array()) return nullptr;
    for (const auto& r : run["results"])  // by reference: the pointer returned must outlive the loop
        if (r.value("requests", 0) > r.value("errors", 0) &&
            (!best || r.value("concurrency", 0) < (*best).value("concurrency", 0)))
            best = &r;
    return best;
}

std::string label(const json& run) {
    std::string l = run.value("label", "");
    if (!l.empty()) return l;
    l = run.value("engine", run.value("target", std::string("?")));
    if (run.contains("precision") && run["precision"].is_string()) l += " (" + run["precision"].get<std::string>() + ")";
    return l;
}

std::string csvField(std::string s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

// "4" when a tried level above 4 failed (errors or P99 over the limit); "≥8" when every level held: the limit
// lies above the highest level tried, untested; "none" when no level held.
std::string maxStable(const json& run) {
    const int best = run.value("max_stable_concurrency", 0);
    if (best <= 0) return "none";
    bool limitFound = false;
    for (const auto& r : run.value("results", json::array()))
        if (r.value("concurrency", 0) > best) limitFound = true;
    return limitFound ? std::to_string(best) : "≥" + std::to_string(best);
}

std::string peakGb(const json& run) {
    if (run.contains("memory") && run["memory"].contains("peak_bytes") && run["memory"]["peak_bytes"].is_number())
        return fmt("%.2f", run["memory"]["peak_bytes"].get<double>() / 1e9);
    return "n/a";
}

}  // namespace

json summaryJson(const Summary& s) {
    return json{{"mean", s.mean}, {"stddev", s.stddev}, {"p50", s.p50}, {"p90", s.p90},
                {"p99", s.p99},   {"min", s.min},       {"max", s.max}};
}

json loadTestJson(const LoadTestResult& r, bool withinLimit) {
    // Raw per-request latencies (rounded to microseconds) so a latency CDF can be drawn from a saved file.
    auto samples = [](const std::vector<double>& v) {
        json a = json::array();
        for (double x : v) a.push_back(std::round(x * 1000.0) / 1000.0);
        return a;
    };
    json j{{"concurrency", r.concurrency},
                {"requests", r.requests},
                {"errors", r.errors},
                {"first_error", r.firstError},
                {"wall_s", r.wallSeconds},
                {"ttft_ms", summaryJson(r.ttftMs)},
                {"tpot_ms", summaryJson(r.tpotMs)},
                {"itl_ms", summaryJson(r.itlMs)},
                {"e2e_ms", summaryJson(r.e2eMs)},
                {"output_tokens", r.outputTokens},
                // The target's own counts (usage.prompt_tokens), over the requests that reported one; null: none did.
                {"prompt_tokens_per_request",
                 r.promptTokensReported > 0 ? json(double(r.promptTokens) / double(r.promptTokensReported))
                                            : json(nullptr)},
                {"prompt_tokens_min", r.promptTokensReported > 0 ? json(r.promptTokensMin) : json(nullptr)},
                {"prompt_tokens_max", r.promptTokensReported > 0 ? json(r.promptTokensMax) : json(nullptr)},
                {"prompt_tokens_reported", r.promptTokensReported},
                {"round_trip_prompts", r.textPrompts},
                {"output_tokens_per_s", r.outputTokensPerSecond},
                {"requests_per_s", r.requestsPerSecond},
                {"within_limit", withinLimit},
                {"ttft_samples_ms", samples(r.ttftSamplesMs)},
                {"e2e_samples_ms", samples(r.e2eSamplesMs)}};
    if (r.cancelled) j["cancelled"] = true;
    return j;
}

json imageWorkloadJson(const ImageWorkload& w) {
    json list = json::array();
    for (const ImageWorkload::Info& in : w.info())
        list.push_back({{"file", in.name}, {"bytes", in.bytes}, {"width", in.width}, {"height", in.height}});
    return list;
}

Result<json> loadComparison(const std::string& path) {
    std::ifstream in(path);
    if (!in) return makeError("cannot read " + path);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return makeError(path + " is not valid JSON");
    if (!j.is_object() || j.value("format", "") != "wb-bench-comparison" || !j.contains("runs") ||
        !j["runs"].is_array())
        return makeError(path + " is not a wb bench comparison file");
    return j;
}

std::string promptsNote(bool roundTrip, const std::string& requestFormat) {
    if (requestFormat.find("chat") == std::string::npos)
        return "token ids: each request's prompt is --input random ids of the vocabulary, sent as ids (no BOS, no "
               "template); prompt tokens: the target's own count of them";
    if (roundTrip)
        return "text: each request's prompt is --input tokens of the model's vocabulary whose text (printable ASCII) "
               "round-trips through its tokenizer, sent as one user chat message after the images; prompt tokens: "
               "the target's own count of the rendered chat, its chat template's tokens (role markers, generation "
               "prompt) and the images' tokens included";
    return "chat text not drawn to round-trip (filler words, or no usable tokenizer): targets may count it "
           "differently; prompt tokens: the target's own count of the rendered chat";
}

std::vector<std::string> promptTokenWarnings(const json& doc) {
    struct Count {
        std::string label;
        std::optional<double> perRequest;  // nullopt: the target reported none
    };
    // One workload, one level: the runs' counts side by side. Runs written before counts were recorded are left out.
    std::map<std::string, std::vector<Count>> groups;
    std::vector<std::string> order;
    for (const auto& run : doc.value("runs", json::array())) {
        if (!run.is_object()) continue;
        for (const auto& r : run.value("results", json::array())) {
            if (!r.is_object() || !r.contains("prompt_tokens_per_request")) continue;
            if (r.value("requests", 0) <= r.value("errors", 0)) continue;
            const std::string key = "concurrency " + std::to_string(r.value("concurrency", 0)) + ", input " +
                                    run.value("input_tokens", json(nullptr)).dump() + ", output " +
                                    run.value("output_tokens", json(nullptr)).dump() + ", seed " +
                                    run.value("seed", json(nullptr)).dump() +
                                    (run.contains("images") ? ", images " + run["images"].dump() : std::string());
            if (!groups.count(key)) order.push_back(key);
            const json& n = r["prompt_tokens_per_request"];
            groups[key].push_back({label(run), n.is_number() ? std::optional<double>(n.get<double>()) : std::nullopt});
        }
    }
    std::vector<std::string> out;
    for (const std::string& key : order) {
        const auto& counts = groups[key];
        if (counts.size() < 2) continue;
        double lo = 0, hi = 0;
        bool any = false;
        std::string list, unreported;
        for (const Count& c : counts) {
            if (!c.perRequest) {
                unreported += (unreported.empty() ? "" : ", ") + c.label;
                continue;
            }
            lo = any ? std::min(lo, *c.perRequest) : *c.perRequest;
            hi = any ? std::max(hi, *c.perRequest) : *c.perRequest;
            any = true;
            list += (list.empty() ? "" : ", ") + c.label + " " + fmt("%.1f", *c.perRequest);
        }
        if (any && hi - lo > kPromptTokenTolerance) {
            const std::string images = key.find(", images ") != std::string::npos ? " (images included)" : "";
            out.push_back("prompt tokens per request differ at " + key.substr(0, key.find(", images ")) + ": " +
                          list + images + ". More than " + fmt("%.0f", kPromptTokenTolerance) +
                          " apart: these targets did not process the same prompt tokens. Each is the target's own "
                          "usage.prompt_tokens; a chat request's count includes its chat template's tokens (and the "
                          "images'), so targets with different templates, or a chat target beside a token-id one, "
                          "differ by those (see each run's \"prompts\").");
        }
        if (!unreported.empty() && any)
            out.push_back("prompt tokens not reported by " + unreported + " at " +
                          key.substr(0, key.find(", images ")) + ": its prompts cannot be checked against the others'");
    }
    return out;
}

Result<void> appendRun(const std::string& path, const json& run) {
    json doc{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", json::array()}};
    if (std::ifstream(path).good()) {
        auto existing = loadComparison(path);
        if (!existing) return existing.error();
        doc = std::move(*existing);
    }
    doc["runs"].push_back(run);
    // Recomputed with every run: the record says which targets' prompt counts disagree.
    const std::vector<std::string> warnings = promptTokenWarnings(doc);
    if (warnings.empty())
        doc.erase("prompt_token_warnings");
    else
        doc["prompt_token_warnings"] = warnings;
    // Write next to it and rename, so an interrupted run never leaves half a comparison file.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out) return makeError("cannot write " + tmp);
        out << doc.dump(2) << "\n";
        if (!out) return makeError("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return makeError("cannot replace " + path);
    return {};
}


json engineMemoryJson(int64_t weightsBytes, int64_t kvCacheBytes, int64_t rssGrowthBytes) {
    const double gb = 1e9;
    char src[256];
    std::snprintf(src, sizeof src,
                  "this engine's allocations: weights %.3f GB + KV cache %.3f GB (activation scratch not counted)%s",
                  double(weightsBytes) / gb, double(kvCacheBytes) / gb,
                  rssGrowthBytes >= 0 ? "; process peak RSS grew " : "");
    std::string source = src;
    if (rssGrowthBytes >= 0) source += fmt("%.3f GB over the run", double(rssGrowthBytes) / gb);
    return {{"weights_bytes", weightsBytes},
            {"kv_cache_bytes", kvCacheBytes},
            {"peak_bytes", weightsBytes + kvCacheBytes},
            {"rss_growth_bytes", rssGrowthBytes >= 0 ? json(rssGrowthBytes) : json(nullptr)},
            {"source", source}};
}

std::string comparisonMarkdown(const json& doc) {
    std::ostringstream o;
    o << "| framework | TTFT (ms) | tokens/s | max stable concurrency | memory (GB) | P99 (ms) |\n"
         "| --- | --- | --- | --- | --- | --- |\n";
    std::vector<std::string> notes;
    for (const auto& run : doc.value("runs", json::array())) {
        const std::string name = label(run);
        if (run.contains("error") && run["error"].is_string() && !run["error"].get<std::string>().empty()) {
            o << "| " << name << " | unreachable | unreachable | unreachable | " << peakGb(run) << " | unreachable |\n";
            notes.push_back(name + ": " + run["error"].get<std::string>());
            continue;
        }
        const json* low = lowestLevel(run);
        if (!low) {
            o << "| " << name << " | error | error | 0 | " << peakGb(run) << " | error |\n";
            for (const auto& r : run.value("results", json::array()))
                if (!r.value("first_error", "").empty()) {
                    notes.push_back(name + ": " + r["first_error"].get<std::string>());
                    break;
                }
            continue;
        }
        double best = 0;
        for (const auto& r : run["results"])
            if (r.value("requests", 0) > r.value("errors", 0)) best = std::max(best, r.value("output_tokens_per_s", 0.0));
        o << "| " << name << " | " << fmt("%.1f", (*low)["ttft_ms"].value("mean", 0.0)) << " ± "
          << fmt("%.1f", (*low)["ttft_ms"].value("stddev", 0.0)) << " | " << fmt("%.1f", best) << " | "
          << maxStable(run) << " | " << peakGb(run) << " | " << fmt("%.1f", (*low)["e2e_ms"].value("p99", 0.0))
          << " |\n";
        if (run.contains("memory") && run["memory"].value("source", "") != "")
            notes.push_back(name + " memory: " + run["memory"]["source"].get<std::string>());
        for (const auto& r : run["results"])
            if (r.value("errors", 0) > 0) {
                notes.push_back(name + " at concurrency " + std::to_string(r.value("concurrency", 0)) + ": " +
                                std::to_string(r.value("errors", 0)) + " errors (" + r.value("first_error", "") + ")");
            }
    }
    o << "\nTTFT (mean ± sd) and P99 (end-to-end) at each run's lowest concurrency; tokens/s: best output throughput "
         "over its concurrency levels; max stable concurrency: highest level with no errors (and P99 within the "
         "limit when one was set), \"≥N\" when every level tried held (the limit lies above, untested); memory: what "
         "each target holds by its own report (this engine: weights + KV cache; a server: what its /metrics or "
         "plugin reports), each row's source below; n/a: not reported, never estimated.\n";
    for (const std::string& w : promptTokenWarnings(doc)) notes.push_back("**Warning:** " + w);
    for (const auto& n : notes) o << "\n- " << n;
    if (!notes.empty()) o << "\n";
    return o.str();
}

std::string comparisonCsv(const json& doc) {
    std::ostringstream o;
    o << "framework,target,url,model,precision,device,input_tokens,output_tokens,request_rate,concurrency,requests,"
         "errors,ttft_mean_ms,ttft_sd_ms,ttft_p50_ms,ttft_p99_ms,tpot_mean_ms,itl_mean_ms,itl_p99_ms,e2e_p50_ms,"
         "e2e_p90_ms,e2e_p99_ms,output_tokens_per_s,requests_per_s,peak_memory_gb,weights_bytes,kv_cache_bytes,"
         "max_stable_concurrency,error\n";
    auto str = [](const json& j, const char* k) {
        if (!j.contains(k) || j[k].is_null()) return std::string();
        return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
    };
    for (const auto& run : doc.value("runs", json::array())) {
        const json mem = run.value("memory", json::object());
        const std::string head = csvField(label(run)) + "," + csvField(str(run, "target")) + "," +
                                 csvField(str(run, "url")) + "," + csvField(str(run, "model")) + "," +
                                 csvField(str(run, "precision")) + "," + csvField(str(run, "device")) + "," +
                                 str(run, "input_tokens") + "," + str(run, "output_tokens") + "," +
                                 str(run, "request_rate");
        std::string tail = ",";
        tail += peakGb(run) + "," + str(mem, "weights_bytes") + "," + str(mem, "kv_cache_bytes") + "," +
                str(run, "max_stable_concurrency");
        const auto results = run.value("results", json::array());
        if (results.empty()) {
            o << head << ",,,,,,,,,,,,,,,," << tail << "," << csvField(str(run, "error")) << "\n";
            continue;
        }
        for (const auto& r : results) {
            o << head << "," << r.value("concurrency", 0) << "," << r.value("requests", 0) << ","
              << r.value("errors", 0);
            const json t = r.value("ttft_ms", json::object()), tp = r.value("tpot_ms", json::object()),
                       it = r.value("itl_ms", json::object()), e = r.value("e2e_ms", json::object());
            for (double v : {t.value("mean", 0.0), t.value("stddev", 0.0), t.value("p50", 0.0), t.value("p99", 0.0),
                             tp.value("mean", 0.0), it.value("mean", 0.0), it.value("p99", 0.0), e.value("p50", 0.0),
                             e.value("p90", 0.0), e.value("p99", 0.0), r.value("output_tokens_per_s", 0.0),
                             r.value("requests_per_s", 0.0)})
                o << "," << fmt("%.3f", v);
            o << tail << "," << csvField(r.value("first_error", "")) << "\n";
        }
    }
    return o.str();
}

}  // namespace wb
