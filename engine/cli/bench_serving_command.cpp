// `wb bench` under serving load (continuous batching, in process or against a server URL), --list-targets and
// --report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "api/engine.h"
#include "api/load_test.h"
#include "api/bench_report.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/units.h"
#include "api/target_plugins.h"
#include "api/http_target.h"
#include "api/devices.h"
#include "api/tokenizer.h"

using nlohmann::json;

namespace wb::cli {

namespace {

std::vector<int> parseIntList(const std::string& s) {
    std::vector<int> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        out.push_back(std::atoi(s.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
    }
    return out;
}

wb::TargetPluginRegistry loadTargetPlugins(const Args& a) {
    wb::TargetPluginRegistry reg;
    std::vector<std::string> dirs;
    if (a.has("plugin-dir")) dirs.push_back(a.get("plugin-dir"));
    for (auto& d : wb::TargetPluginRegistry::defaultSearchPath()) dirs.push_back(d);
    reg.scan(dirs);
    return reg;
}

}  // namespace

int cmdBenchListTargets(const Args& a) {
    const wb::TargetPluginRegistry reg = loadTargetPlugins(a);
    if (a.has("json")) {
        json out{{"targets", json::array()}, {"problems", json::array()}};
        for (const auto& p : reg.plugins()) {
            json m = p->info().metadata;
            m["path"] = p->info().path;
            out["targets"].push_back(m);
        }
        for (const auto& pr : reg.problems()) out["problems"].push_back({{"path", pr.path}, {"reason", pr.reason}});
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    if (reg.plugins().empty()) std::printf("no target plugins found\n");
    for (const auto& p : reg.plugins()) {
        const wb::TargetPluginInfo& i = p->info();
        std::printf("%-10s %s %s (compat %s)  %s\n", i.id.c_str(), i.name.c_str(), i.version.c_str(),
                    i.compatVersion.c_str(), i.path.c_str());
        std::printf("           default URL: %s, endpoint: %s\n", i.defaultUrl.c_str(), i.endpoint.c_str());
        std::printf("           launch:  %s\n", i.launchTemplate.c_str());
        std::printf("           health:  %s\n", i.healthProbe.c_str());
        // Where the flavour reads memory and KV use: its series or fields, else why it is n/a.
        const json metrics = i.metadata.value("metrics", json::object());
        auto where = [&](const char* list, const char* from, const std::string& note) {
            std::string names;
            for (const auto& m : metrics.value(list, json::array())) names += (names.empty() ? "" : ", ") + m.value("name", "");
            if (names.empty()) names = metrics.value(from, "");
            if (names.empty()) return note;
            return metrics.value("path", std::string("/metrics")) + ": " + names;
        };
        std::printf("           memory:  %s\n", where("memory", "memoryFrom", i.memoryReport).c_str());
        std::printf("           KV use:  %s\n", where("kv", "kvFrom", i.kvReport).c_str());
    }
    for (const auto& pr : reg.problems())
        std::printf("skipped    %s: %s\n", pr.path.c_str(), pr.reason.c_str());
    return 0;
}

// The article's workload: fixed input/output lengths at several concurrencies (closed loop, or Poisson
// arrivals with --request-rate), against this engine in process or any OpenAI-compatible URL.
int cmdBenchServing(const Args& a) {
    int64_t input = 128, output = 64, requests = 0, maxSeqs = 64, warmup = 1, seed = 1, vocab = 0;
    double p99Limit = 0, rate = 0;
    if (!number(a, "input", input) || !number(a, "output", output) || !number(a, "requests", requests) ||
        !number(a, "p99-limit-ms", p99Limit) || !number(a, "max-num-seqs", maxSeqs) ||
        !number(a, "request-rate", rate) || !number(a, "warmup", warmup) || !number(a, "seed", seed) ||
        !number(a, "vocab-size", vocab))
        return 2;
    const std::string format = a.has("json") ? "json" : a.get("format", "table");
    if (format != "table" && format != "json" && format != "csv" && format != "md")
        return fail("--format is table, json, csv or md");
    // --preset article: the article's workload, 128 in / 64 out at concurrency 1, 4, 8 (explicit flags still win);
    // tools/article-table runs it over this engine, Transformers and llama.cpp into one comparison file.
    const std::string preset = a.get("preset");
    if (!preset.empty() && preset != "article")
        return fail("unknown --preset '" + preset + "' (article: 128 in / 64 out at concurrency 1, 4, 8)");
    const std::vector<int> levels = parseIntList(a.get("concurrency", preset == "article" ? "1,4,8" : "1"));
    for (int c : levels)
        if (c <= 0) return fail("--concurrency takes positive integers");

    json run{{"version", kVersion}, {"input_tokens", input}, {"output_tokens", output}, {"p99_limit_ms", p99Limit},
             {"request_rate", rate}, {"seed", seed}};
    if (!preset.empty()) run["preset"] = preset;
    // A multimodal workload: every request carries these images before its prompt (the phone agent's shape).
    std::unique_ptr<wb::ImageWorkload> images;
    if (!a.images.empty()) {
        auto w = wb::ImageWorkload::fromFiles(a.images, !a.has("same-image"));
        if (!w) return fail(w.error().message);
        images = std::move(*w);
        run["images"] = wb::imageWorkloadJson(*images);
        run["distinct_images"] = images->distinct();
        if (a.has("endpoint") && a.get("endpoint") != "chat")
            return fail("--image needs the chat endpoint (--endpoint chat, the default with images)");
    }
    std::unique_ptr<wb::Engine> engine;
    std::unique_ptr<wb::BenchTarget> target;
    std::unique_ptr<wb::Tokenizer> remoteTok;
    // A workload whose prompts go as text (chat, images) draws them so that they round-trip through the model's
    // tokenizer (wb::RoundTripPrompts): every target then counts the same prompt tokens.
    const wb::Tokenizer* textPrompts = nullptr;
    wb::PluginTarget* pluginTarget = nullptr;
    wb::TargetPluginRegistry plugins;
    const bool remote = a.has("url");
    if (a.has("target") && !remote) return fail("--target needs --url (the server's OpenAI base URL)");
    if (remote && a.has("target")) {
        plugins = loadTargetPlugins(a);
        auto plugin = plugins.find(a.get("target"));
        if (!plugin) {
            std::string known;
            for (const auto& p : plugins.plugins()) known += " " + p->info().id;
            return fail("no target plugin \"" + a.get("target") + "\" (found:" + (known.empty() ? " none" : known) +
                        "; see wb bench --list-targets)");
        }
        if (a.has("model")) {
            auto t = loadTokenizerOnly(a.get("model"));
            if (!t) return fail(t.error().message);
            remoteTok = std::move(*t);
            vocab = remoteTok->vocabSize();
        }
        wb::RemoteTargetConfig rc;
        rc.url = a.get("url");
        rc.model = a.get("model-name");
        rc.apiKey = a.get("api-key");
        rc.endpoint = images ? "chat" : a.get("endpoint");
        rc.ignoreEos = !a.has("no-ignore-eos");
        // A chat or image workload goes to a version-2 plugin as the chat the engine gets: one user message, the
        // images, then the prompt ids decoded by the model's own tokenizer (-m), not ids or filler words.
        const bool chatWorkload = rc.endpoint == "chat" || (rc.endpoint.empty() && plugin->info().endpoint == "chat");
        if (remoteTok && chatWorkload) {
            const wb::Tokenizer* tk = remoteTok.get();
            rc.detokenize = [tk](const std::vector<int32_t>& ids) { return tk->decode(ids); };
            textPrompts = tk;
        }
        run["request_format"] =
            !chatWorkload ? "token ids (/completions)"
            : rc.detokenize && plugin->apiVersion() >= 2
                ? "chat messages: the images, then the prompt decoded by the model's tokenizer (plugin startChat)"
                : (plugin->apiVersion() < 2 ? "chat with filler text (a version-1 plugin has no startChat)"
                                            : "chat with filler text (no -m: no tokenizer to decode the prompt)");
        if (chatWorkload && plugin->apiVersion() < 2) textPrompts = nullptr;  // ids or filler words, not that text
        run["target"] = "http";
        run["plugin"] = plugin->info().id;
        run["plugin_version"] = plugin->info().version;
        run["url"] = rc.url;
        run["engine"] = a.get("label", plugin->info().name);
        run["precision"] = a.get("precision", "");
        auto t = plugin->open(rc);
        if (!t) {
            run["label"] = a.get("label", plugin->info().name + " @ " + rc.url);
            run["model"] = rc.model;
            run["error"] = t.error().message;
            run["results"] = json::array();
            if (a.has("append-to")) {
                auto w = wb::appendRun(a.get("append-to"), run);
                if (!w) return fail(w.error().message);
            }
            return fail(t.error().message);
        }
        pluginTarget = t->get();
        run["model"] = pluginTarget->modelName();
        run["device"] = "remote";
        run["label"] = a.get("label", plugin->info().name + " (" + pluginTarget->modelName() + ")");
        std::string detail;
        run["health"] = {{"ok", pluginTarget->healthy(&detail)}, {"detail", detail}};
        target = std::move(*t);
        if (vocab <= 0) vocab = 32000;
    } else if (remote) {
        wb::HttpTargetOptions ho;
        ho.baseUrl = a.get("url");
        ho.modelName = a.get("model-name");
        ho.apiKey = a.get("api-key");
        ho.chat = images || a.get("endpoint", "completions") == "chat";
        ho.ignoreEos = !a.has("no-ignore-eos");
        // With a local copy of the model's tokenizer (-m), prompts are exact token ids; without one, a chat or
        // text prompt of about the right length.
        if (a.has("model")) {
            auto t = loadTokenizerOnly(a.get("model"));
            if (!t) return fail(t.error().message);
            remoteTok = std::move(*t);
            vocab = remoteTok->vocabSize();
            if (ho.chat) {
                const wb::Tokenizer* tk = remoteTok.get();
                ho.detokenize = [tk](const std::vector<int32_t>& ids) { return tk->decode(ids); };
                textPrompts = tk;
            }
        } else {
            ho.sendTokenIds = vocab > 0;
        }
        run["target"] = "http";
        run["request_format"] = !ho.chat ? (remoteTok || ho.sendTokenIds ? "token ids (/completions)"
                                                                         : "filler text (/completions)")
                                : remoteTok ? "chat messages: the images, then the prompt decoded by the model's tokenizer"
                                            : "chat with filler text (no -m: no tokenizer to decode the prompt)";
        run["url"] = ho.baseUrl;
        run["engine"] = a.get("label", "remote");
        run["precision"] = a.get("precision", "");
        auto t = wb::HttpTarget::create(ho);
        if (!t) {
            // Unreachable: recorded as such in the comparison, never as numbers.
            run["label"] = a.get("label", ho.modelName + " @ " + ho.baseUrl);
            run["model"] = ho.modelName;
            run["error"] = t.error().message;
            run["results"] = json::array();
            if (a.has("append-to")) {
                auto w = wb::appendRun(a.get("append-to"), run);
                if (!w) return fail(w.error().message);
            }
            return fail(t.error().message);
        }
        run["model"] = ho.modelName.empty() ? (*t)->models().front() : ho.modelName;
        run["device"] = "remote";
        run["label"] = a.get("label", (*t)->name());
        target = std::move(*t);
        if (vocab <= 0) vocab = 32000;
    } else {
        wb::EngineOptions eo;
        eo.modelPath = a.get("model");
        auto prec = wb::parsePrecision(a.get("precision", "native"));
        if (!prec) return fail(prec.error().message);
        eo.load.precision = *prec;
        eo.load.numThreads = std::atoi(a.get("threads", "0").c_str());
        {
            std::string derr;
            if (!deviceFromArgs(a, eo.load, derr)) return fail(derr);
        }
        eo.maxNumSeqs = int(maxSeqs);
        if (!number(a, "max-pixels", eo.maxImagePixels)) return 2;
        auto e = wb::Engine::create(eo);
        if (!e) return fail(e.error().message);
        engine = std::move(*e);
        // Ids the tokenizer knows: a padded embedding's rows past it are no token (the tiny GLM-4.1V: 300 rows, 269
        // tokens), and a server's run, which draws from the tokenizer (-m), must draw the same ids.
        vocab = engine->modelConfig().vocabSize;
        if (engine->tokenizer().vocabSize() > 0) vocab = std::min<int64_t>(vocab, engine->tokenizer().vocabSize());
        // --endpoint chat in process: the chat a server's chat endpoint would get, so the two compare.
        const bool chat = images || a.get("endpoint") == "chat";
        target = std::make_unique<wb::EngineTarget>(*engine, chat);
        if (chat) textPrompts = &engine->tokenizer();
        run["target"] = "engine";
        run["request_format"] = !chat ? "token ids (in process)"
                                      : "chat messages: the images, then the prompt decoded by the model's tokenizer "
                                        "(in process)";
        run["engine"] = "workbench";
        run["model"] = eo.modelPath;
        run["precision"] = wb::precisionName(*prec);
        run["device"] = engine->stats().device;
        run["label"] = a.get("label", "workbench (" + wb::precisionName(*prec) + ")");
    }

    const bool table = format == "table";
    if (table)
        std::printf("%s, %s, workload %lld in / %lld out%s%s\n%6s %8s %16s %10s %12s %10s %10s %10s %10s %6s\n",
                    run["label"].get<std::string>().c_str(), run.value("device", "").c_str(), (long long)input,
                    (long long)output, rate > 0 ? (", Poisson " + std::to_string(rate) + " req/s").c_str() : "",
                    images ? (" + " + std::to_string(images->numImages()) + " image(s) per request" +
                              (images->distinct() ? ", new pixels each request" : ", the same bytes each request"))
                                 .c_str()
                           : "",
                    "conc", "requests", "TTFT ms (±sd)", "TPOT ms", "out tok/s", "req/s", "P50 ms", "P90 ms",
                    "P99 ms", "errors");
    int best = 0;
    bool roundTrip = false;
    json results = json::array();
    // A plugin target's server is read while the load runs: peaks, not the idle state after it.
    std::unique_ptr<wb::ServerSampler> sampler;
    if (pluginTarget) sampler = std::make_unique<wb::ServerSampler>(*pluginTarget);
    for (int conc : levels) {
        wb::LoadTestOptions lo;
        lo.concurrency = conc;
        lo.numRequests = int(requests);
        lo.inputTokens = input;
        lo.outputTokens = output;
        lo.vocabSize = int(vocab);
        lo.seed = uint64_t(seed);
        lo.warmupRequests = int(warmup);
        lo.requestRate = rate;
        lo.images = images.get();
        lo.textPrompts = textPrompts;
        auto r = wb::runLoadTest(*target, lo);
        roundTrip = roundTrip || r.textPrompts;
        const bool stable = r.errors == 0 && (p99Limit <= 0 || r.e2eMs.p99 <= p99Limit);
        if (stable) best = std::max(best, conc);
        results.push_back(wb::loadTestJson(r, stable));
        if (table) {
            std::printf("%6d %8d %9.1f ± %-5.1f %10.2f %12.2f %10.3f %10.1f %10.1f %10.1f %6d\n", conc, r.requests,
                        r.ttftMs.mean, r.ttftMs.stddev, r.tpotMs.mean, r.outputTokensPerSecond, r.requestsPerSecond,
                        r.e2eMs.p50, r.e2eMs.p90, r.e2eMs.p99, r.errors);
            if (r.errors) std::printf("       first error: %s\n", r.firstError.c_str());
            if (r.promptTokensReported > 0)
                std::printf("       prompt tokens per request, the target's own count%s: %.1f (%lld-%lld)\n",
                            images ? " (images and chat template included)"
                            : run.value("request_format", "").find("chat") != std::string::npos
                                ? " (chat template included)"
                                : "",
                            double(r.promptTokens) / double(r.promptTokensReported), (long long)r.promptTokensMin,
                            (long long)r.promptTokensMax);
            else if (r.requests > r.errors)
                std::printf("       prompt tokens per request: not reported by the target\n");
            std::fflush(stdout);
        }
    }
    run["max_stable_concurrency"] = best;
    run["results"] = results;
    run["prompts"] = wb::promptsNote(roundTrip, run.value("request_format", ""));
    json mem;
    if (engine) {
        const wb::StatsSnapshot st = engine->stats();
        const int64_t hwm = wb::processPeakRssBytes();
        mem = wb::engineMemoryJson(st.weightBytes, st.kvCacheBytes, -1);
        mem["peak_rss_bytes"] = hwm > 0 ? json(hwm) : json(nullptr);
    } else if (sampler) {
        const wb::ServerSample peak = sampler->stop();
        mem = {{"peak_bytes", peak.memoryBytes ? json(*peak.memoryBytes) : json(nullptr)},
               {"source", peak.memorySource},
               {"kv_usage_peak", peak.kvUsage ? json(*peak.kvUsage) : json(nullptr)},
               {"kv_source", peak.kvSource}};
    } else {
        auto rm = wb::fetchRemoteMemory(a.get("url"), a.get("api-key"));
        mem = {{"peak_bytes", rm.peakBytes ? json(*rm.peakBytes) : json(nullptr)}, {"source", rm.source}};
    }
    run["memory"] = mem;
    sampler.reset();  // samples through the plugin target, so it goes first
    target.reset();  // joins an HTTP target's request threads

    if (a.has("append-to")) {
        auto w = wb::appendRun(a.get("append-to"), run);
        if (!w) return fail(w.error().message);
        // The comparison's prompt counts, as they now stand: a target that counted other prompt tokens is named.
        if (auto doc = wb::loadComparison(a.get("append-to")))
            for (const std::string& warning : wb::promptTokenWarnings(*doc))
                std::fprintf(stderr, "warning: %s\n", warning.c_str());
    }
    const json single{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", json::array({run})}};
    if (format == "json") {
        std::cout << run.dump(2) << "\n";
    } else if (format == "csv") {
        std::cout << wb::comparisonCsv(single);
    } else if (format == "md") {
        std::cout << wb::comparisonMarkdown(single);
    } else {
        std::printf("highest concurrency with no errors%s: %d\n",
                    p99Limit > 0 ? (" and P99 <= " + std::to_string(int(p99Limit)) + " ms").c_str() : "", best);
        std::printf("peak memory: %s (%s)\n",
                    mem["peak_bytes"].is_number() ? humanBytes(mem["peak_bytes"].get<double>()).c_str() : "n/a",
                    mem["source"].get<std::string>().c_str());
        if (mem.contains("kv_source"))
            std::printf("peak KV-cache use: %s (%s)\n",
                        mem["kv_usage_peak"].is_number()
                            ? (std::to_string(int(std::lround(mem["kv_usage_peak"].get<double>() * 100))) + "%").c_str()
                            : "n/a",
                        mem["kv_source"].get<std::string>().c_str());
    }
    return 0;
}

int cmdBenchReport(const Args& a) {
    auto doc = wb::loadComparison(a.get("report"));
    if (!doc) return fail(doc.error().message);
    const std::string format = a.get("format", "md");
    if (format == "md")
        std::cout << wb::comparisonMarkdown(*doc);
    else if (format == "csv")
        std::cout << wb::comparisonCsv(*doc);
    else if (format == "json")
        std::cout << doc->dump(2) << "\n";
    else
        return fail("--format is md, csv or json");
    return 0;
}

}  // namespace wb::cli
