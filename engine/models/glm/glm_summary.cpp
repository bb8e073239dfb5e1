#include "models/glm/glm_summary.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace wb {

namespace {

// ceil(total / n): the largest share of an as-even-as-possible split.
int64_t largestShare(int64_t total, int n) {
    return (total + n - 1) / n;
}

struct Counter {
    GlmWeightCounts c;
    // A [rows, cols] matrix (Conv weights: rows = output channels, cols = the rest flattened).
    void matrix(int64_t rows, int64_t cols) {
        c.matrixElements += rows * cols;
        c.matrixRows += rows;
    }
    void vector(int64_t n) { c.vectorElements += n; }
};

// At int8 the vision tower stays BF16 (GlmModel::load: its GEMMs run over thousands of patches).
std::map<std::string, int64_t> bytesByPrecision(const GlmWeightCounts& text, const GlmWeightCounts& vision,
                                                std::optional<DType> fileType) {
    GlmWeightCounts w = text;
    w += vision;
    std::map<std::string, int64_t> out;
    out["fp32"] = w.bytes(DType::F32);
    out["fp16"] = w.bytes(DType::F16);
    out["bf16"] = w.bytes(DType::BF16);
    out["int8"] = text.bytes(DType::I8) + vision.bytes(DType::BF16);
    if (fileType) out["native"] = w.bytes(*fileType);
    return out;
}

// config.json's torch_dtype (transformers < 4.56) or dtype, at the top or in text_config.
std::optional<DType> fileTypeFromJson(const nlohmann::json& j) {
    auto name = [](const nlohmann::json& o) -> std::string {
        for (const char* key : {"torch_dtype", "dtype"})
            if (o.contains(key) && o[key].is_string()) return o[key].get<std::string>();
        return {};
    };
    std::string n = name(j);
    if (n.empty() && j.contains("text_config") && j["text_config"].is_object()) n = name(j["text_config"]);
    if (n == "float32") return DType::F32;
    if (n == "float16") return DType::F16;
    if (n == "bfloat16") return DType::BF16;
    return std::nullopt;
}

}  // namespace

int64_t GlmWeightCounts::bytes(DType t) const {
    int64_t m = 0;
    switch (t) {
        case DType::F32:
            m = matrixElements * 4;
            break;
        case DType::F16:
        case DType::BF16:
            m = matrixElements * 2;
            break;
        case DType::I8:
            m = matrixElements + matrixRows * int64_t(sizeof(float));
            break;
        default:
            m = matrixElements / dtypeBlockSize(t) * dtypeBlockBytes(t);
            break;
    }
    return m + vectorElements * int64_t(sizeof(float));
}

GlmWeightCounts& GlmWeightCounts::operator+=(const GlmWeightCounts& o) {
    matrixElements += o.matrixElements;
    matrixRows += o.matrixRows;
    vectorElements += o.vectorElements;
    return *this;
}

const GlmShardPlan* GlmSummary::shardPlan(int degree) const {
    for (const auto& p : tensorParallel)
        if (p.degree == degree) return &p;
    return nullptr;
}

// The shapes GlmModel::load reads, one rank's share of them.
GlmWeightCounts glmTextWeights(const GlmConfig& config, int n) {
    const GlmTextConfig& t = config.text;
    n = std::max(n, 1);
    const int64_t heads = t.numHeads / n;
    const int64_t kvHeads = t.numKvHeads >= n ? t.numKvHeads / n : 1;  // replicated when fewer than the ranks
    const int64_t q = heads * t.headDim, kv = kvHeads * t.headDim, qFull = t.numHeads * t.headDim;
    const int64_t ffn = largestShare(t.ffnDim, n);
    Counter c;
    c.matrix(t.vocabSize, t.dim);  // embed_tokens: every rank gathers any token
    c.vector(t.dim);               // norm
    // lm_head split by vocabulary rows; a tied head is a view of the embedding on one device, its slice beside
    // the replicated table when split (as LlamaModel does).
    if (!t.tiedEmbeddings || n > 1) c.matrix(largestShare(t.vocabSize, n), t.dim);
    for (int64_t i = 0; i < t.numLayers; ++i) {
        c.vector(4 * t.dim);  // input, post_self_attn, post_attention, post_mlp layernorms
        c.matrix(q, t.dim);   // q_proj (column-parallel)
        c.matrix(kv, t.dim);  // k_proj
        c.matrix(kv, t.dim);  // v_proj
        if (t.attentionBias) c.vector(q + 2 * kv);
        c.matrix(t.dim, qFull / n);  // o_proj (row-parallel: all output rows, a share of the columns)
        c.matrix(2 * ffn, t.dim);    // fused gate_up (column-parallel, both halves split alike)
        c.matrix(t.dim, ffn);        // down (row-parallel)
    }
    return c.c;
}

