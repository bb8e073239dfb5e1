#include "models/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "backend/cpu/cpu_ops.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace wb {

std::string precisionName(Precision p) {
    switch (p) {
        case Precision::Native: return "native";
        case Precision::F32: return "fp32";
        case Precision::F16: return "fp16";
        case Precision::BF16: return "bf16";
        case Precision::Int8: return "int8";
    }
    return "?";
}

Result<Precision> parsePrecision(const std::string& s) {
    std::string l = s;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (l == "native" || l == "auto") return Precision::Native;
    if (l == "fp32" || l == "f32") return Precision::F32;
    if (l == "fp16" || l == "f16") return Precision::F16;
    if (l == "bf16") return Precision::BF16;
    if (l == "int8" || l == "i8" || l == "w8") return Precision::Int8;
    return makeError("unknown precision \"" + s + "\" (native, fp32, fp16, bf16, int8)");
}

namespace {

// Names of one layer's tensors in each layout.
struct TensorNames {
    std::function<std::string(int64_t, const char*)> layer;  // (layer, role) -> name
    std::string embedding, outputNorm, output;
};


TensorNames ggufNames() {
    TensorNames n;
    n.embedding = "token_embd.weight";
    n.outputNorm = "output_norm.weight";
    n.output = "output.weight";
    n.layer = [](int64_t i, const char* role) {
        static const std::map<std::string, std::string> m = {
            {"attn_norm", "attn_norm.weight"}, {"ffn_norm", "ffn_norm.weight"}, {"q", "attn_q.weight"},
            {"k", "attn_k.weight"},            {"v", "attn_v.weight"},          {"o", "attn_output.weight"},
            {"gate", "ffn_gate.weight"},       {"up", "ffn_up.weight"},         {"down", "ffn_down.weight"},
            {"q_bias", "attn_q.bias"},         {"k_bias", "attn_k.bias"},       {"v_bias", "attn_v.bias"}};
        return "blk." + std::to_string(i) + "." + m.at(role);
    };
    return n;
}

TensorNames hfNames() {
    TensorNames n;
    n.embedding = "model.embed_tokens.weight";
    n.outputNorm = "model.norm.weight";
    n.output = "lm_head.weight";
    n.layer = [](int64_t i, const char* role) {
        static const std::map<std::string, std::string> m = {
            {"attn_norm", "input_layernorm.weight"},
            {"ffn_norm", "post_attention_layernorm.weight"},
            {"q", "self_attn.q_proj.weight"},
            {"k", "self_attn.k_proj.weight"},
            {"v", "self_attn.v_proj.weight"},
            {"o", "self_attn.o_proj.weight"},
            {"gate", "mlp.gate_proj.weight"},
            {"up", "mlp.up_proj.weight"},
            {"down", "mlp.down_proj.weight"},
            {"q_bias", "self_attn.q_proj.bias"},
            {"k_bias", "self_attn.k_proj.bias"},
            {"v_bias", "self_attn.v_proj.bias"}};
        return "model.layers." + std::to_string(i) + "." + m.at(role);
    };
    return n;
}

// Expected shape (PyTorch order) of each role.
std::vector<int64_t> expectedShape(const ModelConfig& c, const std::string& role) {
    const int64_t q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
    if (role == "attn_norm" || role == "ffn_norm") return {c.dim};
    if (role == "q") return {q, c.dim};
    if (role == "k" || role == "v") return {kv, c.dim};
    if (role == "o") return {c.dim, q};
    if (role == "gate" || role == "up") return {c.ffnDim, c.dim};
    if (role == "down") return {c.dim, c.ffnDim};
    if (role == "q_bias") return {q};
    if (role == "k_bias" || role == "v_bias") return {kv};
    return {};
}

// GGUF (llama arch) stores Q/K rows of each head interleaved (pairs 2j, 2j+1 rotate together); the engine
// uses rotate-half order (j and j + headDim/2 rotate together). Row r_hf = h*hd + s*hd/2 + j comes from
// r_gguf = h*hd + 2j + s.
std::vector<int64_t> interleavedToRotateHalf(int64_t numHeads, int64_t headDim) {
    std::vector<int64_t> perm(size_t(numHeads * headDim));
    const int64_t half = headDim / 2;
    for (int64_t h = 0; h < numHeads; ++h)
        for (int64_t s = 0; s < 2; ++s)
            for (int64_t j = 0; j < half; ++j) perm[size_t(h * headDim + s * half + j)] = h * headDim + 2 * j + s;
    return perm;
}

DType targetDtype(Precision p, DType fileType) {
    switch (p) {
        case Precision::Native: return fileType;
        case Precision::F32: return DType::F32;
        case Precision::F16: return DType::F16;
        case Precision::BF16: return DType::BF16;
        case Precision::Int8: return DType::I8;
    }
    return fileType;
}

Result<std::vector<float>> toFloatVector(const TensorInfo& t) {
    if (dtypeBlockSize(t.dtype) != 1 && t.numElements() % dtypeBlockSize(t.dtype) != 0)
        return makeError(t.file + ": tensor " + t.name + ": cannot decode");
    std::vector<float> out(size_t(t.numElements()));
    dequantizeRow(t.dtype, t.data, out.data(), t.numElements());
    return out;
}

struct Source {
    std::string format;
    std::shared_ptr<void> keepAlive;
    std::function<const TensorInfo*(const std::string&)> find;
    std::function<std::vector<const TensorInfo*>()> all;
    TensorNames names;
    bool permuteQk = false;
    std::string where;  // for "missing tensor" errors
};

Result<Source> openSource(const std::string& path, ModelConfig& config, std::unique_ptr<Tokenizer>* tokenizer) {
    namespace fs = std::filesystem;
    std::error_code ec;
    Source s;
    if (fs::is_directory(path, ec)) {
        auto cfg = configFromHfFolder(path);
        if (!cfg) return cfg.error();
        config = *cfg;
        auto set = SafetensorsSet::openFolder(path);
        if (!set) return set.error();
        auto sp = *set;
        s.format = "hf-safetensors";
        s.keepAlive = sp;
        s.find = [sp](const std::string& n) { return sp->find(n); };
        s.all = [sp] {
            std::vector<const TensorInfo*> v;
            for (const auto& [k, t] : sp->tensors()) v.push_back(&t);
            return v;
        };
        s.names = hfNames();
        s.where = path;
        if (tokenizer) {
            auto tok = Tokenizer::fromHfFolder(path);
            if (!tok) return tok.error();
            *tokenizer = std::move(*tok);
        }
        return s;
    }
    if (!fs::exists(path, ec)) return makeError(path + ": no such file or folder");
    auto g = GgufFile::open(path);
    if (!g) return g.error();
    auto gp = *g;
    auto cfg = configFromGguf(*gp);
    if (!cfg) return cfg.error();
    config = *cfg;
    s.format = "gguf";
    s.keepAlive = gp;
    s.find = [gp](const std::string& n) { return gp->findTensor(n); };
    s.all = [gp] {
        std::vector<const TensorInfo*> v;
        for (const auto& t : gp->tensors()) v.push_back(&t);
        return v;
    };
    s.names = ggufNames();
    s.permuteQk = config.architecture == "llama" || config.architecture == "mistral";
    s.where = path;
    if (tokenizer) {
        auto tok = Tokenizer::fromGguf(*gp);
        if (!tok) return tok.error();
        *tokenizer = std::move(*tok);
    }
    return s;
}

Result<const TensorInfo*> requireTensor(const Source& s, const std::string& name, const std::vector<int64_t>& shape) {
    const TensorInfo* t = s.find(name);
    if (!t) return makeError(s.where + ": missing tensor " + name);
    if (t->shape != shape) {
        TensorInfo want;
        want.shape = shape;
        return makeError(t->file + ": tensor " + name + " has shape " + t->shapeString() + ", expected " +
                         want.shapeString());
    }
    return t;
}

}  // namespace

