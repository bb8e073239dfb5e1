#include "models/glm/glm_gguf_export.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/weight_matrix.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "formats/gguf_writer.h"
#include "formats/kquant_encode.h"
#include "formats/safetensors.h"
#include "models/glm/glm_config.h"

namespace wb {

namespace fs = std::filesystem;
using nlohmann::json;

uint32_t llamaFileType(DType t) {
    switch (t) {
        case DType::F32: return 0;
        case DType::F16: return 1;
        case DType::Q4_0: return 2;
        case DType::Q8_0: return 7;
        case DType::BF16: return 32;
        case DType::Q4_K: return 15;  // MOSTLY_Q4_K_M: Q4_K is how GlmGgufOptions asks for that recipe
        default: return 1;
    }
}

namespace {

/// Values [first, first + n) of a stored tensor as f32.
void readValues(const TensorInfo& t, int64_t first, int64_t n, float* dst) {
    switch (t.dtype) {
        case DType::F32:
            std::memcpy(dst, t.data + first * 4, size_t(n) * 4);
            break;
        case DType::F16: {
            const auto* s = reinterpret_cast<const uint16_t*>(t.data) + first;
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16ToFp32(s[i]);
            break;
        }
        case DType::BF16: {
            const auto* s = reinterpret_cast<const uint16_t*>(t.data) + first;
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16ToFp32(s[i]);
            break;
        }
        default:
            std::fill(dst, dst + n, 0.0f);  // refused before a producer is made
            break;
    }
}

/// The type a tensor is stored in: 1-D stays F32; a block type needs whole blocks per row, else F16.
DType storeTypeFor(DType requested, const std::vector<int64_t>& shape, const std::string& ggufName, int numLayers) {
    if (shape.size() <= 1) return DType::F32;
    const int64_t cols = shape.back();
    if (requested == DType::Q4_K) {  // the Q4_K_M mix, by tensor and layer
        int layer = -1;
        if (ggufName.rfind("blk.", 0) == 0) layer = std::atoi(ggufName.c_str() + 4);
        return q4KMTypeFor(ggufName, layer, numLayers, cols);
    }
    if (dtypeBlockSize(requested) > 1 && cols % dtypeBlockSize(requested) != 0) return DType::F16;
    return requested;
}

/// Fills one output row (`cols` values) of row `r`.
using RowSource = std::function<void(int64_t r, float* dst)>;

/// Producer encoding `rows` x `cols` values row by row (rows split over up to 4 threads for big tensors).
TensorProducer makeRowProducer(int64_t rows, int64_t cols, DType store, RowSource source, std::string name) {
    return [=](uint8_t* dst, size_t numBytes) -> Result<void> {
        const int64_t rowBytes = dtypeRowBytes(store, cols);
        if (size_t(rows * rowBytes) != numBytes) return makeError("internal: size mismatch writing " + name);
        auto work = [&](int64_t r0, int64_t r1) {
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t r = r0; r < r1; ++r) {
                source(r, row.data());
                quantizeRow(store, row.data(), dst + r * rowBytes, cols);
            }
        };
        splitAcrossThreads(rows, rows * cols < (1 << 20) ? 1 : std::min(ThreadPool::hardwareThreads(), 4), work);
        return {};
    };
}

/// Adds `src` under `ggufName` as it is (rows = first dimension, the rest flattened), in `requested` type.
Result<void> addPlain(GgufWriter& w, const TensorInfo& src, const std::string& ggufName, DType requested,
                      int numLayers = 0, std::vector<int64_t> rowSource = {}) {
    const DType store = storeTypeFor(requested, src.shape, ggufName, numLayers);
    const int64_t cols = src.shape.empty() ? 1 : src.shape.back();
    const int64_t rows = cols == 0 ? 0 : src.numElements() / cols;
    const TensorInfo* t = &src;
    RowSource source;
    if (rowSource.empty()) {
        source = [t, cols](int64_t r, float* dst) { readValues(*t, r * cols, cols, dst); };
    } else if (src.shape.size() == 1) {  // a bias: permute its values (one F32 row)
        source = [t, cols, rowSource](int64_t, float* dst) {
            for (int64_t i = 0; i < cols; ++i) readValues(*t, rowSource[size_t(i)], 1, dst + i);
        };
    } else {
        source = [t, cols, rowSource](int64_t r, float* dst) { readValues(*t, rowSource[size_t(r)] * cols, cols, dst); };
    }
    TensorProducer rowsOut = makeRowProducer(rows, cols, store, std::move(source), ggufName);
    // Once written, the source's pages are dropped from this process (they are the file's, read again if touched):
    // converting a 9B folder then holds one tensor at a time, not every mapped shard.
    return w.addTensor(ggufName, store, src.shape, [t, rowsOut](uint8_t* dst, size_t numBytes) -> Result<void> {
        WB_TRY(rowsOut(dst, numBytes));
        MappedFile::releasePages(t->data, size_t(t->numBytes));
        return {};
    });
}

Result<void> checkReadable(const TensorInfo& t) {
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
        return makeError(t.file + ": tensor " + t.name + " is " + std::string(dtypeName(t.dtype)) +
                         "; only F32, F16 and BF16 checkpoints are converted");
    return {};
}

Result<std::string> readText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Result<json> readJson(const std::string& path) {
    auto text = readText(path);
    if (!text) return text.error();
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return makeError(path + ": not a JSON object");
    return j;
}

/// tokenizer.ggml.* from tokenizer.json (byte-level BPE) as convert_hf_to_gguf.py writes them for GLM-4: model
/// "gpt2", pre-tokenizer "glm4", every id up to the model's vocabulary (ids the tokenizer lacks become
/// "[PAD<id>]", unused), added special tokens as control tokens, and bos [gMASK], eos / unk <|endoftext|>,
/// eot <|user|>.
Result<void> addTokenizer(GgufWriter& w, const std::string& dir, int64_t vocabSize) {
    auto tj = readJson(dir + "/tokenizer.json");
    if (!tj) return tj.error();
    const json& model = (*tj)["model"];
    if (!model.is_object() || !model.contains("vocab") || !model["vocab"].is_object())
        return makeError(dir + "/tokenizer.json: no model.vocab (a byte-level BPE tokenizer is needed)");
    std::vector<std::string> tokens(static_cast<size_t>(vocabSize));
    std::vector<double> types(size_t(vocabSize), 0);
    auto put = [&](int64_t id, const std::string& piece, int type) {
        if (id < 0 || id >= vocabSize) return;
        tokens[size_t(id)] = piece;
        types[size_t(id)] = type;
    };
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it)
        if (it.value().is_number_integer()) put(it.value().get<int64_t>(), it.key(), 1);
    std::map<std::string, int64_t> added;
    if (tj->contains("added_tokens") && (*tj)["added_tokens"].is_array()) {
        for (const auto& a : (*tj)["added_tokens"]) {
            if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["id"].is_number_integer() ||
                !a["content"].is_string())
                continue;
            const bool special = a.value("special", false);
            // llama.cpp token types: 1 normal, 3 control, 4 user-defined, 5 unused.
            put(a["id"].get<int64_t>(), a["content"].get<std::string>(), special ? 3 : 4);
            added[a["content"].get<std::string>()] = a["id"].get<int64_t>();
        }
    }
    for (int64_t i = 0; i < vocabSize; ++i) {
        if (types[size_t(i)] == 0) {
            tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
            types[size_t(i)] = 5;
        }
    }
    std::vector<std::string> merges;
    if (model.contains("merges") && model["merges"].is_array()) {
        for (const auto& m : model["merges"]) {
            if (m.is_string()) merges.push_back(m.get<std::string>());
            else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
                merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        }
    }
    w.setString("tokenizer.ggml.model", "gpt2");
    w.setString("tokenizer.ggml.pre", "glm4");
    w.setStringArray("tokenizer.ggml.tokens", std::move(tokens));
    w.setNumberArray("tokenizer.ggml.token_type", GgufType::I32, std::move(types));
    w.setStringArray("tokenizer.ggml.merges", std::move(merges));
    auto id = [&](const char* content) -> int64_t {
        auto it = added.find(content);
        return it == added.end() ? -1 : it->second;
    };
    if (id("<|endoftext|>") >= 0) {
        w.setU32("tokenizer.ggml.bos_token_id", uint32_t(id("<|endoftext|>")));  // as the converter sets it (unused:
                                                                                  // add_bos_token is false)
        w.setU32("tokenizer.ggml.eos_token_id", uint32_t(id("<|endoftext|>")));
        w.setU32("tokenizer.ggml.unknown_token_id", uint32_t(id("<|endoftext|>")));
        w.setU32("tokenizer.ggml.padding_token_id", uint32_t(id("<|endoftext|>")));
    }
    if (id("<|user|>") >= 0) w.setU32("tokenizer.ggml.eot_token_id", uint32_t(id("<|user|>")));
    bool addBos = false;
    std::string chatTemplate;
    if (auto tc = readJson(dir + "/tokenizer_config.json")) {
        if ((*tc).contains("add_bos_token") && (*tc)["add_bos_token"].is_boolean())
            addBos = (*tc)["add_bos_token"].get<bool>();
        if ((*tc).contains("chat_template") && (*tc)["chat_template"].is_string())
            chatTemplate = (*tc)["chat_template"].get<std::string>();
    }
    if (auto jinja = readText(dir + "/chat_template.jinja")) chatTemplate = *jinja;
    w.setBool("tokenizer.ggml.add_bos_token", addBos);
    if (!chatTemplate.empty()) w.setString("tokenizer.chat_template", chatTemplate);
    return {};
}

