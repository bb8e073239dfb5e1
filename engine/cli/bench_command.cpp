// `wb bench`: single-sequence prompt-processing and generation tokens/s, like llama-bench; the serving load, the
// target plugins and comparison reports are in bench_serving_command.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <span>
#include <vector>
#include <nlohmann/json.hpp>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/units.h"
#include "api/devices.h"
#include "api/direct_model.h"
#include "api/tokenizer.h"

using nlohmann::json;

namespace wb::cli {

namespace {

struct Stat {
    double mean = 0, sd = 0;
};
Stat stats(const std::vector<double>& v) {
    Stat s;
    if (v.empty()) return s;
    for (double x : v) s.mean += x;
    s.mean /= v.size();
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = v.size() > 1 ? std::sqrt(s.sd / (v.size() - 1)) : 0;
    return s;
}

}  // namespace

int cmdBench(const Args& a) {
    if (a.has("report")) return cmdBenchReport(a);
    if (a.has("list-targets")) return cmdBenchListTargets(a);
    // Images make it a serving workload (chat messages through the engine or a server), never llama-bench's.
    if (a.has("concurrency") || a.has("url") || a.has("request-rate") || a.has("preset") || !a.images.empty())
        return cmdBenchServing(a);
    auto m = loadModel(a, /*anyFamily=*/true);
    if (!m) return fail(m.error().message);
    wb::DirectModel& model = **m;
    const wb::ModelConfig& c = model.config();
    int64_t pp = 128, tg = 64, reps = 3, depth = 0;
    if (!number(a, "pp", pp) || !number(a, "tg", tg) || !number(a, "reps", reps) || !number(a, "max-tokens", tg) ||
        !number(a, "depth", depth))
        return 2;
    if (a.has("prompt")) pp = std::atoll(a.get("prompt").c_str());
    if (depth < 0) return fail("--depth must be >= 0");
    // As llama-bench: -p 0 or -n 0 leaves that test out (-p 0 ran an empty batch and failed in forward).
    if (pp < 0 || tg < 0) return fail("-p and -n must be >= 0");
    if (pp == 0 && tg == 0) return fail("nothing to measure: -p and -n are both 0");
    if (reps < 1) return fail("-r must be >= 1");
    if (depth + std::max(pp, tg) + 1 > c.maxContext)
        return fail("depth + max(pp, tg) exceeds the model's context of " + std::to_string(c.maxContext));
    using Clock = std::chrono::steady_clock;
    std::vector<float> logits(static_cast<size_t>(c.vocabSize));
    // Deterministic pseudo-random ids, as llama-bench uses random tokens; control tokens are drawn again (a vision
    // model's image placeholder would ask for image features that a text benchmark does not have).
    uint64_t st = 42;
    const wb::Tokenizer& tok = model.tokenizer();
    auto randomIds = [&](int64_t n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) {
            do {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                id = int32_t((st >> 33) % uint64_t(c.vocabSize));
            } while (id < tok.vocabSize() && tok.isControl(id));
        }
        return ids;
    };
    const std::vector<int32_t> context = randomIds(depth), prompt = randomIds(pp);
    // One cache for the whole run: `depth` tokens written once (not timed), then every test writes from position
    // `depth` on, over what the previous test left there (a causal model never reads past its own position).
    // --kv-cache-dtype: llama-bench's cache is f16 by default (its -ctk/-ctv), so deep-context runs compare
    // like with like only with f16 here too; auto is the engine's rule (f16 on the CPU from 16,384 tokens).
    auto kvType = wb::parseKvCacheType(a.get("kv-cache-dtype", "auto"));
    if (!kvType) return fail("--kv-cache-dtype: " + kvType.error().message);
    model.resetCache(depth + std::max(pp, tg) + 1, *kvType);
    if (depth > 0) {
        auto e = model.forward(context, 0, logits.data());
        if (!e) return fail(e.error().message);
    }
    std::vector<double> ppRates, tgRates;
    // One warm-up run of each (page in the weights, grow scratch buffers).
    for (int64_t r = -1; r < reps; ++r) {
        auto t0 = Clock::now();
        if (pp > 0) {
            auto e = model.forward(prompt, depth, logits.data());
            if (!e) return fail(e.error().message);
        }
        auto t1 = Clock::now();
        int32_t tok = c.bosTokenId >= 0 ? c.bosTokenId : 1;
        auto t2 = Clock::now();
        for (int64_t i = 0; i < tg; ++i) {
            auto e2 = model.forward(std::span<const int32_t>(&tok, 1), depth + i, logits.data());
            if (!e2) return fail(e2.error().message);
            tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
        auto t3 = Clock::now();
        if (r < 0) continue;
        if (pp > 0) ppRates.push_back(double(pp) / std::chrono::duration<double>(t1 - t0).count());
        if (tg > 0) tgRates.push_back(double(tg) / std::chrono::duration<double>(t3 - t2).count());
    }
    const Stat sp = stats(ppRates), sg = stats(tgRates);
    json j;
    j["engine"] = "workbench";
    j["version"] = kVersion;
    j["model"] = model.path();
    j["precision"] = wb::precisionName(model.precision());
    j["weight_bytes"] = model.weightBytes();
    j["threads"] = model.numThreads();
    j["isa"] = wb::cpuIsaName();
    if (pp > 0) j["pp"] = {{"tokens", pp}, {"tokens_per_s", sp.mean}, {"stddev", sp.sd}, {"runs", ppRates}};
    if (tg > 0) j["tg"] = {{"tokens", tg}, {"tokens_per_s", sg.mean}, {"stddev", sg.sd}, {"runs", tgRates}};
    j["depth"] = depth;
    j["kv_cache_dtype"] = wb::kvCacheTypeName(model.cacheType());
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
    } else {
        std::printf("model %s, precision %s, %d threads, ISA %s, weights %s, KV cache %s\n", model.path().c_str(),
                    wb::precisionName(model.precision()).c_str(), model.numThreads(), wb::cpuIsaName(),
                    humanBytes(double(model.weightBytes())).c_str(), wb::kvCacheTypeName(model.cacheType()));
        const std::string at = depth > 0 ? " @ d" + std::to_string(depth) : "";
        if (pp > 0) std::printf("  pp%-5lld%s %10.2f ± %.2f tokens/s\n", (long long)pp, at.c_str(), sp.mean, sp.sd);
        if (tg > 0) std::printf("  tg%-5lld%s %10.2f ± %.2f tokens/s\n", (long long)tg, at.c_str(), sg.mean, sg.sd);
    }
    return 0;
}

}  // namespace wb::cli
