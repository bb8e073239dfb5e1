#include "models/glm/glm_gguf_source.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <cstring>
#include <map>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "formats/gguf.h"

namespace wb {

namespace {

Result<int64_t> needInt(const GgufFile& f, const std::string& key) {
    auto v = f.getInt(key);
    if (!v) return makeError(f.path() + ": metadata key " + key + " is missing or not an integer");
    if (*v <= 0 || *v > (int64_t(1) << 40)) return makeError(f.path() + ": " + key + " is out of range");
    return *v;
}

int32_t tokenId(const std::vector<std::string>* tokens, const char* content, int32_t fallback) {
    if (!tokens) return fallback;
    for (size_t i = 0; i < tokens->size(); ++i)
        if ((*tokens)[i] == content) return int32_t(i);
    return fallback;
}

/// HF name (prefix already removed) of a text tensor → llama.cpp's glm4 name.
std::string textName(const std::string& n) {
    static const std::map<std::string, std::string> kLayer = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_self_attn_layernorm.weight", "post_attention_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"post_mlp_layernorm.weight", "post_ffw_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"mlp.gate_up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    if (n == "embed_tokens.weight") return "token_embd.weight";
    if (n == "norm.weight") return "output_norm.weight";
    if (n.rfind("layers.", 0) == 0) {
        const size_t dot = n.find('.', 7);
        if (dot == std::string::npos) return {};
        auto it = kLayer.find(n.substr(dot + 1));
        if (it == kLayer.end()) return {};
        return "blk." + n.substr(7, dot - 7) + "." + it->second;
    }
    return {};
}

/// HF name (prefix removed) of a vision tensor → the mmproj name.
std::string visionName(const std::string& n) {
    static const std::map<std::string, std::string> kTop = {
        {"patch_embed.proj.bias", "v.patch_embd.bias"},
        {"post_conv_layernorm.weight", "v.pre_ln.weight"},
        {"embeddings.position_embedding.weight", "v.position_embd.weight"},
        {"post_layernorm.weight", "v.post_ln.weight"},
        {"downsample.weight", "mm.patch_merger.weight"},
        {"downsample.bias", "mm.patch_merger.bias"},
        {"merger.proj.weight", "mm.model.fc.weight"},
        {"merger.post_projection_norm.weight", "mm.post_norm.weight"},
        {"merger.post_projection_norm.bias", "mm.post_norm.bias"},
        {"merger.gate_proj.weight", "mm.gate.weight"},
        {"merger.up_proj.weight", "mm.up.weight"},
        {"merger.down_proj.weight", "mm.down.weight"}};
    static const std::map<std::string, std::string> kBlock = {
        {"norm1.weight", "ln1.weight"},           {"norm2.weight", "ln2.weight"},
        {"attn.qkv.weight", "attn_qkv.weight"},   {"attn.qkv.bias", "attn_qkv.bias"},
        {"attn.proj.weight", "attn_out.weight"},  {"attn.proj.bias", "attn_out.bias"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    if (auto it = kTop.find(n); it != kTop.end()) return it->second;
    if (n.rfind("blocks.", 0) == 0) {
        const size_t dot = n.find('.', 7);
        if (dot == std::string::npos) return {};
        auto it = kBlock.find(n.substr(dot + 1));
        if (it == kBlock.end()) return {};
        return "v.blk." + n.substr(7, dot - 7) + "." + it->second;
    }
    return {};
}

bool stripPrefix(std::string& s, const char* prefix) {
    const std::string p = prefix;
    if (s.rfind(p, 0) != 0) return false;
    s = s.substr(p.size());
    return true;
}

struct State {
    std::shared_ptr<GgufFile> text, mmproj;
    TensorInfo patchKernel;  // the joined Conv3d kernel, f32
    std::vector<float> patchValues;
    std::map<std::string, TensorInfo> reordered;  // GLM-4.1V Q/K (and biases) back in GLM's interleaved rows
    std::vector<std::vector<uint8_t>> storage;
};

/// A GLM-4.1V text file holds each head's rotary Q/K rows as [even dims; odd dims] (llama.cpp's M-RoPE rotates
/// NeoX halves; its converter reorders them): copies of those tensors with GLM's interleaved order restored.
Result<void> restoreInterleavedRows(State& s, const GlmTextConfig& c) {
    const int64_t hd = c.headDim, half = c.rotaryDim / 2;
    for (int64_t l = 0; l < c.numLayers; ++l) {
        for (auto [x, heads] : {std::pair{"q", c.numHeads}, {"k", c.numKvHeads}}) {
            for (const char* kind : {"weight", "bias"}) {
                const std::string name = "blk." + std::to_string(l) + ".attn_" + x + "." + kind;
                const TensorInfo* t = s.text->findTensor(name);
                if (!t) continue;
                const int64_t rows = heads * hd;
                if (t->shape.empty() || t->shape[0] != rows || t->numBytes % rows != 0)
                    return makeError(s.text->path() + ": tensor " + name + " has shape " + t->shapeString() +
                                     ", expected " + std::to_string(rows) + " rows");
                const int64_t rowBytes = t->numBytes / rows;  // a bias: one value per "row"
                std::vector<uint8_t> out(size_t(t->numBytes));
                for (int64_t h = 0; h < heads; ++h) {
                    for (int64_t i = 0; i < hd; ++i) {
                        int64_t src = i;  // GGUF row within the head for HF row i
                        if (i < 2 * half) src = (i % 2 == 0) ? i / 2 : half + i / 2;
                        std::memcpy(out.data() + (h * hd + i) * rowBytes, t->data + (h * hd + src) * rowBytes,
                                    size_t(rowBytes));
                    }
                }
                TensorInfo copy = *t;
                s.storage.push_back(std::move(out));
                copy.data = s.storage.back().data();
                copy.mapped = false;
                s.reordered[name] = copy;
            }
        }
    }
    return {};
}

/// Joins v.patch_embd.weight and v.patch_embd.weight.1 ([out, in, p, p] each) into [out, in, 2, p, p] f32.
Result<void> joinPatchKernel(State& s) {
    const TensorInfo* a = s.mmproj->findTensor("v.patch_embd.weight");
    const TensorInfo* b = s.mmproj->findTensor("v.patch_embd.weight.1");
    if (!a || !b) return makeError(s.mmproj->path() + ": tensor v.patch_embd.weight or v.patch_embd.weight.1 is missing");
    if (a->shape.size() != 4 || a->shape != b->shape || a->dtype != b->dtype)
        return makeError(s.mmproj->path() + ": v.patch_embd.weight and .weight.1 must be two equal [out, in, p, p] kernels");
    if (a->dtype != DType::F32 && a->dtype != DType::F16 && a->dtype != DType::BF16)
        return makeError(s.mmproj->path() + ": v.patch_embd.weight must be F32, F16 or BF16");
    const int64_t O = a->shape[0], C = a->shape[1], H = a->shape[2], W = a->shape[3], plane = H * W;
    s.patchValues.resize(size_t(O * C * 2 * plane));
    std::vector<float> row(static_cast<size_t>(plane));
    for (int64_t o = 0; o < O; ++o) {
        for (int64_t c = 0; c < C; ++c) {
            for (int64_t t = 0; t < 2; ++t) {
                const TensorInfo* src = t == 0 ? a : b;
                const int64_t first = (o * C + c) * plane;
                dequantizeRow(src->dtype, src->data + first * (src->numBytes / src->numElements()), row.data(), plane);
                std::copy(row.begin(), row.end(), s.patchValues.begin() + ((o * C + c) * 2 + t) * plane);
            }
        }
    }
    s.patchKernel.name = "v.patch_embd.weight + v.patch_embd.weight.1";
    s.patchKernel.dtype = DType::F32;
    s.patchKernel.shape = {O, C, 2, H, W};
    s.patchKernel.data = reinterpret_cast<const uint8_t*>(s.patchValues.data());
    s.patchKernel.numBytes = int64_t(s.patchValues.size() * 4);
    s.patchKernel.file = s.mmproj->path();
    s.patchKernel.mapped = false;
    return {};
}

}  // namespace

Result<std::string> pairedMmproj(const std::string& textPath, const std::string& requested) {
    namespace fs = std::filesystem;
    if (!requested.empty()) return requested;
    auto t = GgufFile::open(textPath);
    if (!t) return t.error();
    if (!(*t)->getNumberArray("glm4.rope.dimension_sections")) return std::string();
    std::vector<std::string> found;
    std::error_code ec;
    const fs::path dir = fs::path(textPath).parent_path().empty() ? fs::path(".") : fs::path(textPath).parent_path();
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string();
        std::string lower = name;
        for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (lower.rfind("mmproj", 0) != 0 || lower.size() < 5 || lower.substr(lower.size() - 5) != ".gguf") continue;
        auto m = GgufFile::open(e.path().string());
        if (m && (*m)->getString("clip.projector_type").value_or("") == "glm4v") found.push_back(e.path().string());
    }
    if (found.size() > 1) {
        std::sort(found.begin(), found.end());
        std::string list;
        for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
        return makeError(textPath + ": several glm4v mmproj files beside it (" + list + "); choose one with --mmproj");
    }
    return found.empty() ? std::string() : found.front();
}

bool isGlmGguf(const std::string& path) {
    auto f = GgufFile::open(path);
    return f && (*f)->getString("general.architecture").value_or("") == "glm4";
}

Result<GlmConfig> glmConfigFromGguf(const GgufFile& text, const GgufFile* mm) {
    const std::string arch = text.getString("general.architecture").value_or("");
    if (arch != "glm4")
        return makeError(text.path() + ": general.architecture is '" + arch + "', not glm4 (llama.cpp's GLM-4)");
    GlmConfig c;
    c.architecture = mm ? "glm4v" : "glm4";
    GlmTextConfig& t = c.text;
    auto get = [&](const char* key, int64_t& dst) -> Result<void> {
        auto v = needInt(text, std::string("glm4.") + key);
        if (!v) return v.error();
        dst = *v;
        return {};
    };
    WB_TRY(get("embedding_length", t.dim));
    WB_TRY(get("block_count", t.numLayers));
    WB_TRY(get("feed_forward_length", t.ffnDim));
    WB_TRY(get("attention.head_count", t.numHeads));
    WB_TRY(get("attention.head_count_kv", t.numKvHeads));
    if (t.numLayers > 1024) return makeError(text.path() + ": glm4.block_count is out of range");
    t.headDim = text.getInt("glm4.attention.key_length").value_or(t.dim / t.numHeads);
    t.maxContext = text.getInt("glm4.context_length").value_or(8192);
    t.normEps = float(text.getFloat("glm4.attention.layer_norm_rms_epsilon").value_or(1e-5));
    t.ropeTheta = float(text.getFloat("glm4.rope.freq_base").value_or(10000.0));
    t.rotaryDim = text.getInt("glm4.rope.dimension_count").value_or(t.headDim / 2);
    t.partialRotaryFactor = t.headDim > 0 ? float(t.rotaryDim) / float(t.headDim) : 0.0f;
    // Products of these sizes index tensors: bound each (a real model's are far below) so none overflows.
    constexpr int64_t kMaxSize = int64_t(1) << 20;
    for (int64_t x : {t.dim, t.ffnDim, t.numHeads, t.numKvHeads, t.headDim, t.rotaryDim})
        if (x > kMaxSize) return makeError(text.path() + ": a glm4.* size is out of range (over 2^20)");
    if (t.maxContext <= 0 || t.maxContext > (int64_t(1) << 26))
        return makeError(text.path() + ": glm4.context_length is out of range");
    const auto* tokens = text.getStringArray("tokenizer.ggml.tokens");
    const TensorInfo* embd = text.findTensor("token_embd.weight");
    if (!embd || embd->shape.size() != 2) return makeError(text.path() + ": tensor token_embd.weight is missing");
    t.vocabSize = embd->shape[0];
    t.attentionBias = text.findTensor("blk.0.attn_q.bias") != nullptr;
    t.tiedEmbeddings = text.findTensor("output.weight") == nullptr;
    if (mm) {
        const auto* sec = text.getNumberArray("glm4.rope.dimension_sections");
        if (!sec || sec->size() < 3)
            return makeError(text.path() + ": glm4.rope.dimension_sections (M-RoPE) is needed with an mmproj file");
        for (size_t i = 0; i < 3; ++i) t.mropeSection[i] = int64_t((*sec)[i]);
        const std::string proj = mm->getString("clip.projector_type").value_or("");
        if (proj != "glm4v")
            return makeError(mm->path() + ": clip.projector_type is '" + proj + "', not glm4v");
        c.hasVision = true;
        GlmVisionConfig& v = c.vision;
        auto vget = [&](const char* key, int64_t& dst) -> Result<void> {
            auto x = needInt(*mm, std::string("clip.vision.") + key);
            if (!x) return x.error();
            dst = *x;
            return {};
        };
        WB_TRY(vget("block_count", v.depth));
        WB_TRY(vget("embedding_length", v.hiddenSize));
        WB_TRY(vget("attention.head_count", v.numHeads));
        WB_TRY(vget("patch_size", v.patchSize));
        WB_TRY(vget("image_size", v.imageSize));
        WB_TRY(vget("projection_dim", v.outHiddenSize));
        WB_TRY(vget("feed_forward_length", v.intermediateSize));
        if (v.depth > 1024) return makeError(mm->path() + ": clip.vision.block_count is out of range");
        v.spatialMergeSize = mm->getInt("clip.vision.spatial_merge_size").value_or(2);
        for (int64_t x : {v.hiddenSize, v.numHeads, v.patchSize, v.imageSize, v.outHiddenSize, v.intermediateSize,
                          v.spatialMergeSize})
            if (x > kMaxSize) return makeError(mm->path() + ": a clip.vision.* size is out of range (over 2^20)");
        v.headDim = v.hiddenSize / v.numHeads;
        v.normEps = float(mm->getFloat("clip.vision.attention.layer_norm_epsilon").value_or(1e-5));
        v.attentionBias = mm->findTensor("v.blk.0.attn_qkv.bias") != nullptr;
        const TensorInfo* pos = mm->findTensor("v.position_embd.weight");
        if (pos && pos->shape.size() == 2 && pos->shape[0] != v.numPositions())
            return makeError(mm->path() + ": v.position_embd.weight has " + std::to_string(pos->shape[0]) +
                             " rows, clip.vision.image_size / patch_size gives " + std::to_string(v.numPositions()));
    }
    c.imageTokenId = tokenId(tokens, "<|image|>", c.imageTokenId);
    c.imageStartTokenId = tokenId(tokens, "<|begin_of_image|>", c.imageStartTokenId);
    c.imageEndTokenId = tokenId(tokens, "<|end_of_image|>", c.imageEndTokenId);
    c.videoStartTokenId = tokenId(tokens, "<|begin_of_video|>", c.videoStartTokenId);
    c.videoEndTokenId = tokenId(tokens, "<|end_of_video|>", c.videoEndTokenId);
    // generation_config.json's stops as llama.cpp keeps them: eos (<|endoftext|>), eot (<|user|>), and
    // <|observation|> where the vocabulary has it.
    for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
        if (auto id = text.getInt(key); id && *id >= 0 && *id < t.vocabSize) c.eosTokenIds.push_back(int32_t(*id));
    if (int32_t obs = tokenId(tokens, "<|observation|>", -1); obs >= 0) c.eosTokenIds.push_back(obs);
    WB_TRY(c.validate(text.path()));
    return c;
}

Result<GlmGgufSource> openGlmGguf(const std::string& textPath, const std::string& mmprojPath, bool loadTokenizer) {
    auto state = std::make_shared<State>();
    auto t = GgufFile::open(textPath);
    if (!t) return t.error();
    state->text = *t;
    if (!mmprojPath.empty()) {
        auto m = GgufFile::open(mmprojPath);
        if (!m) return m.error();
        state->mmproj = *m;
    }
    GlmGgufSource src;
    auto cfg = glmConfigFromGguf(*state->text, state->mmproj.get());
    if (!cfg) return cfg.error();
    src.config = *cfg;
    if (loadTokenizer) {
        auto tok = Tokenizer::fromGguf(*state->text);
        if (!tok) return tok.error();
        src.tokenizer = std::move(*tok);
    }
    if (state->mmproj) {
        const GgufFile& mm = *state->mmproj;
        src.processor.patchSize = int(src.config.vision.patchSize);
        src.processor.temporalPatchSize = int(src.config.vision.temporalPatchSize);
        src.processor.mergeSize = int(src.config.vision.spatialMergeSize);
        const auto* mean = mm.getNumberArray("clip.vision.image_mean");
        const auto* stdv = mm.getNumberArray("clip.vision.image_std");
        if (mean && mean->size() == 3)
            for (size_t i = 0; i < 3; ++i) src.processor.mean[i] = (*mean)[i];
        if (stdv && stdv->size() == 3)
            for (size_t i = 0; i < 3; ++i) src.processor.std[i] = (*stdv)[i];
        if (auto v = mm.getInt("clip.vision.image_min_pixels"); v && *v > 0) src.processor.minPixels = *v;
        if (auto v = mm.getInt("clip.vision.image_max_pixels"); v && *v > 0) src.processor.maxPixels = *v;
        WB_TRY(src.processor.validate(mm.path()));
        WB_TRY(joinPatchKernel(*state));
    }
    if (state->text->getNumberArray("glm4.rope.dimension_sections"))
        WB_TRY(restoreInterleavedRows(*state, src.config.text));
    State* s = state.get();
    src.lookup = [s](const std::string& hfName) -> const TensorInfo* {
        std::string n = hfName;
        if (n == "lm_head.weight") return s->text->findTensor("output.weight");
        if (stripPrefix(n, "model.language_model.") || stripPrefix(n, "model.")) {
            if (n.rfind("visual.", 0) != 0) {
                const std::string g = textName(n);
                if (auto it = s->reordered.find(g); it != s->reordered.end()) return &it->second;
                return g.empty() ? nullptr : s->text->findTensor(g);
            }
        }
        if (!s->mmproj) return nullptr;
        if (!stripPrefix(n, "visual.")) return nullptr;
        if (n == "patch_embed.proj.weight") return &s->patchKernel;
        const std::string g = visionName(n);
        return g.empty() ? nullptr : s->mmproj->findTensor(g);
    };
    src.keepAlive = state;
    return src;
}

}  // namespace wb