struct Names {
    std::string text;    // "model.language_model." or "model."
    std::string vision;  // "model.visual." or "visual."
};

Names detectNames(const SafetensorsSet& st) {
    Names n{"model.", "visual."};
    if (st.find("model.language_model.embed_tokens.weight")) n.text = "model.language_model.";
    if (st.find("model.visual.patch_embed.proj.weight")) n.vision = "model.visual.";
    return n;
}

Result<const TensorInfo*> need(const SafetensorsSet& st, const std::string& dir, const std::string& name) {
    const TensorInfo* t = st.find(name);
    if (!t) return makeError(dir + ": tensor " + name + " is missing");
    WB_TRY(checkReadable(*t));
    return t;
}

Result<int> writeText(const SafetensorsSet& st, const GlmConfig& cfg, const std::string& dir, const Names& n,
                      const std::string& path, const GlmGgufOptions& o) {
    const GlmTextConfig& c = cfg.text;
    GgufWriter w;
    w.setString("general.architecture", "glm4");
    w.setString("general.type", "model");
    w.setString("general.name", o.name.empty() ? fs::path(dir).filename().string() : o.name);
    w.setU32("general.file_type", llamaFileType(o.textType));
    w.setU32("general.quantization_version", 2);
    w.setU32("glm4.vocab_size", uint32_t(c.vocabSize));
    w.setU32("glm4.context_length", uint32_t(c.maxContext));
    w.setU32("glm4.embedding_length", uint32_t(c.dim));
    w.setU32("glm4.block_count", uint32_t(c.numLayers));
    w.setU32("glm4.feed_forward_length", uint32_t(c.ffnDim));
    w.setU32("glm4.attention.head_count", uint32_t(c.numHeads));
    w.setU32("glm4.attention.head_count_kv", uint32_t(c.numKvHeads));
    w.setU32("glm4.attention.key_length", uint32_t(c.headDim));
    w.setU32("glm4.attention.value_length", uint32_t(c.headDim));
    w.setF32("glm4.attention.layer_norm_rms_epsilon", c.normEps);
    w.setF32("glm4.rope.freq_base", c.ropeTheta);
    // Partial rotary: llama.cpp rotates the first rope.dimension_count dims of each head in adjacent pairs, which
    // is GLM's interleaved layout, so Q/K rows are written as HF has them (no permutation, unlike Llama).
    w.setU32("glm4.rope.dimension_count", uint32_t(c.rotaryDim));
    if (cfg.hasVision) {
        // GLM-4.1V's M-RoPE sections (pairs per temporal / height / width axis), padded to four as llama.cpp reads.
        w.setNumberArray("glm4.rope.dimension_sections", GgufType::I32,
                         {double(c.mropeSection[0]), double(c.mropeSection[1]), double(c.mropeSection[2]), 0.0});
    }
    WB_TRY(addTokenizer(w, dir, c.vocabSize));

    const DType type = o.textType;
    auto add = [&](const std::string& hf, const std::string& gg, std::vector<int64_t> rows = {}) -> Result<void> {
        auto t = need(st, dir, hf);
        if (!t) return t.error();
        return addPlain(w, **t, gg, type, int(c.numLayers), std::move(rows));
    };
    // GLM-4.1V: llama.cpp's M-RoPE kernel rotates NeoX halves, so the converter reorders each head's rotary rows of
    // Q and K from GLM's interleaved pairs to [even dims; odd dims] (Glm4Model.normal_to_neox).
    auto neoxRows = [&](int64_t heads) {
        std::vector<int64_t> src;
        if (!cfg.hasVision) return src;
        src.resize(size_t(heads * c.headDim));
        for (int64_t h = 0; h < heads; ++h) {
            for (int64_t i = 0; i < c.headDim; ++i) src[size_t(h * c.headDim + i)] = h * c.headDim + i;
            for (int64_t i = 0; i < c.rotaryDim / 2; ++i) {
                src[size_t(h * c.headDim + i)] = h * c.headDim + 2 * i;
                src[size_t(h * c.headDim + c.rotaryDim / 2 + i)] = h * c.headDim + 2 * i + 1;
            }
        }
        return src;
    };
    WB_TRY(add(n.text + "embed_tokens.weight", "token_embd.weight"));
    for (int64_t l = 0; l < c.numLayers; ++l) {
        const std::string p = n.text + "layers." + std::to_string(l) + ".";
        const std::string b = "blk." + std::to_string(l) + ".";
        WB_TRY(add(p + "input_layernorm.weight", b + "attn_norm.weight"));
        for (const char* x : {"q", "k", "v"}) {
            const std::string xs = x;
            const auto rows = xs == "q" ? neoxRows(c.numHeads) : xs == "k" ? neoxRows(c.numKvHeads)
                                                                          : std::vector<int64_t>{};
            WB_TRY(add(p + "self_attn." + x + "_proj.weight", b + "attn_" + x + ".weight", rows));
            if (c.attentionBias) WB_TRY(add(p + "self_attn." + x + "_proj.bias", b + "attn_" + x + ".bias", rows));
        }
        WB_TRY(add(p + "self_attn.o_proj.weight", b + "attn_output.weight"));
        // GLM-4's sandwich norms: post_self_attn_layernorm after attention, post_attention_layernorm before the MLP
        // (llama.cpp's ffn_norm), post_mlp_layernorm after it.
        WB_TRY(add(p + "post_self_attn_layernorm.weight", b + "post_attention_norm.weight"));
        WB_TRY(add(p + "post_attention_layernorm.weight", b + "ffn_norm.weight"));
        // The fused [gate; up] rows stay one tensor: llama.cpp's glm4 ffn_up is n_ff * 2 rows, split by SwiGLU.
        WB_TRY(add(p + "mlp.gate_up_proj.weight", b + "ffn_up.weight"));
        WB_TRY(add(p + "mlp.down_proj.weight", b + "ffn_down.weight"));
        WB_TRY(add(p + "post_mlp_layernorm.weight", b + "post_ffw_norm.weight"));
    }
    WB_TRY(add(n.text + "norm.weight", "output_norm.weight"));
    if (st.find("lm_head.weight")) WB_TRY(add("lm_head.weight", "output.weight"));
    else if (!c.tiedEmbeddings) return makeError(dir + ": tensor lm_head.weight is missing");
    const int count = int(w.tensorCount());
    if (fs::path(path).has_parent_path()) {
        std::error_code ec;
        fs::create_directories(fs::path(path).parent_path(), ec);
    }
    WB_TRY(w.write(path));
    return count;
}

