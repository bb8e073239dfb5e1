#include "models/decoder/model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"

namespace wb {

Result<void> ModelConfig::validate(const std::string& source) const {
    auto bad = [&](const std::string& what) { return makeError(source + ": " + what); };
    if (dim <= 0) return bad("embedding size (hidden_size) must be positive");
    if (numLayers <= 0) return bad("layer count (num_hidden_layers) must be positive");
    if (numHeads <= 0) return bad("attention head count must be positive");
    if (numKvHeads <= 0 || numHeads % numKvHeads != 0)
        return bad("KV head count " + std::to_string(numKvHeads) + " must divide the head count " +
                   std::to_string(numHeads));
    if (headDim <= 0 || headDim % 2 != 0) return bad("head dimension " + std::to_string(headDim) + " must be even");
    if (ffnDim <= 0) return bad("feed-forward size (intermediate_size) must be positive");
    if (vocabSize <= 0) return bad("vocabulary size must be positive");
    if (maxContext <= 0) return bad("context length must be positive");
    if (!(ropeTheta > 0)) return bad("rope_theta must be positive");
    // Upper bounds far above any real checkpoint: the loader sizes tables from these before it finds the tensors
    // missing, so a hostile header must not make it allocate terabytes.
    if (numLayers > 4096) return bad("layer count " + std::to_string(numLayers) + " is implausible (over 4096)");
    if (dim > (1 << 20) || ffnDim > (1 << 22) || numHeads > (1 << 14) || headDim > (1 << 14) ||
        vocabSize > (1 << 24) || maxContext > (int64_t(1) << 32))
        return bad("implausible size (embedding " + std::to_string(dim) + ", feed-forward " + std::to_string(ffnDim) +
                   ", heads " + std::to_string(numHeads) + ", head dimension " + std::to_string(headDim) +
                   ", vocabulary " + std::to_string(vocabSize) + ", context " + std::to_string(maxContext) + ")");
    return {};
}

std::vector<float> ModelConfig::ropeInvFreq() const {
    const int half = int(headDim / 2);
    std::vector<float> inv(half);
    for (int i = 0; i < half; ++i) inv[i] = float(1.0 / std::pow(double(ropeTheta), 2.0 * i / double(headDim)));
    if (ropeScaling.type == RopeScaling::Type::Linear) {
        for (float& f : inv) f /= ropeScaling.factor;
    } else if (ropeScaling.type == RopeScaling::Type::Llama3) {
        // As in HF's _compute_llama3_parameters: long wavelengths are divided by the factor, short ones kept,
        // and the band between is interpolated.
        const double oldCtx = ropeScaling.originalMaxPositions;
        const double lowWavelen = oldCtx / ropeScaling.lowFreqFactor;
        const double highWavelen = oldCtx / ropeScaling.highFreqFactor;
        for (float& f : inv) {
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen < highWavelen) continue;
            if (wavelen > lowWavelen) {
                f = float(f / ropeScaling.factor);
            } else {
                const double smooth = (oldCtx / wavelen - ropeScaling.lowFreqFactor) /
                                      (ropeScaling.highFreqFactor - ropeScaling.lowFreqFactor);
                f = float((1 - smooth) * f / ropeScaling.factor + smooth * f);
            }
        }
    }
    return inv;
}

