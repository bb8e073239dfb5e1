// `wb inspect`: what a checkpoint is and what it needs in memory.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/units.h"
#include "api/model_info.h"

using nlohmann::json;

namespace wb::cli {

namespace {

// GLM-4 / GLM-4.1V folders: the plan from config.json (text and vision parameters, bytes per precision, KV per
// token, one GPU's share at tensor-parallel degree 2), as the model manager shows it.
int inspectGlm(const Args& a, const wb::ModelInfo& info) {
    const wb::ModelInfo* s = &info;
    const int64_t textParameters = s->numParameters - s->visionParameters;
    json j;
    j["path"] = a.get("model");
    j["architecture"] = s->architecture;
    j["parameters"] = s->numParameters;
    j["text_parameters"] = textParameters;
    j["vision_parameters"] = s->visionParameters;
    j["layers"] = s->config.numLayers;
    j["hidden_size"] = s->config.dim;
    j["context_length"] = s->config.maxContext;
    j["weight_bytes_by_precision"] = s->weightBytesByPrecision;
    j["kv_bytes_per_token"] = s->kvBytesPerToken;
    j["kv_bytes_per_token_f16"] = s->kvBytesPerToken / 2;
    for (const auto& tp : s->tensorParallel)
        j["per_gpu"][std::to_string(tp.degree)] = {{"weight_bytes_by_precision", tp.weightBytesByPrecision},
                                                   {"kv_bytes_per_token", tp.kvBytesPerToken}};
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%s\n  architecture   %s\n  parameters     %lld (text %lld, vision %lld)\n", a.get("model").c_str(),
                s->architecture.c_str(), (long long)s->numParameters, (long long)textParameters,
                (long long)s->visionParameters);
    std::printf("  layers %lld, hidden %lld, heads %lld (KV %lld, head dim %lld), context %lld\n",
                (long long)s->config.numLayers, (long long)s->config.dim, (long long)s->config.numHeads,
                (long long)s->config.numKvHeads, (long long)s->config.headDim,
                (long long)s->config.maxContext);
    std::printf("  weights by precision (one device):\n");
    for (const auto& [k, v] : s->weightBytesByPrecision) std::printf("    %-7s %s\n", k.c_str(), wb::humanBytes(double(v)).c_str());
    std::printf("  KV cache %s per token in f32, %s in f16 (--kv-cache-dtype; auto: f16 on the CPU from %lld "
                "tokens of context)\n",
                wb::humanBytes(double(s->kvBytesPerToken)).c_str(), wb::humanBytes(double(s->kvBytesPerToken) / 2).c_str(),
                (long long)wb::kLongContextTokens);
    for (const auto& tp : s->tensorParallel) {
        if (tp.degree == 1) continue;
        std::printf("  per GPU at tensor parallel %d:", tp.degree);
        for (const auto& [k, v] : tp.weightBytesByPrecision) std::printf(" %s %s", k.c_str(), wb::humanBytes(double(v)).c_str());
        std::printf(", KV %s per token\n", wb::humanBytes(double(tp.kvBytesPerToken)).c_str());
    }
    return 0;
}

}  // namespace

int cmdInspect(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    auto s = wb::inspectModel(a.get("model"));
    if (!s) return fail(s.error().message);
    if (s->family == "glm") return inspectGlm(a, *s);
    const wb::ModelConfig& c = s->config;
    json j;
    j["path"] = s->path;
    j["format"] = s->format;
    j["architecture"] = c.architecture;
    j["name"] = c.name;
    j["parameters"] = s->numParameters;
    j["layers"] = c.numLayers;
    j["hidden_size"] = c.dim;
    j["heads"] = c.numHeads;
    j["kv_heads"] = c.numKvHeads;
    j["head_dim"] = c.headDim;
    j["ffn_size"] = c.ffnDim;
    j["vocab_size"] = c.vocabSize;
    j["context_length"] = c.maxContext;
    j["rope_theta"] = c.ropeTheta;
    j["tied_embeddings"] = c.tiedEmbeddings;
    j["qkv_bias"] = c.qkvBias;
    j["tensor_dtypes"] = s->tensorCountByDtype;
    j["tokenizer"] = s->tokenizerKind;
    j["weight_bytes"] = s->weightBytesByPrecision;
    j["kv_cache_bytes_per_token_fp32"] = s->kvBytesPerToken;
    j["kv_cache_bytes_full_context_fp32"] = s->kvBytesPerToken * c.maxContext;
    j["kv_cache_bytes_per_token_fp16"] = s->kvBytesPerToken / 2;
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%s (%s)\n", s->path.c_str(), s->format.c_str());
    std::printf("  architecture   %s%s\n", c.architecture.c_str(), c.name.empty() ? "" : (" — " + c.name).c_str());
    std::printf("  parameters     %lld (%.2f M)\n", (long long)s->numParameters, s->numParameters / 1e6);
    std::printf("  layers %lld, hidden %lld, heads %lld (KV %lld, head dim %lld), FFN %lld, vocab %lld\n",
                (long long)c.numLayers, (long long)c.dim, (long long)c.numHeads, (long long)c.numKvHeads,
                (long long)c.headDim, (long long)c.ffnDim, (long long)c.vocabSize);
    std::printf("  context        %lld tokens, rope theta %g%s\n", (long long)c.maxContext, c.ropeTheta,
                c.tiedEmbeddings ? ", tied embeddings" : "");
    std::printf("  tokenizer      %s\n", s->tokenizerKind.c_str());
    std::printf("  tensor dtypes ");
    for (const auto& [k, v] : s->tensorCountByDtype) std::printf(" %s×%lld", k.c_str(), (long long)v);
    std::printf("\n  weights by precision:\n");
    for (const auto& [k, v] : s->weightBytesByPrecision) std::printf("    %-7s %s\n", k.c_str(), humanBytes(v).c_str());
    std::printf("  KV cache (f32) %s per token, %s at full context (f16: half; --kv-cache-dtype)\n",
                humanBytes(s->kvBytesPerToken).c_str(), humanBytes(double(s->kvBytesPerToken) * c.maxContext).c_str());
    return 0;
}

}  // namespace wb::cli