KvCache::KvCache(const ModelConfig& c, int64_t capacityTokens, int64_t blockSize)
    : m_capacity(capacityTokens),
      m_pool(c.numLayers, c.numKvHeads * c.headDim, blockSize, BlockTable::blocksFor(capacityTokens, blockSize)) {
    for (int64_t i = 0; i < m_pool.numBlocks(); ++i) m_table.blocks.push_back(*m_pool.allocate());
}

Result<ModelSummary> summarizeModel(const std::string& path) {
    ModelSummary sum;
    sum.path = path;
    auto src = openSource(path, sum.config, nullptr);
    if (!src) return src.error();
    sum.format = src->format;
    int64_t matrixElems = 0, otherElems = 0;
    for (const TensorInfo* t : src->all()) {
        sum.numParameters += t->numElements();
        sum.tensorCountByDtype[std::string(dtypeName(t->dtype))]++;
        sum.fileWeightBytes += t->numBytes;
        if (t->shape.size() == 2)
            matrixElems += t->numElements();
        else
            otherElems += t->numElements();
    }
    const ModelConfig& c = sum.config;
    if (c.tiedEmbeddings) sum.numParameters += 0;  // the head reuses the embedding: no extra parameters
    const int64_t rows = matrixElems / std::max<int64_t>(c.dim, 1);
    sum.weightBytesByPrecision["fp32"] = matrixElems * 4 + otherElems * 4;
    sum.weightBytesByPrecision["fp16"] = matrixElems * 2 + otherElems * 4;
    sum.weightBytesByPrecision["bf16"] = matrixElems * 2 + otherElems * 4;
    sum.weightBytesByPrecision["int8"] = matrixElems + rows * 4 + otherElems * 4;
    sum.weightBytesByPrecision["native"] = sum.fileWeightBytes;
    sum.kvBytesPerToken = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    // The tokenizer kind is known from metadata without building the tokenizer.
    if (src->format == "gguf") {
        auto g = std::static_pointer_cast<GgufFile>(src->keepAlive);
        auto m = g->getString("tokenizer.ggml.model").value_or("");
        sum.tokenizerKind = m == "llama" ? "sentencepiece (GGUF vocab)" : m == "gpt2" ? "byte-level BPE (GGUF vocab)" : m;
    } else {
        namespace fs = std::filesystem;
        if (fs::exists(fs::path(path) / "tokenizer.json"))
            sum.tokenizerKind = "tokenizer.json";
        else if (fs::exists(fs::path(path) / "tokenizer.model"))
            sum.tokenizerKind = "sentencepiece (tokenizer.model)";
        else
            sum.tokenizerKind = "none";
    }
    return sum;
}