Result<int> writeMmproj(const SafetensorsSet& st, const GlmConfig& cfg, const std::string& dir, const Names& n,
                        const std::string& path, const GlmGgufOptions& o) {
    const GlmVisionConfig& v = cfg.vision;
    GgufWriter w;
    w.setString("general.architecture", "clip");
    w.setString("general.type", "mmproj");
    w.setString("general.name", (o.name.empty() ? fs::path(dir).filename().string() : o.name) + " mmproj");
    w.setU32("general.file_type", llamaFileType(o.visionType));
    w.setU32("general.quantization_version", 2);
    w.setBool("clip.has_vision_encoder", true);
    w.setString("clip.projector_type", "glm4v");
    w.setU32("clip.vision.image_size", uint32_t(v.imageSize));
    w.setU32("clip.vision.patch_size", uint32_t(v.patchSize));
    w.setU32("clip.vision.embedding_length", uint32_t(v.hiddenSize));
    w.setU32("clip.vision.feed_forward_length", uint32_t(v.intermediateSize));
    w.setU32("clip.vision.projection_dim", uint32_t(v.outHiddenSize));
    w.setU32("clip.vision.block_count", uint32_t(v.depth));
    w.setU32("clip.vision.attention.head_count", uint32_t(v.numHeads));
    w.setF32("clip.vision.attention.layer_norm_epsilon", v.normEps);
    w.setU32("clip.vision.spatial_merge_size", uint32_t(v.spatialMergeSize));
    w.setBool("clip.use_silu", true);
    std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073}, stdv = {0.26862954, 0.26130258, 0.27577711};
    if (auto pp = readJson(dir + "/preprocessor_config.json")) {
        auto vec3 = [&](const char* key, std::vector<double>& out) {
            if (!(*pp).contains(key) || !(*pp)[key].is_array() || (*pp)[key].size() != 3) return;
            for (size_t i = 0; i < 3; ++i)
                if ((*pp)[key][i].is_number()) out[i] = (*pp)[key][i].get<double>();
        };
        vec3("image_mean", mean);
        vec3("image_std", stdv);
        // The resize budget (HF's size.shortest_edge / longest_edge, or min_pixels / max_pixels), as llama.cpp's
        // image_min_pixels / image_max_pixels keys.
        auto pixels = [&](const char* sizeKey, const char* oldKey, const char* ggufKey) {
            const json* v = nullptr;
            if ((*pp).contains("size") && (*pp)["size"].is_object() && (*pp)["size"].contains(sizeKey))
                v = &(*pp)["size"][sizeKey];
            else if ((*pp).contains(oldKey))
                v = &(*pp)[oldKey];
            if (v && v->is_number_integer() && v->get<int64_t>() > 0 && v->get<int64_t>() < (int64_t(1) << 31))
                w.setU32(ggufKey, uint32_t(v->get<int64_t>()));
        };
        pixels("shortest_edge", "min_pixels", "clip.vision.image_min_pixels");
        pixels("longest_edge", "max_pixels", "clip.vision.image_max_pixels");
    }
    w.setNumberArray("clip.vision.image_mean", GgufType::F32, mean);
    w.setNumberArray("clip.vision.image_std", GgufType::F32, stdv);

    const DType type = o.visionType;
    auto add = [&](const std::string& hf, const std::string& gg, DType t = DType::F32, bool useType = true)
        -> Result<void> {
        auto src = need(st, dir, n.vision + hf);
        if (!src) return src.error();
        return addPlain(w, **src, gg, useType ? type : t);
    };
    // Conv3d [out, in, t=2, p, p] → two Conv2d kernels, one per temporal slice (a still image is two equal frames,
    // so llama.cpp sums the two convolutions).
    {
        auto pe = need(st, dir, n.vision + "patch_embed.proj.weight");
        if (!pe) return pe.error();
        const TensorInfo* t = *pe;
        if (t->shape.size() != 5 || t->shape[2] != 2)
            return makeError(t->file + ": " + t->name + " is " + t->shapeString() + ", not [out, in, 2, p, p]");
        const int64_t O = t->shape[0], C = t->shape[1], T = t->shape[2], H = t->shape[3], W = t->shape[4];
        for (int64_t slice = 0; slice < 2; ++slice) {
            const std::string name = slice == 0 ? "v.patch_embd.weight" : "v.patch_embd.weight.1";
            // Convolution kernels stay F16 (ggml's im2col path takes F16 / F32 kernels).
            const DType store = type == DType::F32 ? DType::F32 : DType::F16;
            RowSource src = [t, C, T, H, W, slice](int64_t r, float* dst) {
                // Output row r = (o, c, h): W values.
                const int64_t h = r % H, c = (r / H) % C, oo = r / (H * C);
                readValues(*t, (((oo * C + c) * T + slice) * H + h) * W, W, dst);
            };
            WB_TRY(w.addTensor(name, store, {O, C, H, W}, makeRowProducer(O * C * H, W, store, std::move(src), name)));
        }
    }
    WB_TRY(add("patch_embed.proj.bias", "v.patch_embd.bias"));
    WB_TRY(add("post_conv_layernorm.weight", "v.pre_ln.weight"));
    WB_TRY(add("embeddings.position_embedding.weight", "v.position_embd.weight", DType::F32, false));
    for (int64_t l = 0; l < v.depth; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        const std::string b = "v.blk." + std::to_string(l) + ".";
        WB_TRY(add(p + "norm1.weight", b + "ln1.weight"));
        WB_TRY(add(p + "attn.qkv.weight", b + "attn_qkv.weight"));
        if (v.attentionBias) WB_TRY(add(p + "attn.qkv.bias", b + "attn_qkv.bias"));
        WB_TRY(add(p + "attn.proj.weight", b + "attn_out.weight"));
        if (v.attentionBias && st.find(n.vision + p + "attn.proj.bias"))
            WB_TRY(add(p + "attn.proj.bias", b + "attn_out.bias"));
        WB_TRY(add(p + "norm2.weight", b + "ln2.weight"));
        WB_TRY(add(p + "mlp.gate_proj.weight", b + "ffn_gate.weight"));
        WB_TRY(add(p + "mlp.up_proj.weight", b + "ffn_up.weight"));
        WB_TRY(add(p + "mlp.down_proj.weight", b + "ffn_down.weight"));
    }
    WB_TRY(add("post_layernorm.weight", "v.post_ln.weight"));
    // The 2x2 downsampling convolution is llama.cpp's patch merger; the merger MLP is mm.model.fc (proj),
    // mm.post_norm (LayerNorm), then the SwiGLU mm.gate / mm.up / mm.down.
    WB_TRY(add("downsample.weight", "mm.patch_merger.weight", type == DType::F32 ? DType::F32 : DType::F16, false));
    WB_TRY(add("downsample.bias", "mm.patch_merger.bias"));
    WB_TRY(add("merger.proj.weight", "mm.model.fc.weight"));
    WB_TRY(add("merger.post_projection_norm.weight", "mm.post_norm.weight"));
    WB_TRY(add("merger.post_projection_norm.bias", "mm.post_norm.bias"));
    WB_TRY(add("merger.gate_proj.weight", "mm.gate.weight"));
    WB_TRY(add("merger.up_proj.weight", "mm.up.weight"));
    WB_TRY(add("merger.down_proj.weight", "mm.down.weight"));
    const int count = int(w.tensorCount());
    if (fs::path(path).has_parent_path()) {
        std::error_code ec;
        fs::create_directories(fs::path(path).parent_path(), ec);
    }
    WB_TRY(w.write(path));
    return count;
}

