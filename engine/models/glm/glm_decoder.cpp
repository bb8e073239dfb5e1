#include "models/glm/glm_decoder.h"

#include <map>

#include "formats/safetensors.h"

namespace wb {

namespace {

// GLM-4 / GLM-4.1V text model: `prefix` is "model." or "model.language_model." (the layouts both published).
TensorNames glmNames(const std::string& prefix) {
    TensorNames n;
    n.embedding = prefix + "embed_tokens.weight";
    n.outputNorm = prefix + "norm.weight";
    n.output = "lm_head.weight";
    n.layer = [prefix](int64_t i, const char* role) {
        static const std::map<std::string, std::string> m = {
            {"attn_norm", "input_layernorm.weight"},
            {"ffn_norm", "post_attention_layernorm.weight"},
            {"post_attn_norm", "post_self_attn_layernorm.weight"},
            {"post_ffn_norm", "post_mlp_layernorm.weight"},
            {"q", "self_attn.q_proj.weight"},
            {"k", "self_attn.k_proj.weight"},
            {"v", "self_attn.v_proj.weight"},
            {"o", "self_attn.o_proj.weight"},
            {"gate_up", "mlp.gate_up_proj.weight"},
            {"down", "mlp.down_proj.weight"},
            {"q_bias", "self_attn.q_proj.bias"},
            {"k_bias", "self_attn.k_proj.bias"},
            {"v_bias", "self_attn.v_proj.bias"}};
        return prefix + "layers." + std::to_string(i) + "." + m.at(role);
    };
    return n;
}

}  // namespace

ModelConfig configFromGlm(const GlmConfig& g) {
    const GlmTextConfig& t = g.text;
    ModelConfig c;
    c.architecture = g.architecture;
    c.name = g.architecture == "glm4v" ? "GLM-4.1V" : "GLM-4";
    c.dim = t.dim;
    c.numLayers = t.numLayers;
    c.numHeads = t.numHeads;
    c.numKvHeads = t.numKvHeads;
    c.headDim = t.headDim;
    c.ffnDim = t.ffnDim;
    c.vocabSize = t.vocabSize;
    c.maxContext = t.maxContext;
    c.normEps = t.normEps;
    c.ropeTheta = t.ropeTheta;
    c.qkvBias = t.attentionBias;
    c.tiedEmbeddings = t.tiedEmbeddings;
    c.generation.eosTokenIds = g.eosTokenIds;
    c.postNorms = true;
    c.fusedGateUp = true;
    c.interleavedRotary = true;
    c.rotaryDim = t.rotaryDim;
    c.mropeSection = t.mropeSection;
    if (g.hasVision) c.imageTokenId = g.imageTokenId;
    return c;
}

DecoderLayout glmDecoderLayout(const GlmConfig& glm) {
    DecoderLayout l;
    l.config = configFromGlm(glm);
    l.names = [](const SafetensorsSet& set) {
        return glmNames(set.find("model.language_model.embed_tokens.weight") ? "model.language_model." : "model.");
    };
    return l;
}

Result<DecoderLayout> glmDecoderLayoutFromFolder(const std::string& dir) {
    auto g = glmConfigFromFolder(dir);
    if (!g) return g.error();
    return glmDecoderLayout(*g);
}

}  // namespace wb