LlamaModel::~LlamaModel() = default;

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& path, const LoadOptions& options) {
    std::unique_ptr<LlamaModel> m(new LlamaModel());
    m->m_path = path;
    m->m_precision = options.precision;
    auto src = openSource(path, m->m_config, &m->m_tokenizer);
    if (!src) return src.error();
    m->m_source = src->keepAlive;
    const ModelConfig& c = m->m_config;
    if (m->m_tokenizer->vocabSize() > c.vocabSize)
        return makeError(path + ": tokenizer has " + std::to_string(m->m_tokenizer->vocabSize()) +
                         " tokens but the model's vocabulary is " + std::to_string(c.vocabSize));

    auto loadMatrix = [&](const std::string& name, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>* perm) -> Result<WeightMatrix> {
        auto t = requireTensor(*src, name, shape);
        if (!t) return t.error();
        auto w = weightFromTensor(**t, src->keepAlive);
        if (!w) return makeError((*t)->file + ": tensor " + name + ": " + w.error().message);
        WeightMatrix wm = std::move(*w);
        if (perm) permuteRows(wm, *perm);
        const DType target = targetDtype(options.precision, wm.dtype);
        if (target != wm.dtype) {
            auto conv = convertWeight(wm, target);
            if (!conv) return makeError((*t)->file + ": tensor " + name + ": " + conv.error().message);
            wm = std::move(*conv);
        }
        if (options.hugePages) moveToHugePages(wm);
        return wm;
    };
    auto loadVector = [&](const std::string& name, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>* perm) -> Result<std::vector<float>> {
        auto t = requireTensor(*src, name, shape);
        if (!t) return t.error();
        auto v = toFloatVector(**t);
        if (!v || !perm) return v;
        std::vector<float> out(v->size());
        for (size_t i = 0; i < out.size(); ++i) out[i] = (*v)[size_t((*perm)[i])];
        return out;
    };

    const std::vector<int64_t> permQ = interleavedToRotateHalf(c.numHeads, c.headDim);
    const std::vector<int64_t> permK = interleavedToRotateHalf(c.numKvHeads, c.headDim);
    const std::vector<int64_t>* pq = src->permuteQk ? &permQ : nullptr;
    const std::vector<int64_t>* pk = src->permuteQk ? &permK : nullptr;

    {
        auto e = loadMatrix(src->names.embedding, {c.vocabSize, c.dim}, nullptr);
        if (!e) return e.error();
        m->m_embedding = std::move(*e);
    }
    {
        auto n = loadVector(src->names.outputNorm, {c.dim}, nullptr);
        if (!n) return n.error();
        m->m_outputNorm = std::move(*n);
    }
    if (!c.tiedEmbeddings) {
        auto o = loadMatrix(src->names.output, {c.vocabSize, c.dim}, nullptr);
        if (!o) return o.error();
        m->m_output = std::move(*o);
    }
    m->m_layers.resize(size_t(c.numLayers));
    for (int64_t i = 0; i < c.numLayers; ++i) {
        Layer& L = m->m_layers[size_t(i)];
        auto name = [&](const char* role) { return src->names.layer(i, role); };
#define WB_LOAD_VEC(field, role, perm)                                          \
    {                                                                           \
        auto r_ = loadVector(name(role), expectedShape(c, role), perm);         \
        if (!r_) return r_.error();                                             \
        L.field = std::move(*r_);                                               \
    }
#define WB_LOAD_MAT(field, role, perm)                                          \
    {                                                                           \
        auto r_ = loadMatrix(name(role), expectedShape(c, role), perm);         \
        if (!r_) return r_.error();                                             \
        L.field = std::move(*r_);                                               \
    }
        WB_LOAD_VEC(attnNorm, "attn_norm", nullptr)
        WB_LOAD_VEC(ffnNorm, "ffn_norm", nullptr)
        WB_LOAD_MAT(wq, "q", pq)
        WB_LOAD_MAT(wk, "k", pk)
        WB_LOAD_MAT(wv, "v", nullptr)
        WB_LOAD_MAT(wo, "o", nullptr)
        WB_LOAD_MAT(wGate, "gate", nullptr)
        WB_LOAD_MAT(wUp, "up", nullptr)
        WB_LOAD_MAT(wDown, "down", nullptr)
        if (c.qkvBias) {
            WB_LOAD_VEC(bq, "q_bias", pq)
            WB_LOAD_VEC(bk, "k_bias", pk)
            WB_LOAD_VEC(bv, "v_bias", nullptr)
        }
#undef WB_LOAD_VEC
#undef WB_LOAD_MAT
    }
    m->m_invFreq = c.ropeInvFreq();
    if (src->format == "gguf") {
        // Llama 3 GGUFs carry the rope scaling as per-dimension divisors.
        if (const TensorInfo* rf = src->find("rope_freqs.weight")) {
            if (rf->numElements() != c.headDim / 2)
                return makeError(rf->file + ": tensor rope_freqs.weight has " + std::to_string(rf->numElements()) +
                                 " values, expected " + std::to_string(c.headDim / 2));
            auto f = toFloatVector(*rf);
            if (!f) return f.error();
            for (size_t i = 0; i < m->m_invFreq.size(); ++i) m->m_invFreq[i] /= (*f)[i];
        }
    }
    m->m_pool = std::make_unique<ThreadPool>(options.numThreads);
    return m;
}