Result<ModelConfig> configFromGguf(const GgufFile& g) {
    ModelConfig c;
    const std::string& path = g.path();
    auto arch = g.getString("general.architecture");
    if (!arch) return makeError(path + ": metadata general.architecture is missing");
    if (*arch != "llama" && *arch != "mistral" && *arch != "qwen2")
        return makeError(path + ": unsupported architecture \"" + *arch + "\" (general.architecture); supported: llama, "
                         "mistral, qwen2");
    c.architecture = *arch;
    c.name = g.getString("general.name").value_or("");
    auto need = [&](const std::string& key) -> Result<int64_t> {
        auto v = g.getInt(*arch + "." + key);
        if (!v) return makeError(path + ": metadata " + *arch + "." + key + " is missing");
        return *v;
    };
    auto dim = need("embedding_length");
    if (!dim) return dim.error();
    auto layers = need("block_count");
    if (!layers) return layers.error();
    auto ffn = need("feed_forward_length");
    if (!ffn) return ffn.error();
    auto heads = need("attention.head_count");
    if (!heads) return heads.error();
    c.dim = *dim;
    c.numLayers = *layers;
    c.ffnDim = *ffn;
    c.numHeads = *heads;
    c.numKvHeads = g.getInt(*arch + ".attention.head_count_kv").value_or(c.numHeads);
    c.headDim = g.getInt(*arch + ".attention.key_length").value_or(c.numHeads > 0 ? c.dim / c.numHeads : 0);
    c.maxContext = g.getInt(*arch + ".context_length").value_or(2048);
    c.normEps = float(g.getFloat(*arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
    c.ropeTheta = float(g.getFloat(*arch + ".rope.freq_base").value_or(10000.0));
    if (auto st = g.getString(*arch + ".rope.scaling.type")) {
        if (*st == "linear") {
            c.ropeScaling.type = RopeScaling::Type::Linear;
            c.ropeScaling.factor = float(g.getFloat(*arch + ".rope.scaling.factor").value_or(1.0));
        } else if (*st != "none") {
            return makeError(path + ": " + *arch + ".rope.scaling.type \"" + *st + "\" is not supported");
        }
    }
    if (auto vs = g.getInt(*arch + ".vocab_size")) {
        c.vocabSize = *vs;
    } else if (const auto* toks = g.getStringArray("tokenizer.ggml.tokens")) {
        c.vocabSize = int64_t(toks->size());
    } else if (const TensorInfo* emb = g.findTensor("token_embd.weight"); emb && emb->shape.size() == 2) {
        c.vocabSize = emb->shape[0];
    }
    c.qkvBias = g.findTensor("blk.0.attn_q.bias") != nullptr;
    c.tiedEmbeddings = g.findTensor("output.weight") == nullptr;
    c.bosTokenId = int32_t(g.getInt("tokenizer.ggml.bos_token_id").value_or(-1));
    c.eosTokenId = int32_t(g.getInt("tokenizer.ggml.eos_token_id").value_or(-1));
    WB_TRY(c.validate(path));
    return c;
}

namespace {

Result<nlohmann::json> readJson(const std::string& path) {
    std::ifstream in(path);
    if (!in) return makeError(path + ": cannot open");
    try {
        return nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        return makeError(path + ": not valid JSON: " + e.what());
    }
}

}  // namespace

static Result<ModelConfig> configFromHfFolderImpl(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "config.json").string();
    auto jr = readJson(path);
    if (!jr) return jr.error();
    const nlohmann::json& j = *jr;
    if (!j.is_object()) return makeError(path + ": not a JSON object");
    ModelConfig c;
    std::string archName;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string())
        archName = j["architectures"][0].get<std::string>();
    const std::string modelType = j.value("model_type", std::string());
    if (archName == "LlamaForCausalLM" || (archName.empty() && modelType == "llama")) {
        c.architecture = "llama";
    } else if (archName == "MistralForCausalLM" || (archName.empty() && modelType == "mistral")) {
        c.architecture = "mistral";
    } else if (archName == "Qwen2ForCausalLM" || (archName.empty() && modelType == "qwen2")) {
        c.architecture = "qwen2";
    } else {
        return makeError(path + ": unsupported architecture \"" + (archName.empty() ? modelType : archName) +
                         "\" (architectures); supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM");
    }
    auto getInt = [&](const char* key, int64_t def, bool required) -> Result<int64_t> {
        if (!j.contains(key) || j[key].is_null()) {
            if (required) return makeError(path + ": field " + key + " is missing");
            return def;
        }
        if (!j[key].is_number_integer()) return makeError(path + ": field " + key + " is not an integer");
        return j[key].get<int64_t>();
    };
#define WB_CFG_INT(var, key, def, req)           \
    {                                            \
        auto r_ = getInt(key, def, req);         \
        if (!r_) return r_.error();              \
        var = *r_;                               \
    }
    WB_CFG_INT(c.dim, "hidden_size", 0, true)
    WB_CFG_INT(c.numLayers, "num_hidden_layers", 0, true)
    WB_CFG_INT(c.numHeads, "num_attention_heads", 0, true)
    WB_CFG_INT(c.numKvHeads, "num_key_value_heads", c.numHeads, false)
    WB_CFG_INT(c.ffnDim, "intermediate_size", 0, true)
    WB_CFG_INT(c.vocabSize, "vocab_size", 0, true)
    WB_CFG_INT(c.maxContext, "max_position_embeddings", 2048, false)
    WB_CFG_INT(c.headDim, "head_dim", c.numHeads > 0 ? c.dim / c.numHeads : 0, false)
#undef WB_CFG_INT
    // Absent or null: the default. Anything else must be a positive finite number ("abc" is an error, not 1e-6).
    auto getFloat = [&](const char* key, double def) -> Result<double> {
        if (!j.contains(key) || j[key].is_null()) return def;
        if (!j[key].is_number())
            return makeError(path + ": field " + key + " must be a number, not " + std::string(j[key].type_name()));
        const double v = j[key].get<double>();
        if (!std::isfinite(v) || v <= 0) return makeError(path + ": field " + key + " must be positive and finite");
        return v;
    };
    auto eps = getFloat("rms_norm_eps", 1e-6);
    if (!eps) return eps.error();
    auto theta = getFloat("rope_theta", 10000.0);
    if (!theta) return theta.error();
    c.normEps = float(*eps);
    c.ropeTheta = float(*theta);
    c.tiedEmbeddings = j.value("tie_word_embeddings", false);
    c.qkvBias = c.architecture == "qwen2" || j.value("attention_bias", false);
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bosTokenId = j["bos_token_id"];
    if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eosTokenId = j["eos_token_id"];
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
        const auto& rs = j["rope_scaling"];
        std::string type = rs.value("rope_type", rs.value("type", std::string()));
        if (type == "linear") {
            c.ropeScaling.type = RopeScaling::Type::Linear;
        } else if (type == "llama3") {
            c.ropeScaling.type = RopeScaling::Type::Llama3;
        } else if (type != "default" && !type.empty()) {
            return makeError(path + ": rope_scaling type \"" + type + "\" is not supported (linear, llama3 are)");
        }
        c.ropeScaling.factor = float(rs.value("factor", 1.0));
        c.ropeScaling.lowFreqFactor = float(rs.value("low_freq_factor", 1.0));
        c.ropeScaling.highFreqFactor = float(rs.value("high_freq_factor", 4.0));
        c.ropeScaling.originalMaxPositions = rs.value("original_max_position_embeddings", 8192);
    }
    const std::string genPath = (std::filesystem::path(dir) / "generation_config.json").string();
    if (std::filesystem::exists(genPath)) {
        auto gr = readJson(genPath);
        if (!gr) return gr.error();
        const nlohmann::json& gj = *gr;
        if (gj.is_object()) {
            if (gj.contains("temperature") && gj["temperature"].is_number()) c.generation.temperature = gj["temperature"];
            if (gj.contains("top_p") && gj["top_p"].is_number()) c.generation.topP = gj["top_p"];
            if (gj.contains("top_k") && gj["top_k"].is_number_integer()) c.generation.topK = gj["top_k"];
            if (gj.contains("repetition_penalty") && gj["repetition_penalty"].is_number())
                c.generation.repetitionPenalty = gj["repetition_penalty"];
            if (gj.contains("eos_token_id")) {
                const auto& e = gj["eos_token_id"];
                if (e.is_number_integer()) c.generation.eosTokenIds.push_back(e.get<int32_t>());
                if (e.is_array())
                    for (const auto& x : e)
                        if (x.is_number_integer()) c.generation.eosTokenIds.push_back(x.get<int32_t>());
            }
            if (gj.contains("bos_token_id") && gj["bos_token_id"].is_number_integer() && c.bosTokenId < 0)
                c.bosTokenId = gj["bos_token_id"];
        }
    }
    WB_TRY(c.validate(path));
    return c;
}

// nlohmann::json's value() and get() throw on a value of the wrong type ("tie_word_embeddings": 1); nothing may
// escape the API, so a mistyped field becomes an Error naming the file.
Result<ModelConfig> configFromHfFolder(const std::string& dir) {
    try {
        return configFromHfFolderImpl(dir);
    } catch (const std::exception& e) {
        return makeError((std::filesystem::path(dir) / "config.json").string() + ": a field has the wrong type: " +
                         e.what());
    }
}


}  // namespace wb
