#include "models/glm/glm_model.h"

#include "backend/cpu/dense_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "backend/cpu/cpu_ops.h"
#include "core/mapped_file.h"
#include "formats/safetensors.h"
#include "models/glm/glm_gguf_source.h"

namespace wb {

struct GlmModel::TextLayer {
    std::vector<float> inputNorm, postSelfAttnNorm, postAttnNorm, postMlpNorm;
    WeightMatrix wq, wk, wv, wo, wGateUp, wDown;
    std::vector<float> bq, bk, bv;
};

struct GlmModel::VisionBlock {
    std::vector<float> norm1, norm2, qkvBias;
    WeightMatrix qkv, proj, gate, up, down;
};

namespace {

// Finds tensors under the prefixes a checkpoint may use (the reference renamed "model.layers" to
// "model.language_model.layers" and "visual" to "model.visual"; both layouts are published).
struct TensorSource {
    /// The tensor under an HF name, or nullptr (a safetensors folder, or GGUF files read through HF names).
    std::function<const TensorInfo*(const std::string&)> lookup;
    std::shared_ptr<void> set;  // keeps the mapped files alive for the weights that point into them
    std::string dir;
    std::vector<std::string> textPrefixes, visionPrefixes;
    std::optional<DType> target;
    /// Without a target: F16 matrices become this type (the vision tower of an mmproj file: see loadWeights).
    std::optional<DType> f16Target;
    /// Drop a tensor's file pages once copied (mapped tensors only: a GGUF pair's reordered Q/K and joined patch
    /// kernel are heap copies, TensorInfo::mapped false, which MADV_DONTNEED would zero).
    bool releasePages = true;
    /// Move each matrix of at least hugePageMinBytes into huge-page memory (GlmLoadOptions::hugePages); its
    /// file pages are released.
    bool hugePages = false;
    int64_t hugePageMinBytes = 0;
    /// Interleave Q8_0, Q4_0 and Q4_K matrices for the AVX-512 generation kernel (GlmLoadOptions::interleaveBlocks).
    bool interleave = false;