int64_t LlamaModel::weightBytes() const {
    int64_t n = m_embedding.numBytes() + (m_config.tiedEmbeddings ? 0 : m_output.numBytes());
    for (const Layer& L : m_layers)
        n += L.wq.numBytes() + L.wk.numBytes() + L.wv.numBytes() + L.wo.numBytes() + L.wGate.numBytes() +
             L.wUp.numBytes() + L.wDown.numBytes() + int64_t(L.attnNorm.size() + L.ffnNorm.size()) * 4;
    return n;
}

void LlamaModel::embed(int32_t token, float* out) const {
    const WeightMatrix& e = m_embedding;
    dequantizeRow(e.dtype, e.data + int64_t(token) * e.rowBytes(), out, e.cols);
    if (e.dtype == DType::I8) {
        const float s = e.rowScales[token];
        for (int64_t i = 0; i < e.cols; ++i) out[i] *= s;
    }
}

void LlamaModel::ensureScratch(int64_t n) {
    if (n <= m_scratchTokens) return;
    const ModelConfig& c = m_config;
    m_scratchTokens = n;
    m_x.assign(size_t(n * c.dim), 0);
    m_h.assign(size_t(n * std::max(c.dim, c.numHeads * c.headDim)), 0);
    m_q.assign(size_t(n * c.numHeads * c.headDim), 0);
    m_k.assign(size_t(n * c.numKvHeads * c.headDim), 0);
    m_v.assign(size_t(n * c.numKvHeads * c.headDim), 0);
    m_att.assign(size_t(n * c.numHeads * c.headDim), 0);
    m_gate.assign(size_t(n * c.ffnDim), 0);
    m_up.assign(size_t(n * c.ffnDim), 0);
}