GlmWeightCounts glmVisionWeights(const GlmConfig& config) {
    Counter c;
    if (!config.hasVision) return c.c;
    const GlmVisionConfig& v = config.vision;
    const int64_t hid = v.hiddenSize, out = v.outHiddenSize, ms = v.spatialMergeSize;
    c.matrix(hid, v.patchDim());       // patch_embed.proj (Conv3d) as one matmul
    c.vector(hid);                     // patch_embed.proj.bias
    c.vector(hid);                     // post_conv_layernorm
    c.vector(v.numPositions() * hid);  // embeddings.position_embedding: loaded as an f32 vector
    for (int64_t i = 0; i < v.depth; ++i) {
        c.vector(2 * hid);       // norm1, norm2
        c.matrix(3 * hid, hid);  // attn.qkv
        if (v.attentionBias) c.vector(3 * hid);
        c.matrix(hid, hid);  // attn.proj (no bias)
        c.matrix(out, hid);  // mlp.gate_proj: the blocks' MLP is out_hidden_size wide, as in HF
        c.matrix(out, hid);  // mlp.up_proj
        c.matrix(hid, out);  // mlp.down_proj
    }
    c.vector(hid);                      // post_layernorm
    c.matrix(out, hid * ms * ms);       // downsample (Conv2d)
    c.vector(out);                      // downsample.bias
    c.matrix(out, out);                 // merger.proj
    c.vector(2 * out);                  // merger.post_projection_norm (LayerNorm weight + bias)
    c.matrix(v.intermediateSize, out);  // merger.gate_proj
    c.matrix(v.intermediateSize, out);  // merger.up_proj
    c.matrix(out, v.intermediateSize);  // merger.down_proj
    return c.c;
}

Result<GlmShardPlan> glmShardPlan(const GlmConfig& config, int n, std::optional<DType> fileType) {
    const GlmTextConfig& t = config.text;
    if (n < 1) return makeError("parallel degree must be at least 1, not " + std::to_string(n));
    if (t.numHeads % n != 0)
        return makeError("parallel degree " + std::to_string(n) + " does not divide the " + std::to_string(t.numHeads) +
                         " attention heads");
    if (t.numKvHeads % n != 0 && n % t.numKvHeads != 0)
        return makeError("parallel degree " + std::to_string(n) + " neither divides nor is a multiple of the " +
                         std::to_string(t.numKvHeads) + " KV heads");
    GlmShardPlan p;
    p.degree = n;
    p.text = glmTextWeights(config, n);
    p.vision = glmVisionWeights(config);
    p.weightBytesByPrecision = bytesByPrecision(p.text, p.vision, fileType);
    p.kvHeadsPerRank = t.numKvHeads >= n ? t.numKvHeads / n : 1;
    // KvBlockPool::bytesPerBlock per token: keys and values of every layer, f32.
    p.kvBytesPerToken = 2 * t.numLayers * p.kvHeadsPerRank * t.headDim * int64_t(sizeof(float));
    return p;
}

GlmSummary summarizeGlm(const GlmConfig& config, std::optional<DType> fileType) {
    GlmSummary s;
    s.config = config;
    s.fileType = fileType;
    s.text = glmTextWeights(config, 1);
    s.vision = glmVisionWeights(config);
    s.weightBytesByPrecision = bytesByPrecision(s.text, s.vision, fileType);
    const GlmTextConfig& t = config.text;
    s.kvBytesPerToken = 2 * t.numLayers * t.numKvHeads * t.headDim * int64_t(sizeof(float));
    for (int n : {1, 2}) {
        auto p = glmShardPlan(config, n, fileType);
        if (p) s.tensorParallel.push_back(std::move(*p));
    }
    return s;
}

Result<GlmSummary> summarizeGlmJson(const std::string& json, const std::string& source) {
    auto c = glmConfigFromJson(json, source);
    if (!c) return c.error();
    const nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
    return summarizeGlm(*c, j.is_object() ? fileTypeFromJson(j) : std::nullopt);
}

Result<GlmSummary> summarizeGlmFolder(const std::string& dir) {
    namespace fs = std::filesystem;
    auto c = glmConfigFromFolder(dir);  // config.json + generation_config.json's stop tokens
    if (!c) return c.error();
    std::ifstream f(fs::path(dir) / "config.json");
    std::stringstream ss;
    ss << f.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
    return summarizeGlm(*c, j.is_object() ? fileTypeFromJson(j) : std::nullopt);
}

}  // namespace wb
