#include "models/glm/glm_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "formats/json_text.h"

namespace wb {

namespace {

using nlohmann::json;

Result<json> readJson(const std::string& path) {
    std::ifstream f(path);
    if (!f) return makeError(path + ": cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    return parseJsonObject(ss.str(), path);
}

// A field of `obj`, or `fallback` when absent or null; wrong types name the key.
template <typename T>
Result<T> field(const json& obj, const char* key, T fallback, const std::string& where) {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    try {
        return obj[key].get<T>();
    } catch (const json::exception&) {
        return makeError(where + ": key \"" + key + "\" has the wrong type");
    }
}

template <typename T>
Result<T> required(const json& obj, const char* key, const std::string& where) {
    if (!obj.contains(key) || obj[key].is_null()) return makeError(where + ": missing key \"" + key + "\"");
    return field<T>(obj, key, T{}, where);
}

#define WB_GET(dst, expr)           \
    {                               \
        auto r_ = (expr);           \
        if (!r_) return r_.error(); \
        dst = *r_;                  \
    }

std::vector<int32_t> tokenIds(const json& v) {
    std::vector<int32_t> out;
    if (v.is_number_integer()) out.push_back(v.get<int32_t>());
    if (v.is_array())
        for (const auto& e : v)
            if (e.is_number_integer()) out.push_back(e.get<int32_t>());
    return out;
}

}  // namespace

Result<void> GlmConfig::validate(const std::string& src) const {
    const GlmTextConfig& t = text;
    if (t.vocabSize <= 0 || t.dim <= 0 || t.numLayers <= 0 || t.numHeads <= 0 || t.numKvHeads <= 0 ||
        t.headDim <= 0 || t.ffnDim <= 0)
        return makeError(src + ": text sizes must be positive (vocab_size, hidden_size, num_hidden_layers, "
                               "num_attention_heads, num_key_value_heads, head_dim, intermediate_size)");
    if (t.numHeads % t.numKvHeads != 0)
        return makeError(src + ": num_attention_heads (" + std::to_string(t.numHeads) +
                         ") is not a multiple of num_key_value_heads (" + std::to_string(t.numKvHeads) + ")");
    if (t.rotaryDim <= 0 || t.rotaryDim % 2 != 0 || t.rotaryDim > t.headDim)
        return makeError(src + ": partial_rotary_factor " + std::to_string(t.partialRotaryFactor) + " gives " +
                         std::to_string(t.rotaryDim) + " rotary dims of a " + std::to_string(t.headDim) +
                         "-dim head");
    if (hasVision) {
        const int64_t s = t.mropeSection[0] + t.mropeSection[1] + t.mropeSection[2];
        if (s != t.rotaryDim / 2)
            return makeError(src + ": rope mrope_section sums to " + std::to_string(s) + ", expected rotary dim / 2 = " +
                             std::to_string(t.rotaryDim / 2));
        const GlmVisionConfig& v = vision;
        if (v.depth <= 0 || v.hiddenSize <= 0 || v.numHeads <= 0 || v.hiddenSize % v.numHeads != 0 ||
            v.outHiddenSize <= 0 || v.intermediateSize <= 0 || v.patchSize <= 0 || v.temporalPatchSize <= 0 ||
            v.spatialMergeSize <= 0 || v.imageSize < v.patchSize)
            return makeError(src + ": vision_config sizes are inconsistent (depth, hidden_size, num_heads, "
                                   "out_hidden_size, intermediate_size, patch sizes, image_size)");
        if (v.headDim % 4 != 0)
            return makeError(src + ": vision head dim " + std::to_string(v.headDim) +
                             " must be a multiple of 4 (2-D rotary halves)");
        if (v.outHiddenSize != t.dim)
            return makeError(src + ": vision_config.out_hidden_size " + std::to_string(v.outHiddenSize) +
                             " differs from the text hidden_size " + std::to_string(t.dim));
    }
    return {};
}

namespace {
Result<GlmConfig> glmConfigFromJsonUnchecked(const std::string& text, const std::string& src);
}  // namespace

// Every field is checked where it is read; this catch is the net under a check that was missed (a value of the
// wrong JSON type read with get<>() throws): a config.json a fuzzer wrote must be an error, never an abort.
Result<GlmConfig> glmConfigFromJson(const std::string& text, const std::string& src) {
    try {
        return glmConfigFromJsonUnchecked(text, src);
    } catch (const json::exception& e) {
        return makeError(src + ": " + e.what());
    }
}

namespace {
Result<GlmConfig> glmConfigFromJsonUnchecked(const std::string& text, const std::string& src) {
    auto parsed = parseJsonObject(text, src);
    if (!parsed) return parsed.error();
    json j = std::move(*parsed);
    GlmConfig c;
    std::string arch;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string())
        arch = j["architectures"][0].get<std::string>();
    std::string modelType;
    WB_GET(modelType, field<std::string>(j, "model_type", "", src))
    if (arch == "Glm4vForConditionalGeneration" || modelType == "glm4v")
        c.architecture = "glm4v";
    else if (arch == "Glm4ForCausalLM" || modelType == "glm4")
        c.architecture = "glm4";
    else
        return makeError(src + ": architectures \"" + arch + "\" / model_type \"" + modelType +
                         "\" is not Glm4ForCausalLM or Glm4vForConditionalGeneration");
    c.hasVision = c.architecture == "glm4v";
    const bool hasTextConfig = j.contains("text_config") && j["text_config"].is_object();
    const json& tj = hasTextConfig ? j["text_config"] : j;
    const std::string tsrc = hasTextConfig ? src + ": text_config" : src;
    GlmTextConfig& t = c.text;
    WB_GET(t.vocabSize, required<int64_t>(tj, "vocab_size", tsrc))
    WB_GET(t.dim, required<int64_t>(tj, "hidden_size", tsrc))
    WB_GET(t.numLayers, required<int64_t>(tj, "num_hidden_layers", tsrc))
    WB_GET(t.numHeads, required<int64_t>(tj, "num_attention_heads", tsrc))
    // Defaults where a key is absent are the reference configs' (Glm4Config / Glm4vTextConfig).
    const bool glm4 = c.architecture == "glm4";
    WB_GET(t.numKvHeads, field<int64_t>(tj, "num_key_value_heads", 2, tsrc))
    WB_GET(t.ffnDim, required<int64_t>(tj, "intermediate_size", tsrc))
    WB_GET(t.maxContext, field<int64_t>(tj, "max_position_embeddings", glm4 ? 131072 : 32768, tsrc))
    WB_GET(t.normEps, field<float>(tj, "rms_norm_eps", glm4 ? 1.5625e-07f : 1e-5f, tsrc))
    // The vision-language model reads tie_word_embeddings from its text config only.
    WB_GET(t.tiedEmbeddings, field<bool>(tj, "tie_word_embeddings", false, tsrc))
    if (t.numHeads <= 0) return makeError(tsrc + ": num_attention_heads must be positive");
    const int64_t derivedHeadDim = t.dim / t.numHeads;
    WB_GET(t.headDim, field<int64_t>(tj, "head_dim", glm4 ? 128 : derivedHeadDim, tsrc))
    // Glm4vTextAttention sizes its heads as hidden_size / num_attention_heads whatever head_dim says, while the
    // rotary embedding reads head_dim: a checkpoint where they differ cannot run as the reference does.
    if (c.hasVision && t.headDim != derivedHeadDim)
        return makeError(tsrc + ": head_dim " + std::to_string(t.headDim) + " differs from hidden_size / "
                         "num_attention_heads = " + std::to_string(derivedHeadDim));
    // GLM-4's attention always has q/k/v biases in the vision-language model; Glm4Config makes it a setting.
    WB_GET(t.attentionBias, field<bool>(tj, "attention_bias", true, tsrc))
    if (c.hasVision) t.attentionBias = true;
    // Rotary settings moved between releases: rope_theta / partial_rotary_factor / rope_scaling at the top of
    // the text config, or inside rope_parameters.
    const json empty = json::object();
    const json& rs = tj.contains("rope_parameters") && tj["rope_parameters"].is_object() ? tj["rope_parameters"]
                     : tj.contains("rope_scaling") && tj["rope_scaling"].is_object()  ? tj["rope_scaling"]
                                                                                       : empty;
    float theta = 10000.0f;
    WB_GET(theta, field<float>(tj, "rope_theta", 10000.0f, tsrc))
    WB_GET(t.ropeTheta, field<float>(rs, "rope_theta", theta, tsrc + ".rope_parameters"))
    float partial = c.architecture == "glm4" ? 0.5f : 1.0f;  // Glm4Config's default; the rope code's otherwise
    WB_GET(partial, field<float>(tj, "partial_rotary_factor", partial, tsrc))
    WB_GET(t.partialRotaryFactor, field<float>(rs, "partial_rotary_factor", partial, tsrc + ".rope_parameters"))
    t.rotaryDim = int64_t(double(t.headDim) * double(t.partialRotaryFactor));
    std::string ropeType;
    WB_GET(ropeType, field<std::string>(rs, "rope_type", rs.value("type", std::string("default")), tsrc))
    if (ropeType != "default")
        return makeError(tsrc + ": rope type \"" + ropeType + "\" is not supported (only \"default\")");
    if (rs.contains("mrope_section")) {
        const auto& ms = rs["mrope_section"];
        if (!ms.is_array() || ms.size() != 3)
            return makeError(tsrc + ": rope mrope_section must be a list of 3 integers");
        for (size_t i = 0; i < 3; ++i) {
            if (!ms[i].is_number_integer())
                return makeError(tsrc + ": rope mrope_section must be a list of 3 integers");
            t.mropeSection[i] = ms[i].get<int64_t>();
        }
    } else if (c.hasVision) {
        return makeError(tsrc + ": missing rope_scaling.mrope_section");
    }
    if (c.hasVision) {
        if (!j.contains("vision_config") || !j["vision_config"].is_object())
            return makeError(src + ": missing vision_config");
        const json& vj = j["vision_config"];
        const std::string vsrc = src + ": vision_config";
        GlmVisionConfig& v = c.vision;
        WB_GET(v.depth, required<int64_t>(vj, "depth", vsrc))
        WB_GET(v.hiddenSize, required<int64_t>(vj, "hidden_size", vsrc))
        WB_GET(v.numHeads, required<int64_t>(vj, "num_heads", vsrc))
        WB_GET(v.patchSize, field<int64_t>(vj, "patch_size", 14, vsrc))
        WB_GET(v.temporalPatchSize, field<int64_t>(vj, "temporal_patch_size", 2, vsrc))
        WB_GET(v.spatialMergeSize, field<int64_t>(vj, "spatial_merge_size", 2, vsrc))
        WB_GET(v.inChannels, field<int64_t>(vj, "in_channels", 3, vsrc))
        WB_GET(v.imageSize, field<int64_t>(vj, "image_size", 336, vsrc))
        WB_GET(v.outHiddenSize, field<int64_t>(vj, "out_hidden_size", t.dim, vsrc))
        WB_GET(v.intermediateSize, required<int64_t>(vj, "intermediate_size", vsrc))
        WB_GET(v.normEps, field<float>(vj, "rms_norm_eps", 1e-5f, vsrc))
        WB_GET(v.attentionBias, field<bool>(vj, "attention_bias", false, vsrc))
        std::string act;
        WB_GET(act, field<std::string>(vj, "hidden_act", "silu", vsrc))
        if (act != "silu") return makeError(vsrc + ": hidden_act \"" + act + "\" is not supported (only silu)");
        if (v.numHeads > 0) v.headDim = v.hiddenSize / v.numHeads;
        WB_GET(c.imageTokenId, field<int32_t>(j, "image_token_id", c.imageTokenId, src))
        WB_GET(c.imageStartTokenId, field<int32_t>(j, "image_start_token_id", c.imageStartTokenId, src))
        WB_GET(c.imageEndTokenId, field<int32_t>(j, "image_end_token_id", c.imageEndTokenId, src))
        WB_GET(c.videoStartTokenId, field<int32_t>(j, "video_start_token_id", c.videoStartTokenId, src))
        WB_GET(c.videoEndTokenId, field<int32_t>(j, "video_end_token_id", c.videoEndTokenId, src))
    }
    std::string hiddenAct;
    WB_GET(hiddenAct, field<std::string>(tj, "hidden_act", "silu", tsrc))
    if (hiddenAct != "silu") return makeError(tsrc + ": hidden_act \"" + hiddenAct + "\" is not supported");
    // The top level's eos_token_id first, then the text config's (generation_config.json, read later, wins).
    if (j.contains("eos_token_id")) c.eosTokenIds = tokenIds(j["eos_token_id"]);
    if (c.eosTokenIds.empty() && tj.contains("eos_token_id")) c.eosTokenIds = tokenIds(tj["eos_token_id"]);
    WB_TRY(c.validate(src));
    return c;
}
}  // namespace

Result<GlmConfig> glmConfigFromFolder(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string path = (fs::path(dir) / "config.json").string();
    std::ifstream f(path);
    if (!f) return makeError(path + ": cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    auto c = glmConfigFromJson(ss.str(), path);
    if (!c) return c;
    const std::string gen = (fs::path(dir) / "generation_config.json").string();
    std::error_code ec;
    if (fs::exists(gen, ec)) {
        auto g = readJson(gen);
        if (!g) return g.error();
        if (g->contains("eos_token_id")) {
            auto ids = tokenIds((*g)["eos_token_id"]);
            if (!ids.empty()) c->eosTokenIds = ids;
        }
    }
    return c;
}

}  // namespace wb