Result<void> LlamaModel::forward(std::span<const int32_t> tokens, int64_t startPos, KvCache& cache, float* logits,
                                 LogitsMode mode) {
    if (startPos < 0 || startPos + int64_t(tokens.size()) > cache.capacity())
        return makeError("forward: positions " + std::to_string(startPos) + ".." +
                         std::to_string(startPos + int64_t(tokens.size())) + " exceed the KV cache capacity of " +
                         std::to_string(cache.capacity()) + " tokens");
    BatchSequence seq{tokens, startPos, &cache.table(), true};
    return forwardImpl(std::span<const BatchSequence>(&seq, 1), cache.pool(), logits, mode == LogitsMode::All);
}

Result<void> LlamaModel::forwardBatch(std::span<const BatchSequence> batch, KvBlockPool& pool, float* logits) {
    return forwardImpl(batch, pool, logits, false);
}

Result<void> LlamaModel::forwardImpl(std::span<const BatchSequence> batch, KvBlockPool& pool, float* logits,
                                     bool allLogits) {
    const ModelConfig& c = m_config;
    const int64_t bs = pool.blockSize();
    // Flatten the batch: token t belongs to entry tokSeq[t] at position tokPos[t].
    std::vector<int32_t> ids;
    std::vector<int32_t> tokSeq;
    std::vector<int64_t> tokPos;
    int64_t maxCtx = 0;
    for (size_t e = 0; e < batch.size(); ++e) {
        const BatchSequence& s = batch[e];
        if (s.tokens.empty()) return makeError("forward: batch entry " + std::to_string(e) + " has no tokens");
        if (!s.blocks) return makeError("forward: batch entry " + std::to_string(e) + " has no block table");
        const int64_t end = s.startPos + int64_t(s.tokens.size());
        if (s.startPos < 0 || BlockTable::blocksFor(end, bs) > int64_t(s.blocks->blocks.size()))
            return makeError("forward: batch entry " + std::to_string(e) + " positions up to " + std::to_string(end) +
                             " exceed its " + std::to_string(s.blocks->blocks.size()) + " KV blocks");
        if (end > c.maxContext)
            return makeError("forward: position " + std::to_string(end) + " exceeds the model's context of " +
                             std::to_string(c.maxContext));
        for (size_t j = 0; j < s.tokens.size(); ++j) {
            const int32_t t = s.tokens[j];
            if (t < 0 || t >= c.vocabSize)
                return makeError("forward: token id " + std::to_string(t) + " is outside the vocabulary of " +
                                 std::to_string(c.vocabSize));
            ids.push_back(t);
            tokSeq.push_back(int32_t(e));
            tokPos.push_back(s.startPos + int64_t(j));
        }
        maxCtx = std::max(maxCtx, end);
    }
    const int64_t n = int64_t(ids.size());
    if (n == 0) return makeError("forward: no tokens");
    ensureScratch(n);
    ThreadPool& pool_ = *m_pool;
    const int64_t hd = c.headDim, qDim = c.numHeads * hd, kvDim = c.numKvHeads * hd;
    const int64_t group = c.numHeads / c.numKvHeads;
    const float attnScale = 1.0f / std::sqrt(float(hd));
    if (int64_t(m_scores.size()) < int64_t(pool_.size()) * maxCtx) m_scores.assign(size_t(pool_.size() * maxCtx), 0);

    float* x = m_x.data();
    for (int64_t i = 0; i < n; ++i) embed(ids[size_t(i)], x + i * c.dim);

    for (int64_t l = 0; l < c.numLayers; ++l) {
        Layer& L = m_layers[size_t(l)];
        cpu::rmsNorm(x, L.attnNorm.data(), c.normEps, n, c.dim, m_h.data());
        cpu::matmul(L.wq, m_h.data(), n, m_q.data(), pool_);
        cpu::matmul(L.wk, m_h.data(), n, m_k.data(), pool_);
        cpu::matmul(L.wv, m_h.data(), n, m_v.data(), pool_);
        for (int64_t i = 0; i < n; ++i) {
            float* q = m_q.data() + i * qDim;
            float* k = m_k.data() + i * kvDim;
            float* v = m_v.data() + i * kvDim;
            if (c.qkvBias) {
                cpu::addInPlace(q, L.bq.data(), qDim);
                cpu::addInPlace(k, L.bk.data(), kvDim);
                cpu::addInPlace(v, L.bv.data(), kvDim);
            }
            const int64_t pos = tokPos[size_t(i)];
            cpu::ropeRotateHalf(q, int(c.numHeads), int(hd), int(hd), float(pos), m_invFreq.data());
            cpu::ropeRotateHalf(k, int(c.numKvHeads), int(hd), int(hd), float(pos), m_invFreq.data());
            const int32_t block = batch[size_t(tokSeq[size_t(i)])].blocks->blocks[size_t(pos / bs)];
            std::memcpy(pool.keys(l, block, pos % bs), k, size_t(kvDim) * 4);
            std::memcpy(pool.values(l, block, pos % bs), v, size_t(kvDim) * 4);
        }
        // Causal attention over each sequence's own blocks: one work item per (token, head).
        pool_.parallelFor(n * c.numHeads, 1, [&](int64_t begin, int64_t end, int t) {
            float* scores = m_scores.data() + int64_t(t) * maxCtx;
            for (int64_t item = begin; item < end; ++item) {
                const int64_t i = item / c.numHeads, h = item % c.numHeads, kvh = h / group;
                const std::vector<int32_t>& table = batch[size_t(tokSeq[size_t(i)])].blocks->blocks;
                const int64_t len = tokPos[size_t(i)] + 1;
                const float* q = m_q.data() + i * qDim + h * hd;
                float maxScore = -INFINITY;
                for (int64_t p = 0; p < len; ++p) {
                    scores[p] = cpu::dot(q, pool.keys(l, table[size_t(p / bs)], p % bs) + kvh * hd, hd) * attnScale;
                    maxScore = std::max(maxScore, scores[p]);
                }
                float sum = 0;
                for (int64_t p = 0; p < len; ++p) {
                    scores[p] = std::exp(scores[p] - maxScore);
                    sum += scores[p];
                }
                float* out = m_att.data() + i * qDim + h * hd;
                std::fill(out, out + hd, 0.0f);
                const float inv = 1.0f / sum;
                for (int64_t p = 0; p < len; ++p)
                    cpu::axpy(scores[p] * inv, pool.values(l, table[size_t(p / bs)], p % bs) + kvh * hd, out, hd);
            }
        });
        cpu::matmul(L.wo, m_att.data(), n, m_h.data(), pool_);
        cpu::addInPlace(x, m_h.data(), n * c.dim);
        cpu::rmsNorm(x, L.ffnNorm.data(), c.normEps, n, c.dim, m_h.data());
        cpu::matmul(L.wGate, m_h.data(), n, m_gate.data(), pool_);
        cpu::matmul(L.wUp, m_h.data(), n, m_up.data(), pool_);
        cpu::siluMul(m_gate.data(), m_up.data(), n * c.ffnDim, m_gate.data());
        cpu::matmul(L.wDown, m_gate.data(), n, m_h.data(), pool_);
        cpu::addInPlace(x, m_h.data(), n * c.dim);
    }
    const WeightMatrix& head = c.tiedEmbeddings ? m_embedding : m_output;
    if (allLogits) {
        cpu::rmsNorm(x, m_outputNorm.data(), c.normEps, n, c.dim, m_h.data());
        cpu::matmul(head, m_h.data(), n, logits, pool_);
        return {};
    }
    // Gather the rows that want logits, then one matmul for all of them.
    int64_t numOut = 0, t0 = 0;
    for (const BatchSequence& s : batch) {
        const int64_t last = t0 + int64_t(s.tokens.size()) - 1;
        if (s.wantLogits) {
            cpu::rmsNorm(x + last * c.dim, m_outputNorm.data(), c.normEps, 1, c.dim, m_h.data() + numOut * c.dim);
            ++numOut;
        }
        t0 += int64_t(s.tokens.size());
    }
    if (numOut > 0) cpu::matmul(head, m_h.data(), numOut, logits, pool_);
    return {};
}

}  // namespace wb