bool supportedType(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 || t == DType::Q4_0 ||
           t == DType::Q4_K;
}

}  // namespace

Result<GlmGgufResult> writeGlmGguf(const std::string& hfDir, const std::string& textPath,
                                   const std::string& mmprojPath, const GlmGgufOptions& options) {
    if (!supportedType(options.textType) || !supportedType(options.visionType))
        return makeError("GGUF export: weight types are f32, f16, bf16, q8_0 or (text) q4_0 / q4_k_m");
    if (options.visionType == DType::Q4_K || options.visionType == DType::Q4_0)
        return makeError("GGUF export: the mmproj file is f32, f16, bf16 or q8_0");
    auto cfg = glmConfigFromFolder(hfDir);
    if (!cfg) return cfg.error();
    auto st = SafetensorsSet::openFolder(hfDir);
    if (!st) return st.error();
    const Names names = detectNames(**st);
    GlmGgufResult r;
    auto text = writeText(**st, *cfg, hfDir, names, textPath, options);
    if (!text) return text.error();
    r.textTensors = *text;
    if (!mmprojPath.empty()) {
        if (!cfg->hasVision) return makeError(hfDir + ": a GLM-4 text model has no vision tower for an mmproj file");
        auto mm = writeMmproj(**st, *cfg, hfDir, names, mmprojPath, options);
        if (!mm) return mm.error();
        r.visionTensors = *mm;
    }
    return r;
}

}  // namespace wb