    Result<const TensorInfo*> find(const std::vector<std::string>& prefixes, const std::string& name,
                                   const std::vector<int64_t>& shape) const {
        const TensorInfo* t = nullptr;
        for (const auto& p : prefixes)
            if ((t = lookup(p + name))) break;
        if (!t) return makeError(dir + ": missing tensor " + prefixes.front() + name);
        if (t->shape != shape) {
            TensorInfo want;
            want.shape = shape;
            return makeError(t->file + ": tensor " + t->name + " has shape " + t->shapeString() + ", expected " +
                             want.shapeString());
        }
        return t;
    }
    // A matrix of `rows` × (everything else) — Conv weights flatten their input dims in PyTorch order.
    Result<WeightMatrix> matrix(const std::vector<std::string>& prefixes, const std::string& name,
                                const std::vector<int64_t>& shape) const {
        auto t = find(prefixes, name, shape);
        if (!t) return t.error();
        TensorInfo flat = **t;
        int64_t cols = 1;
        for (size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
        flat.shape = {shape[0], cols};
        auto w = weightFromTensor(flat, set);
        if (!w) return makeError(flat.file + ": tensor " + flat.name + ": " + w.error().message);
        std::optional<DType> want = target;
        if (!want && f16Target && w->dtype == DType::F16) want = f16Target;
        WeightMatrix out;
        const bool converted = want && *want != w->dtype;
        if (converted) {
            auto conv = convertWeight(*w, *want);
            if (!conv) return makeError(flat.file + ": tensor " + flat.name + ": " + conv.error().message);
            out = std::move(*conv);
        } else {
            out = std::move(*w);
        }
        // A heap copy that the source keeps (a GGUF pair's reordered Q/K) stays where it is: moving it would hold
        // the matrix twice.
        const bool movable = converted || flat.mapped;
        const bool huge = hugePages && out.numBytes() >= hugePageMinBytes;
        if (movable && interleave && canInterleave(out)) interleaveBlocks(out, huge);
        else if (movable && huge) moveToHugePages(out);
        // A copy is what stays (converted, or moved to huge pages): the file's pages leave the process's memory
        // (they were counted in its RSS as long as they stayed mapped in, doubling a checkpoint's footprint).
        if (releasePages && flat.mapped && out.data != flat.data)
            MappedFile::releasePages(flat.data, size_t(flat.numBytes));
        return out;
    }
    Result<std::vector<float>> vector(const std::vector<std::string>& prefixes, const std::string& name,
                                      const std::vector<int64_t>& shape) const {
        auto t = find(prefixes, name, shape);
        if (!t) return t.error();
        const TensorInfo& ti = **t;
        std::vector<float> out(size_t(ti.numElements()));
        if (dtypeBlockSize(ti.dtype) != 1) {
            // A quantized vector (GGUF position embeddings in a Q8_0 file): whole rows of blocks.
            const int64_t cols = shape.back();
            if (cols % dtypeBlockSize(ti.dtype) != 0) return makeError(ti.file + ": tensor " + ti.name + ": block dtype");
            for (int64_t r = 0; r < ti.numElements() / cols; ++r)
                dequantizeRow(ti.dtype, ti.data + r * dtypeRowBytes(ti.dtype, cols), out.data() + r * cols, cols);
            return out;
        }
        dequantizeRow(ti.dtype, ti.data, out.data(), ti.numElements());
        if (releasePages) MappedFile::releasePages(ti.data, size_t(ti.numBytes));
        return out;
    }
};

void addBias(float* x, const std::vector<float>& b, int64_t rows) {
    const int64_t n = int64_t(b.size());
    for (int64_t r = 0; r < rows; ++r) cpu::addInPlace(x + r * n, b.data(), n);
}

// Interleaved rotary on the first 2 * invFreq.size() dims of each head: pair (2j, 2j + 1) turns by
// pos[axis[j]] * invFreq[j]. Angles in f32 as the reference computes them.
void ropeInterleaved(float* x, int64_t numHeads, int64_t headDim, const std::vector<float>& invFreq,
                     const std::vector<int>& axis, const int64_t pos[3]) {
    const size_t half = invFreq.size();
    float cs[512], sn[512];
    for (size_t j = 0; j < half && j < 512; ++j) {
        const float a = float(pos[axis[j]]) * invFreq[j];
        cs[j] = std::cos(a);
        sn[j] = std::sin(a);
    }
    for (int64_t h = 0; h < numHeads; ++h) {
        float* v = x + h * headDim;
        for (size_t j = 0; j < half; ++j) {
            const float a = v[2 * j], b = v[2 * j + 1];
            v[2 * j] = a * cs[j] - b * sn[j];
            v[2 * j + 1] = b * cs[j] + a * sn[j];
        }
    }
}

// PyTorch's cubic convolution weights (A = -0.75) for grid_sample's bicubic mode.
void cubicCoeffs(float t, float c[4]) {
    constexpr float A = -0.75f;
    auto conv1 = [&](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto conv2 = [&](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    c[0] = conv2(t + 1.0f);
    c[1] = conv1(t);
    c[2] = conv1(1.0f - t);
    c[3] = conv2(2.0f - t);
}

void layerNorm(const float* x, const float* w, const float* b, float eps, int64_t m, int64_t n, float* out) {
    for (int64_t r = 0; r < m; ++r) {
        const float* xr = x + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += xr[i];
        mean /= double(n);
        for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= double(n);
        const float inv = float(1.0 / std::sqrt(var + eps));
        float* o = out + r * n;
        for (int64_t i = 0; i < n; ++i) o[i] = float(xr[i] - mean) * inv * w[i] + b[i];
    }
}

}  // namespace

GlmModel::GlmModel() = default;
GlmModel::~GlmModel() = default;

Result<std::unique_ptr<GlmModel>> GlmModel::load(const std::string& dir, const GlmLoadOptions& options) {
    namespace fs = std::filesystem;
    std::unique_ptr<GlmModel> m(new GlmModel());
    auto cfg = glmConfigFromFolder(dir);
    if (!cfg) return cfg.error();
    m->m_config = *cfg;
    const GlmConfig& c = m->m_config;
    const GlmTextConfig& t = c.text;
    if (options.loadTokenizer) {
        auto tok = Tokenizer::fromHfFolder(dir);
        if (!tok) return tok.error();
        m->m_tokenizer = std::move(*tok);
        if (m->m_tokenizer->vocabSize() > t.vocabSize)
            return makeError(dir + ": tokenizer has " + std::to_string(m->m_tokenizer->vocabSize()) +
                             " tokens but the model's vocab_size is " + std::to_string(t.vocabSize));
    }
    if (c.hasVision) {
        const std::string pp = (fs::path(dir) / "preprocessor_config.json").string();
        std::error_code ec;
        if (fs::exists(pp, ec)) {
            auto p = loadGlm4vProcessorConfig(pp);
            if (!p) return p.error();
            m->m_processor = *p;
        }
        if (m->m_processor.patchSize != c.vision.patchSize ||
            m->m_processor.temporalPatchSize != c.vision.temporalPatchSize ||
            m->m_processor.mergeSize != c.vision.spatialMergeSize)
            return makeError(pp + ": patch_size/temporal_patch_size/merge_size differ from config.json's vision_config");
    }
    auto set = SafetensorsSet::openFolder(dir);
    if (!set) return set.error();
    m->m_source = *set;
    std::shared_ptr<SafetensorsSet> st = *set;
    TensorSource src{[st](const std::string& n) { return st->find(n); }, st, dir, {}, {}, options.weightType, {}};
    src.hugePages = options.hugePages;
    src.hugePageMinBytes = options.hugePageMinBytes;
    src.interleave = options.interleaveBlocks;
    if (c.hasVision) {
        src.textPrefixes = {"model.language_model.", "model."};
        src.visionPrefixes = {"model.visual.", "visual."};
    } else {
        src.textPrefixes = {"model."};
    }
    WB_TRY(m->loadWeights(&src));
    m->m_pool = std::make_unique<ThreadPool>(options.numThreads);
    return m;
}

Result<std::unique_ptr<GlmModel>> GlmModel::loadGguf(const std::string& textPath, const std::string& mmprojPath,
                                                     const GlmLoadOptions& options) {
    auto g = openGlmGguf(textPath, mmprojPath, options.loadTokenizer);
    if (!g) return g.error();
    std::unique_ptr<GlmModel> m(new GlmModel());
    m->m_config = g->config;
    m->m_processor = g->processor;
    m->m_tokenizer = std::move(g->tokenizer);
    if (m->m_tokenizer && m->m_tokenizer->vocabSize() > m->m_config.text.vocabSize)
        return makeError(textPath + ": tokenizer has " + std::to_string(m->m_tokenizer->vocabSize()) +
                         " tokens but token_embd.weight " + std::to_string(m->m_config.text.vocabSize) + " rows");
    m->m_source = g->keepAlive;
    TensorSource src{g->lookup, g->keepAlive, textPath, {"model.language_model."}, {"model.visual."},
                     options.weightType, {}};
    src.hugePages = options.hugePages;
    src.hugePageMinBytes = options.hugePageMinBytes;
    src.interleave = options.interleaveBlocks;
    WB_TRY(m->loadWeights(&src));
    m->m_pool = std::make_unique<ThreadPool>(options.numThreads);
    return m;
}

Result<void> GlmModel::loadWeights(const void* source) {
    const TensorSource& src = *static_cast<const TensorSource*>(source);
    GlmModel* m = this;
    const std::string& dir = src.dir;
    const GlmConfig& c = m->m_config;
    const GlmTextConfig& t = c.text;
    // The vision tower at INT8 keeps BF16 matrices: its GEMMs run over thousands of patches, where BF16 tiles
    // (AMX) are both faster and closer to the reference than per-row int8; other precisions as asked.
    // In the file's own types (no target), an F16 tower (llama.cpp's mmproj-f16, converted from the BF16
    // checkpoint) is held as BF16 too, as the HF folder's is: F16 has no tile path and ran its GEMMs at the f32
    // kernels' rate, 3x slower; the conversion is exact for values that came from BF16 (an mmproj made from an f32
    // checkpoint loses F16's three extra mantissa bits).
    TensorSource vsrc = src;
    vsrc.hugePages = false;
    vsrc.interleave = false;  // only many-patch GEMMs (AMX tiles), which the generation layout does not serve
    TensorSource esrc = src;  // the embedding table: a row per token, unless it is also the output matrix
    esrc.hugePages = src.hugePages && t.tiedEmbeddings;
    esrc.interleave = false;  // rows gathered by token
    if (src.target == DType::I8) vsrc.target = DType::BF16;
    if (!src.target) vsrc.f16Target = DType::BF16;
    const auto& TP = src.textPrefixes;
    const auto& VP = src.visionPrefixes;
    const int64_t q = t.numHeads * t.headDim, kv = t.numKvHeads * t.headDim;
#define WB_SET(dst, expr)           \
    {                               \
        auto r_ = (expr);           \
        if (!r_) return r_.error(); \
        dst = std::move(*r_);       \
    }
    WB_SET(m->m_embedding, esrc.matrix(TP, "embed_tokens.weight", {t.vocabSize, t.dim}))
    WB_SET(m->m_outputNorm, src.vector(TP, "norm.weight", {t.dim}))
    if (!t.tiedEmbeddings) WB_SET(m->m_output, src.matrix({""}, "lm_head.weight", {t.vocabSize, t.dim}))
    m->m_layers.resize(size_t(t.numLayers));
    for (int64_t i = 0; i < t.numLayers; ++i) {
        TextLayer& L = m->m_layers[size_t(i)];
        const std::string p = "layers." + std::to_string(i) + ".";
        WB_SET(L.inputNorm, src.vector(TP, p + "input_layernorm.weight", {t.dim}))
        WB_SET(L.postSelfAttnNorm, src.vector(TP, p + "post_self_attn_layernorm.weight", {t.dim}))
        WB_SET(L.postAttnNorm, src.vector(TP, p + "post_attention_layernorm.weight", {t.dim}))
        WB_SET(L.postMlpNorm, src.vector(TP, p + "post_mlp_layernorm.weight", {t.dim}))
        WB_SET(L.wq, src.matrix(TP, p + "self_attn.q_proj.weight", {q, t.dim}))
        WB_SET(L.wk, src.matrix(TP, p + "self_attn.k_proj.weight", {kv, t.dim}))
        WB_SET(L.wv, src.matrix(TP, p + "self_attn.v_proj.weight", {kv, t.dim}))
        WB_SET(L.wo, src.matrix(TP, p + "self_attn.o_proj.weight", {t.dim, q}))
        if (t.attentionBias) {
            WB_SET(L.bq, src.vector(TP, p + "self_attn.q_proj.bias", {q}))
            WB_SET(L.bk, src.vector(TP, p + "self_attn.k_proj.bias", {kv}))
            WB_SET(L.bv, src.vector(TP, p + "self_attn.v_proj.bias", {kv}))
        }
        WB_SET(L.wGateUp, src.matrix(TP, p + "mlp.gate_up_proj.weight", {2 * t.ffnDim, t.dim}))
        WB_SET(L.wDown, src.matrix(TP, p + "mlp.down_proj.weight", {t.dim, t.ffnDim}))
    }
    // inv_freq[j] = theta^(-2j / rotaryDim); pair j's position axis from the mrope sections.
    const int64_t half = t.rotaryDim / 2;
    if (half > 512) return makeError(dir + ": rotary dim " + std::to_string(t.rotaryDim) + " is too large");
    for (int64_t j = 0; j < half; ++j) {
        // In f32 throughout, as the reference: 1.0 / (theta ** (arange(0, dim, 2).float() / dim)).
        m->m_invFreq.push_back(1.0f / std::pow(t.ropeTheta, float(2 * j) / float(t.rotaryDim)));
        int axis = 0;
        if (c.hasVision) axis = j < t.mropeSection[0] ? 0 : j < t.mropeSection[0] + t.mropeSection[1] ? 1 : 2;
        m->m_pairAxis.push_back(axis);
    }
    if (c.hasVision) {
        const GlmVisionConfig& v = c.vision;
        const int64_t hid = v.hiddenSize, out = v.outHiddenSize, ms = v.spatialMergeSize;
        WB_SET(m->m_patchEmbed, vsrc.matrix(VP, "patch_embed.proj.weight",
                                           {hid, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize}))
        WB_SET(m->m_patchBias, src.vector(VP, "patch_embed.proj.bias", {hid}))
        WB_SET(m->m_postConvNorm, src.vector(VP, "post_conv_layernorm.weight", {hid}))
        WB_SET(m->m_posEmbed, src.vector(VP, "embeddings.position_embedding.weight", {v.numPositions(), hid}))
        m->m_blocks.resize(size_t(v.depth));
        for (int64_t i = 0; i < v.depth; ++i) {
            VisionBlock& B = m->m_blocks[size_t(i)];
            const std::string p = "blocks." + std::to_string(i) + ".";
            WB_SET(B.norm1, src.vector(VP, p + "norm1.weight", {hid}))
            WB_SET(B.norm2, src.vector(VP, p + "norm2.weight", {hid}))
            WB_SET(B.qkv, vsrc.matrix(VP, p + "attn.qkv.weight", {3 * hid, hid}))
            if (v.attentionBias) WB_SET(B.qkvBias, src.vector(VP, p + "attn.qkv.bias", {3 * hid}))
            WB_SET(B.proj, vsrc.matrix(VP, p + "attn.proj.weight", {hid, hid}))
            WB_SET(B.gate, vsrc.matrix(VP, p + "mlp.gate_proj.weight", {out, hid}))
            WB_SET(B.up, vsrc.matrix(VP, p + "mlp.up_proj.weight", {out, hid}))
            WB_SET(B.down, vsrc.matrix(VP, p + "mlp.down_proj.weight", {hid, out}))
        }
        WB_SET(m->m_postNorm, src.vector(VP, "post_layernorm.weight", {hid}))
        WB_SET(m->m_downsample, vsrc.matrix(VP, "downsample.weight", {out, hid, ms, ms}))
        WB_SET(m->m_downsampleBias, src.vector(VP, "downsample.bias", {out}))
        WB_SET(m->m_mergerProj, vsrc.matrix(VP, "merger.proj.weight", {out, out}))
        WB_SET(m->m_mergerNormW, src.vector(VP, "merger.post_projection_norm.weight", {out}))
        WB_SET(m->m_mergerNormB, src.vector(VP, "merger.post_projection_norm.bias", {out}))
        WB_SET(m->m_mergerGate, vsrc.matrix(VP, "merger.gate_proj.weight", {v.intermediateSize, out}))
        WB_SET(m->m_mergerUp, vsrc.matrix(VP, "merger.up_proj.weight", {v.intermediateSize, out}))
        WB_SET(m->m_mergerDown, vsrc.matrix(VP, "merger.down_proj.weight", {out, v.intermediateSize}))
        // Vision rotary: Glm4vVisionRotaryEmbedding(head_dim / 2): head_dim / 4 frequencies.
        const int64_t rdim = v.headDim / 2;
        for (int64_t k = 0; k < rdim / 2; ++k)
            m->m_visionInvFreq.push_back(1.0f / std::pow(10000.0f, float(2 * k) / float(rdim)));
    }
#undef WB_SET
    return {};
}

void GlmModel::embed(int32_t token, float* out) const {
    const WeightMatrix& e = m_embedding;
    dequantizeRow(e.dtype, e.data + int64_t(token) * e.rowBytes(), out, e.cols);
    if (e.dtype == DType::I8) {
        const float s = e.rowScales[token];
        for (int64_t i = 0; i < e.cols; ++i) out[i] *= s;
    }
}

Result<std::vector<float>> GlmModel::encodeImage(const Glm4vImageInput& img, ThreadPool* visionPool,
                                                 const std::function<bool(int, int)>& onLayer) {
    if (!m_config.hasVision) return makeError("encodeImage: this GLM checkpoint has no vision tower");
    const GlmVisionConfig& v = m_config.vision;
    const int64_t ms = v.spatialMergeSize, hid = v.hiddenSize, hd = v.headDim, nh = v.numHeads;
    if (img.patchDim != v.patchDim() || img.gridT <= 0 || img.gridH % ms != 0 || img.gridW % ms != 0 ||
        int64_t(img.pixels.size()) != img.numPatches() * img.patchDim)
        return makeError("encodeImage: input of " + std::to_string(img.numPatches()) + " patches of " +
                         std::to_string(img.patchDim) + " values (grid " + std::to_string(img.gridT) + "x" +
                         std::to_string(img.gridH) + "x" + std::to_string(img.gridW) +
                         ") does not fit the vision tower (patch dim " + std::to_string(v.patchDim()) + ")");
    ThreadPool& pool = visionPool ? *visionPool : *m_pool;
    const int64_t N = img.numPatches(), frame = img.gridH * img.gridW;
    std::vector<float> x(size_t(N * hid)), h(size_t(N * hid));
    // Row-wise steps (norms, biases, rotary, residual adds) split over the pool's threads by rows: over a
    // screenshot's 12k patches they would otherwise be a serial share of every block.
    auto byRows = [&pool](int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
        pool.parallelFor(rows, 64, [&fn](int64_t b, int64_t e, int) { fn(b, e); });
    };
    cpu::matmul(m_patchEmbed, img.pixels.data(), N, x.data(), pool);
    byRows(N, [&](int64_t b, int64_t e) {
        addBias(x.data() + b * hid, m_patchBias, e - b);
        cpu::rmsNorm(x.data() + b * hid, m_postConvNorm.data(), v.normEps, e - b, hid, x.data() + b * hid);
    });

    // Grid coordinates of each patch row (the processor's merge-block order), as rot_pos_emb lists them.
    std::vector<int64_t> hpos(static_cast<size_t>(N)), wpos(static_cast<size_t>(N));
    const int64_t blocksW = img.gridW / ms;
    for (int64_t r = 0; r < N; ++r) {
        const int64_t k = r % frame, j = k % ms, i = (k / ms) % ms, blk = k / (ms * ms);
        hpos[size_t(r)] = (blk / blocksW) * ms + i;
        wpos[size_t(r)] = (blk % blocksW) * ms + j;
    }
    // Learned position embeddings (a side × side grid) resampled at each patch's centre: grid_sample bicubic,
    // align_corners=False, border padding, in f32 like the reference.
    const int64_t side = int64_t(std::lround(std::sqrt(double(v.numPositions()))));
    const float S = float(side);
    const float H = float(img.gridH), W = float(img.gridW);
    pool.parallelFor(N, 16, [&](int64_t begin, int64_t end, int) {
        std::vector<float> acc(static_cast<size_t>(hid));
        for (int64_t r = begin; r < end; ++r) {
            const float nw = ((float(wpos[size_t(r)]) + 0.5f) / W) * 2.0f - 1.0f;
            const float nhh = ((float(hpos[size_t(r)]) + 0.5f) / H) * 2.0f - 1.0f;
            const float ix = ((nw + 1.0f) * S - 1.0f) / 2.0f, iy = ((nhh + 1.0f) * S - 1.0f) / 2.0f;
            const float fx = std::floor(ix), fy = std::floor(iy);
            float cx[4], cy[4];
            cubicCoeffs(ix - fx, cx);
            cubicCoeffs(iy - fy, cy);
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int a = 0; a < 4; ++a) {
                const int64_t yy = std::clamp<int64_t>(int64_t(fy) - 1 + a, 0, side - 1);
                // Interpolate along x within row yy, then weight by cy[a] (the reference's order).
                std::vector<float> rowv(static_cast<size_t>(hid), 0.0f);
                for (int b = 0; b < 4; ++b) {
                    const int64_t xx = std::clamp<int64_t>(int64_t(fx) - 1 + b, 0, side - 1);
                    cpu::axpy(cx[b], m_posEmbed.data() + (yy * side + xx) * hid, rowv.data(), hid);
                }
                cpu::axpy(cy[a], rowv.data(), acc.data(), hid);
            }
            cpu::addInPlace(x.data() + r * hid, acc.data(), hid);
        }
    });

    // 2-D rotary tables per patch: dims [0, hd/4) turn with the row, [hd/4, hd/2) with the column; rotate-half.
    const int64_t q4 = hd / 4, half = hd / 2;
    std::vector<float> cosT(size_t(N * half)), sinT(size_t(N * half));
    for (int64_t r = 0; r < N; ++r)
        for (int64_t d = 0; d < half; ++d) {
            const float a = d < q4 ? float(hpos[size_t(r)]) * m_visionInvFreq[size_t(d)]
                                   : float(wpos[size_t(r)]) * m_visionInvFreq[size_t(d - q4)];
            cosT[size_t(r * half + d)] = std::cos(a);
            sinT[size_t(r * half + d)] = std::sin(a);
        }
    auto rope = [&](float* vec, int64_t r) {
        for (int64_t head = 0; head < nh; ++head) {
            float* p = vec + head * hd;
            for (int64_t d = 0; d < half; ++d) {
                const float c = cosT[size_t(r * half + d)], s = sinT[size_t(r * half + d)];
                const float a = p[d], b = p[d + half];
                p[d] = a * c - b * s;
                p[d + half] = b * c + a * s;
            }
        }
    };
    // The MLP runs over chunks of rows, so that its two out-wide activations stay a bounded size however many
    // patches the image has (a 5-MP screenshot: 12,432 rows × 4,096 would be 200 MB each).
    const int64_t mlpRows = std::min<int64_t>(N, 2048);
    std::vector<float> qkv(size_t(N * 3 * hid)), att(size_t(N * hid)), g(size_t(mlpRows * v.outHiddenSize)),
            u(size_t(mlpRows * v.outHiddenSize));
    // BF16 vision weights (a reduced-precision load) take attention's products in BF16 tiles too.
    const bool bf16Attention = !m_blocks.empty() && m_blocks.front().qkv.dtype == DType::BF16;
    const float scale = 1.0f / std::sqrt(float(hd));
    const int numBlocks = int(m_blocks.size());
    int blocksDone = 0;
    for (const VisionBlock& B : m_blocks) {
        if (onLayer && !onLayer(blocksDone, numBlocks)) return makeError("encodeImage: stopped by the caller");
        byRows(N, [&](int64_t b, int64_t e) {
            cpu::rmsNorm(x.data() + b * hid, B.norm1.data(), v.normEps, e - b, hid, h.data() + b * hid);
        });
        cpu::matmul(B.qkv, h.data(), N, qkv.data(), pool);
        byRows(N, [&](int64_t b, int64_t e) {
            if (!B.qkvBias.empty()) addBias(qkv.data() + b * 3 * hid, B.qkvBias, e - b);
            for (int64_t r = b; r < e; ++r) {
                rope(qkv.data() + r * 3 * hid, r);
                rope(qkv.data() + r * 3 * hid + hid, r);
            }
        });
        // Full attention within each frame (cu_seqlens: one span per frame of one image), a head at a time, tiled:
        // a 1080x2400 screenshot is one frame of 12,432 patches.
        for (int64_t f0 = 0; f0 < N; f0 += frame)
            for (int64_t head = 0; head < nh; ++head) {
                // Attention over a screenshot's 12k patches is most of a block: a cancel is heard between heads.
                if (onLayer && head > 0 && !onLayer(blocksDone, numBlocks))
                    return makeError("encodeImage: stopped by the caller");
                cpu::DenseAttentionArgs da;
                da.q = qkv.data() + f0 * 3 * hid + head * hd;
                da.k = da.q + hid;
                da.v = da.q + 2 * hid;
                da.qStride = da.kStride = da.vStride = 3 * hid;
                da.out = att.data() + f0 * hid + head * hd;
                da.outStride = hid;
                da.n = frame;
                da.headDim = hd;
                da.scale = scale;
                da.bf16 = bf16Attention;
                cpu::denseAttention(da, pool);
            }
        cpu::matmul(B.proj, att.data(), N, h.data(), pool);
        byRows(N, [&](int64_t b, int64_t e) {
            cpu::addInPlace(x.data() + b * hid, h.data() + b * hid, (e - b) * hid);
            cpu::rmsNorm(x.data() + b * hid, B.norm2.data(), v.normEps, e - b, hid, h.data() + b * hid);
        });
        for (int64_t r0 = 0; r0 < N; r0 += mlpRows) {
            const int64_t rows = std::min(mlpRows, N - r0);
            float* hr = h.data() + r0 * hid;
            cpu::matmul(B.gate, hr, rows, g.data(), pool);
            cpu::matmul(B.up, hr, rows, u.data(), pool);
            const int64_t ow = v.outHiddenSize;
            byRows(rows, [&](int64_t b, int64_t e) {
                cpu::siluMul(g.data() + b * ow, u.data() + b * ow, (e - b) * ow, g.data() + b * ow);
            });
            cpu::matmul(B.down, g.data(), rows, hr, pool);  // hr's rows are consumed: the output overwrites them
        }
        byRows(N, [&](int64_t b, int64_t e) {
            cpu::addInPlace(x.data() + b * hid, h.data() + b * hid, (e - b) * hid);
        });
        ++blocksDone;
    }
    if (onLayer && !onLayer(blocksDone, numBlocks)) return makeError("encodeImage: stopped by the caller");
    byRows(N, [&](int64_t b, int64_t e) {
        cpu::rmsNorm(x.data() + b * hid, m_postNorm.data(), v.normEps, e - b, hid, x.data() + b * hid);
    });

    // Downsample: each merge block's ms×ms patches (consecutive rows) through a Conv2d with stride ms, whose
    // flattened input runs channel-major: element (c, i, j) = patch (i * ms + j), channel c.
    const int64_t M = N / (ms * ms), out = v.outHiddenSize, blk = ms * ms;
    std::vector<float> gathered(size_t(M * hid * blk));
    for (int64_t b = 0; b < M; ++b)
        for (int64_t k = 0; k < blk; ++k)
            for (int64_t ch = 0; ch < hid; ++ch)
                gathered[size_t(b * hid * blk + ch * blk + k)] = x[size_t((b * blk + k) * hid + ch)];
    std::vector<float> y(size_t(M * out)), z(size_t(M * out));
    cpu::matmul(m_downsample, gathered.data(), M, y.data(), pool);
    addBias(y.data(), m_downsampleBias, M);
    // Merger: proj, LayerNorm, exact GELU, then a SiLU-gated MLP.
    cpu::matmul(m_mergerProj, y.data(), M, z.data(), pool);
    byRows(M, [&](int64_t b, int64_t e) {
        layerNorm(z.data() + b * out, m_mergerNormW.data(), m_mergerNormB.data(), 1e-5f, e - b, out,
                  z.data() + b * out);
        for (float* p = z.data() + b * out; p < z.data() + e * out; ++p)
            *p = 0.5f * *p * (1.0f + std::erf(*p * float(M_SQRT1_2)));
    });
    // The MLP (13,696 wide) in chunks of rows, as the blocks' MLP: bounded whatever the image's size.
    const int64_t inter = v.intermediateSize, chunk = std::min<int64_t>(M, 1024);
    std::vector<float> mg(size_t(chunk * inter)), mu(size_t(chunk * inter));
    for (int64_t r0 = 0; r0 < M; r0 += chunk) {
        const int64_t rows = std::min(chunk, M - r0);
        cpu::matmul(m_mergerGate, z.data() + r0 * out, rows, mg.data(), pool);
        cpu::matmul(m_mergerUp, z.data() + r0 * out, rows, mu.data(), pool);
        byRows(rows, [&](int64_t b, int64_t e) {
            cpu::siluMul(mg.data() + b * inter, mu.data() + b * inter, (e - b) * inter, mg.data() + b * inter);
        });
        cpu::matmul(m_mergerDown, mg.data(), rows, y.data() + r0 * out, pool);
    }
    return y;
}

Result<void> GlmModel::forward(std::span<const GlmSequenceStep> batch, KvBlockPool& kv, float* logits,
                               bool allLogits) {
    const GlmTextConfig& c = m_config.text;
    const int64_t bs = kv.blockSize();
    std::vector<int32_t> ids, tokSeq;
    std::vector<int64_t> tokSlot, tokPos;  // tokPos: 3 per token
    std::vector<const float*> feature;     // image feature row per token, or null
    for (size_t e = 0; e < batch.size(); ++e) {
        const GlmSequenceStep& s = batch[e];
        const std::string where = "forward: batch entry " + std::to_string(e);
        const int64_t n = int64_t(s.tokens.size());
        if (n == 0) return makeError(where + " has no tokens");
        if (!s.blocks) return makeError(where + " has no block table");
        const int64_t end = s.startIndex + n;
        if (s.startIndex < 0 || BlockTable::blocksFor(end, bs) > int64_t(s.blocks->blocks.size()))
            return makeError(where + ": slots up to " + std::to_string(end) + " exceed its " +
                             std::to_string(s.blocks->blocks.size()) + " KV blocks");
        if (!s.positions.empty() && int64_t(s.positions.size()) != 3 * n)
            return makeError(where + ": " + std::to_string(s.positions.size()) + " positions for " +
                             std::to_string(n) + " tokens (3 rows expected)");
        int64_t numImage = 0;
        for (int32_t t : s.tokens) numImage += m_config.hasVision && t == m_config.imageTokenId;
        if (int64_t(s.imageFeatures.size()) != numImage * c.dim)
            return makeError(where + ": " + std::to_string(numImage) + " image tokens but " +
                             std::to_string(s.imageFeatures.size() / size_t(c.dim)) + " image feature rows");
        int64_t img = 0;
        for (int64_t j = 0; j < n; ++j) {
            const int32_t t = s.tokens[size_t(j)];
            if (t < 0 || t >= c.vocabSize)
                return makeError(where + ": token id " + std::to_string(t) + " is outside the vocabulary of " +
                                 std::to_string(c.vocabSize));
            ids.push_back(t);
            tokSeq.push_back(int32_t(e));
            tokSlot.push_back(s.startIndex + j);
            for (int a = 0; a < 3; ++a)
                tokPos.push_back(s.positions.empty() ? s.startIndex + j + s.positionOffset
                                                     : s.positions[size_t(a * n + j)]);
            const bool isImg = m_config.hasVision && t == m_config.imageTokenId;
            feature.push_back(isImg ? s.imageFeatures.data() + (img++) * c.dim : nullptr);
        }
    }
    const int64_t n = int64_t(ids.size());
    if (n == 0) return makeError("forward: no tokens");
    ThreadPool& pool = *m_pool;
    const int64_t hd = c.headDim, qDim = c.numHeads * hd, kvDim = c.numKvHeads * hd;
    const DType kvType = kv.dtype();
    const float attnScale = 1.0f / std::sqrt(float(hd));
    // A BF16 or INT8 load takes prefill attention's products on BF16 tiles too (where the CPU has them).
    const bool bf16Attention =
            !m_layers.empty() && (m_layers.front().wq.dtype == DType::BF16 || m_layers.front().wq.dtype == DType::I8);
    std::vector<float> x(size_t(n * c.dim)), h(size_t(n * c.dim)), q(size_t(n * qDim)), k(size_t(n * kvDim)),
            vv(size_t(n * kvDim)), att(size_t(n * qDim)), gu(size_t(n * 2 * c.ffnDim)), act(size_t(n * c.ffnDim));
    for (int64_t i = 0; i < n; ++i) {
        if (feature[size_t(i)])
            std::memcpy(x.data() + i * c.dim, feature[size_t(i)], size_t(c.dim) * 4);
        else
            embed(ids[size_t(i)], x.data() + i * c.dim);
    }
    // Row-wise steps split over the threads by rows (a prefill chunk is thousands of tokens; a decode step runs
    // them inline: parallelFor keeps a range under the grain on the calling thread).
    auto byRows = [&pool](int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
        pool.parallelFor(rows, 16, [&fn](int64_t b, int64_t e, int) { fn(b, e); });
    };
    const int64_t D = c.dim;
    for (int64_t l = 0; l < c.numLayers; ++l) {
        TextLayer& L = m_layers[size_t(l)];
        byRows(n, [&](int64_t b, int64_t e) {
            cpu::rmsNorm(x.data() + b * D, L.inputNorm.data(), c.normEps, e - b, D, h.data() + b * D);
        });
        cpu::matmul(L.wq, h.data(), n, q.data(), pool);
        cpu::matmul(L.wk, h.data(), n, k.data(), pool);
        cpu::matmul(L.wv, h.data(), n, vv.data(), pool);
        for (int64_t i = 0; i < n; ++i) {
            float* qi = q.data() + i * qDim;
            float* ki = k.data() + i * kvDim;
            float* vi = vv.data() + i * kvDim;
            if (c.attentionBias) {
                cpu::addInPlace(qi, L.bq.data(), qDim);
                cpu::addInPlace(ki, L.bk.data(), kvDim);
                cpu::addInPlace(vi, L.bv.data(), kvDim);
            }
            const int64_t* pos = tokPos.data() + 3 * i;
            ropeInterleaved(qi, c.numHeads, hd, m_invFreq, m_pairAxis, pos);
            ropeInterleaved(ki, c.numKvHeads, hd, m_invFreq, m_pairAxis, pos);
            const int64_t slot = tokSlot[size_t(i)];
            const int32_t block = batch[size_t(tokSeq[size_t(i)])].blocks->blocks[size_t(slot / bs)];
            cpu::storeKvRow(ki, kv.keys(l, block, slot % bs), kvType, kvDim);
            cpu::storeKvRow(vi, kv.values(l, block, slot % bs), kvType, kvDim);
        }
        // Entries with many tokens (prefill chunks: an image prompt is thousands) in query tiles through GEMMs;
        // decodes and short chunks one token and KV head at a time (cpu::pagedDecodeAttention).
        std::vector<int64_t> single;
        for (int64_t i = 0, e = 0; i < n; ++e) {
            const int64_t len = int64_t(batch[size_t(e)].tokens.size());
            if (len >= 32) {
                const std::vector<int32_t>& table = batch[size_t(e)].blocks->blocks;
                cpu::CausalRunArgs r;
                r.q = q.data() + i * qDim;
                r.qStride = qDim;
                r.out = att.data() + i * qDim;
                r.outStride = qDim;
                r.numTokens = len;
                r.firstPos = tokSlot[size_t(i)];
                r.numHeads = int(c.numHeads);
                r.numKvHeads = int(c.numKvHeads);
                r.headDim = hd;
                r.scale = attnScale;
                r.bf16 = bf16Attention;
                r.keyRow = [&](int64_t p) -> const void* { return kv.keys(l, table[size_t(p / bs)], p % bs); };
                r.valueRow = [&](int64_t p) -> const void* { return kv.values(l, table[size_t(p / bs)], p % bs); };
                r.kvType = kvType;
                cpu::causalAttentionTiled(r, pool);
            } else {
                for (int64_t k = i; k < i + len; ++k) single.push_back(k);
            }
            i += len;
        }
        cpu::PagedDecodeArgs d;
        d.q = q.data();
        d.qStride = qDim;
        d.out = att.data();
        d.outStride = qDim;
        d.rows = single.data();
        d.numRows = int64_t(single.size());
        d.numHeads = int(c.numHeads);
        d.numKvHeads = int(c.numKvHeads);
        d.headDim = hd;
        d.scale = attnScale;
        d.blockSize = bs;
        d.rowStride = kvDim;
        d.length = [&](int64_t k) { return tokSlot[size_t(single[size_t(k)])] + 1; };
        auto table = [&](int64_t k) -> const std::vector<int32_t>& {
            return batch[size_t(tokSeq[size_t(single[size_t(k)])])].blocks->blocks;
        };
        d.keyRow = [&](int64_t k, int64_t p) -> const void* { return kv.keys(l, table(k)[size_t(p / bs)], p % bs); };
        d.valueRow = [&](int64_t k, int64_t p) -> const void* {
            return kv.values(l, table(k)[size_t(p / bs)], p % bs);
        };
        d.kvType = kvType;
        cpu::pagedDecodeAttention(d, pool);
        cpu::matmul(L.wo, att.data(), n, h.data(), pool);
        byRows(n, [&](int64_t b, int64_t e) {
            float* xb = x.data() + b * D;
            float* hb = h.data() + b * D;
            cpu::rmsNorm(hb, L.postSelfAttnNorm.data(), c.normEps, e - b, D, hb);
            cpu::addInPlace(xb, hb, (e - b) * D);
            cpu::rmsNorm(xb, L.postAttnNorm.data(), c.normEps, e - b, D, hb);
        });
        cpu::matmul(L.wGateUp, h.data(), n, gu.data(), pool);
        byRows(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                const float* row = gu.data() + i * 2 * c.ffnDim;  // [gate | up], as chunk(2) splits it
                cpu::siluMul(row, row + c.ffnDim, c.ffnDim, act.data() + i * c.ffnDim);
            }
        });
        cpu::matmul(L.wDown, act.data(), n, h.data(), pool);
        byRows(n, [&](int64_t b, int64_t e) {
            float* hb = h.data() + b * D;
            cpu::rmsNorm(hb, L.postMlpNorm.data(), c.normEps, e - b, D, hb);
            cpu::addInPlace(x.data() + b * D, hb, (e - b) * D);
        });
    }
    const WeightMatrix& head = c.tiedEmbeddings ? m_embedding : m_output;
    if (allLogits) {
        cpu::rmsNorm(x.data(), m_outputNorm.data(), c.normEps, n, c.dim, h.data());
        cpu::matmul(head, h.data(), n, logits, pool);
        return {};
    }
    int64_t numOut = 0, t0 = 0;
    for (const GlmSequenceStep& s : batch) {
        const int64_t last = t0 + int64_t(s.tokens.size()) - 1;
        if (s.wantLogits) {
            cpu::rmsNorm(x.data() + last * c.dim, m_outputNorm.data(), c.normEps, 1, c.dim, h.data() + numOut * c.dim);
            ++numOut;
        }
        t0 += int64_t(s.tokens.size());
    }
    if (numOut > 0) cpu::matmul(head, h.data(), numOut, logits, pool);
    return {};
}

int64_t GlmModel::visionWeightBytes() const {
    int64_t total = 0;
    for (const WeightMatrix* w : {&m_patchEmbed, &m_downsample, &m_mergerProj, &m_mergerGate, &m_mergerUp, &m_mergerDown})
        total += w->numBytes();
    for (const auto* v : {&m_patchBias, &m_postConvNorm, &m_posEmbed, &m_postNorm, &m_downsampleBias, &m_mergerNormW,
                          &m_mergerNormB})
        total += int64_t(v->size()) * 4;
    for (const VisionBlock& b : m_blocks) {
        for (const WeightMatrix* w : {&b.qkv, &b.proj, &b.gate, &b.up, &b.down}) total += w->numBytes();
        for (const auto* v : {&b.norm1, &b.norm2, &b.qkvBias}) total += int64_t(v->size()) * 4;
    }
    return total;
}

int64_t GlmModel::interleavedMatrices() const {
    int64_t n = m_output.interleaved ? 1 : 0;
    for (const TextLayer& l : m_layers)
        for (const WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.wGateUp, &l.wDown}) n += w->interleaved ? 1 : 0;
    return n;
}

