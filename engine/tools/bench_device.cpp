// wb-bench-device: the figures issue 5 asks of a GPU, on any device kind: batch-1 decode tokens/s and the fraction
// of the memory-bandwidth limit it reaches (weight + KV bytes read per token over the time per token, against a
// bandwidth given with --bandwidth-gbs, e.g. a measured device-to-device copy rate), TTFT for a 128-token prompt,
// and engine throughput at several concurrencies. Prints one line per figure (and --json).
//
// usage: wb-bench-device -m MODEL [--device cpu|cuda] [--precision fp16|int8|...] [--tp N] [--threads N]
//                        [--decode N] [--concurrency 1,4,8,16,64] [--bandwidth-gbs X] [--json]
#include <optional>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "api/engine.h"
#include "models/decoder/llama_model.h"
#include "models/glm/glm_decoder.h"
#include "models/model_registry.h"

namespace {

double nowMs() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string model, device = "cpu", precision = "native", conc = "1,4,8,16,64";
    int tp = 1, threads = 0, decode = 128;
    double bandwidthGbs = 0;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "-m") model = next();
        else if (a == "--device") device = next();
        else if (a == "--precision") precision = next();
        else if (a == "--tp") tp = std::atoi(next().c_str());
        else if (a == "--threads") threads = std::atoi(next().c_str());
        else if (a == "--decode") decode = std::atoi(next().c_str());
        else if (a == "--concurrency") conc = next();
        else if (a == "--bandwidth-gbs") bandwidthGbs = std::atof(next().c_str());
        else if (a == "--json") json = true;
        else {
            std::fprintf(stderr, "wb-bench-device: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (model.empty()) {
        std::fprintf(stderr, "usage: wb-bench-device -m MODEL [--device cpu|cuda] [--precision P] [--tp N] ...\n");
        return 2;
    }
    wb::LoadOptions lo;
    auto dk = wb::parseDeviceKind(device);
    auto pr = wb::parsePrecision(precision);
    if (!dk || !pr) {
        std::fprintf(stderr, "wb-bench-device: %s\n", (!dk ? dk.error() : pr.error()).message.c_str());
        return 2;
    }
    lo.device = *dk;
    lo.precision = *pr;
    lo.parallelDegree = tp;
    lo.numThreads = threads;
    // GLM folders run their text model on the shared decoder, as the engine's GLM family does on devices.
    std::optional<wb::DecoderLayout> layout;
    auto id = wb::identifyModel(model);
    auto family = id ? wb::familyOf(*id) : wb::Result<const wb::ModelFamily*>(id.error());
    if (family && (*family)->name == "glm") {
        auto l = wb::glmDecoderLayoutFromFolder(model);
        if (!l) {
            std::fprintf(stderr, "wb-bench-device: %s\n", l.error().message.c_str());
            return 2;
        }
        layout = std::move(*l);
    }
    auto m = wb::LlamaModel::load(model, lo, layout ? &*layout : nullptr);
    if (!m) {
        std::fprintf(stderr, "wb-bench-device: %s\n", m.error().message.c_str());
        return 1;
    }
    wb::LlamaModel& mod = **m;
    const wb::ModelConfig& c = mod.config();
    std::ostringstream js;
    js << "{\"model\": \"" << model << "\", \"device\": \"" << mod.deviceSummary() << "\", \"precision\": \""
       << precision << "\"";
    std::printf("model %s\ndevice %s, precision %s, weights %.2f GiB\n", model.c_str(), mod.deviceSummary().c_str(),
                precision.c_str(), double(mod.weightBytes()) / (1 << 30));

    // TTFT: a 128-token prompt, logits of its last token.
    std::vector<int32_t> prompt(128);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % size_t(c.vocabSize));
    std::vector<float> logits(size_t(c.vocabSize));
    {
        wb::KvCache warm(c, 256);
        (void)mod.forward(std::span(prompt).first(8), 0, warm, logits.data());  // first-call allocations
    }
    wb::KvCache cache(c, int64_t(prompt.size()) + decode + 1);
    double t0 = nowMs();
    if (auto r = mod.forward(prompt, 0, cache, logits.data()); !r) {
        std::fprintf(stderr, "forward: %s\n", r.error().message.c_str());
        return 1;
    }
    const double ttftMs = nowMs() - t0;
    std::printf("  TTFT (128-token prompt)      %10.2f ms\n", ttftMs);
    js << ", \"ttft_ms_128\": " << ttftMs;

    // Batch-1 decode.
    int32_t tok = 1;
    t0 = nowMs();
    for (int i = 0; i < decode; ++i) {
        if (auto r = mod.forward(std::span(&tok, 1), int64_t(prompt.size()) + i, cache, logits.data()); !r) {
            std::fprintf(stderr, "forward: %s\n", r.error().message.c_str());
            return 1;
        }
        tok = int32_t((tok * 31 + 7) % c.vocabSize);
    }
    const double perTokMs = (nowMs() - t0) / decode;
    const double avgCtx = double(prompt.size()) + decode / 2.0;
    const double bytesPerToken = double(mod.weightBytes()) + 2.0 * c.numLayers * c.numKvHeads * c.headDim * 4 * avgCtx;
    const double gbs = bytesPerToken / (perTokMs * 1e-3) / 1e9;
    std::printf("  decode batch 1               %10.2f tokens/s (%.3f ms/token)\n", 1000.0 / perTokMs, perTokMs);
    std::printf("  bytes read per token         %10.3f GB -> %.1f GB/s", bytesPerToken / 1e9, gbs);
    if (bandwidthGbs > 0) std::printf(" = %.1f%% of %.0f GB/s", 100.0 * gbs / bandwidthGbs, bandwidthGbs);
    std::printf("\n");
    js << ", \"decode_tokens_per_s\": " << 1000.0 / perTokMs << ", \"decode_gb_per_s\": " << gbs;
    if (bandwidthGbs > 0) js << ", \"bandwidth_fraction\": " << gbs / bandwidthGbs;
    m->reset();

    // Throughput through the engine (continuous batching) at each concurrency: 128 prompt + 128 generated tokens.
    js << ", \"throughput\": {";
    std::stringstream cs(conc);
    std::string item;
    bool first = true;
    while (std::getline(cs, item, ',')) {
        const int n = std::atoi(item.c_str());
        if (n <= 0) continue;
        wb::EngineOptions eo;
        eo.modelPath = model;
        eo.load = lo;
        eo.maxNumSeqs = n;
        eo.numKvBlocks = int64_t(n) * ((256 + 15) / 16 + 1);
        auto e = wb::Engine::create(eo);
        if (!e) {
            std::fprintf(stderr, "engine: %s\n", e.error().message.c_str());
            return 1;
        }
        std::atomic<int64_t> generated{0};
        t0 = nowMs();
        for (int i = 0; i < n; ++i) {
            wb::Request r;
            r.promptTokens = prompt;
            r.promptTokens[1] = int32_t(i % c.vocabSize);  // distinct prompts
            r.maxTokens = 128;
            r.ignoreEos = true;
            r.sampling.temperature = 0;
            (*e)->submit(r, [&](const wb::Event& ev) {
                if (ev.type == wb::EventType::Finished) generated += int64_t(ev.tokens.size());
            });
        }
        (*e)->waitIdle();
        const double s = (nowMs() - t0) / 1000.0;
        std::printf("  throughput concurrency %-4d  %10.2f generated tokens/s\n", n, double(generated) / s);
        js << (first ? "" : ", ") << "\"" << n << "\": " << double(generated) / s;
        first = false;
    }
    js << "}}";
    if (json) std::printf("%s\n", js.str().c_str());
    return 0;
}