int64_t GlmModel::weightBytes() const {
    int64_t total = 0;
    auto vec = [&](const std::vector<float>& v) { total += int64_t(v.size()) * 4; };
    for (const WeightMatrix* w : {&m_embedding, &m_output, &m_patchEmbed, &m_downsample, &m_mergerProj, &m_mergerGate,
                                  &m_mergerUp, &m_mergerDown})
        total += w->numBytes();
    for (const auto* v : {&m_outputNorm, &m_patchBias, &m_postConvNorm, &m_posEmbed, &m_postNorm, &m_downsampleBias,
                          &m_mergerNormW, &m_mergerNormB})
        vec(*v);
    for (const TextLayer& l : m_layers) {
        for (const WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.wGateUp, &l.wDown}) total += w->numBytes();
        for (const auto* v : {&l.inputNorm, &l.postSelfAttnNorm, &l.postAttnNorm, &l.postMlpNorm, &l.bq, &l.bk, &l.bv})
            vec(*v);
    }
    for (const VisionBlock& b : m_blocks) {
        for (const WeightMatrix* w : {&b.qkv, &b.proj, &b.gate, &b.up, &b.down}) total += w->numBytes();
        for (const auto* v : {&b.norm1, &b.norm2, &b.qkvBias}) vec(*v);
    }
    return total;
}

}  // namespace wb
