#include "models/decoder/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "backend/backend_registry.h"
#include "backend/cpu/cpu_device.h"
#include "backend/cpu/cpu_ops.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "parallel/communicator.h"
#include "parallel/worker_group.h"

namespace wb {

std::optional<DType> precisionDType(Precision p) {
    switch (p) {
        case Precision::Native: return std::nullopt;
        case Precision::F32: return DType::F32;
        case Precision::F16: return DType::F16;
        case Precision::BF16: return DType::BF16;
        case Precision::Int8: return DType::I8;
    }
    return std::nullopt;
}

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
    if (role == "attn_norm" || role == "ffn_norm" || role == "post_attn_norm" || role == "post_ffn_norm")
        return {c.dim};
    if (role == "gate_up") return {2 * c.ffnDim, c.dim};
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

DType targetDtype(Precision p, DType fileType) { return precisionDType(p).value_or(fileType); }

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

Result<Source> openSource(const std::string& path, ModelConfig& config, std::unique_ptr<Tokenizer>* tokenizer,
                          const DecoderLayout* layout = nullptr) {
    namespace fs = std::filesystem;
    std::error_code ec;
    Source s;
    if (fs::is_directory(path, ec)) {
        if (layout) {
            // Another family's text model on the device path (GLM-4: models/glm/glm_decoder.cpp): its family
            // read the config and named the tensors; this decoder only runs it.
            config = layout->config;
            WB_TRY(config.validate(path + "/config.json"));
        } else {
            auto cfg = configFromHfFolder(path);
            if (!cfg) return cfg.error();
            config = *cfg;
        }
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
        s.names = layout ? layout->names(*sp) : hfNames();
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

// The part of the split each rank takes: [begin, end) of `total` in units of `align`, as even as possible.
struct Range {
    int64_t begin = 0, end = 0;
    int64_t size() const { return end - begin; }
};

Range splitRange(int64_t total, int n, int r, int64_t align) {
    const int64_t units = total / align, base = units / n, extra = units % n;
    const int64_t b = r * base + std::min<int64_t>(r, extra);
    const int64_t e = b + base + (r < extra ? 1 : 0);
    return {b * align, r == n - 1 ? total : e * align};
}

}  // namespace

KvCache::KvCache(const ModelConfig& c, int64_t capacityTokens, int64_t blockSize, DType dtype)
    : m_capacity(capacityTokens),
      m_pool(c.numLayers, c.numKvHeads * c.headDim, blockSize, BlockTable::blocksFor(capacityTokens, blockSize),
             KvStorage::Host, dtype) {
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


struct LlamaModel::Shard {
    struct Layer {
        std::unique_ptr<DeviceBuffer> attnNorm, ffnNorm, bq, bk, bv, postAttnNorm, postFfnNorm;
        std::unique_ptr<DeviceWeight> wq, wk, wv, wo, wGate, wUp, wDown;
    };
    int rank = 0;
    std::unique_ptr<Device> device;
    CpuDevice* cpu = nullptr;  // device, when it is the CPU
    std::unique_ptr<Communicator> comm;  // null when alone
    std::unique_ptr<DeviceWeight> embedding, ownHead;
    const DeviceWeight* head = nullptr;  // ownHead, or embedding when tied and not split
    std::unique_ptr<DeviceBuffer> outputNorm, invFreq;
    std::vector<Layer> layers;
    int64_t heads = 0, kvHeads = 0, ffn = 0;  // this rank's share
    Range vocab;                               // this rank's logits columns
    int64_t weightBytes = 0;

    int64_t workspaceBytes = 0;  // the device workspace reserved for the largest planned step
    // Scratch, sized for the largest planned step at load (reserveStepMemory), else grown on demand.
    std::unique_ptr<DeviceBuffer> x, h, q, k, v, att, gate, up, logits, post;
    std::unique_ptr<DeviceBuffer> ids, tokSeq, tokPos, tables, outRows, ropePos;
    std::vector<float> hostLogits;

    Result<std::unique_ptr<DeviceBuffer>> upload(const std::vector<float>& v) {
        auto b = device->allocate(int64_t(v.size()) * 4);
        if (!b) return b.error();
        WB_TRY(device->copyToDevice((*b)->data(), v.data(), int64_t(v.size()) * 4));
        return std::move(*b);
    }
    // Grows `b` to hold numBytes (by half again, so that growing batches do not reallocate every step).
    Result<void> ensure(std::unique_ptr<DeviceBuffer>& b, int64_t numBytes) {
        if (b && b->numBytes() >= numBytes) return {};
        b.reset();
        auto r = device->allocate(numBytes * 3 / 2 + 64);
        if (!r) return r.error();
        b = std::move(*r);
        return {};
    }
};

// One step's batch flattened on the host: token t belongs to entry tokSeq[t] at position tokPos[t].
struct LlamaModel::Step {
    std::vector<int32_t> ids, tokSeq, tokPos, tables, outRows;
    // Multimodal rotary (GLM-4.1V): 3 rows of rotary positions; multiAxis when some token's axes differ.
    std::vector<int32_t> ropePos;
    bool multiAxis = false;
    // Image feature rows: (token index in the step, its dim floats on the host).
    std::vector<std::pair<int64_t, const float*>> features;
    int64_t numSeqs = 0, maxBlocks = 0, maxCtx = 0;
    bool allLogits = false;
    float* logits = nullptr;
    // Each rank's KV cache: layer l at keys[r] + l * layerStride[r] bytes, values of kvType.
    std::vector<uint8_t*> keys, values;
    std::vector<int64_t> layerStride;
    DType kvType = DType::F32;
    int64_t numBlocks = 0, blockSize = 0;
};

// Each rank's share of a pool's keys and values, kept on its device and attached to the pool.
struct LlamaModel::ShardedKv {
    int64_t numBlocks = 0, blockSize = 0;
    std::vector<std::unique_ptr<DeviceBuffer>> keys, values;
};

LlamaModel::~LlamaModel() {
    m_workers.reset();  // joins the workers before their devices go
}

ThreadPool& LlamaModel::threadPool() { return m_shards[0]->cpu ? m_shards[0]->cpu->threadPool() : *m_hostPool; }

std::vector<std::string> LlamaModel::deviceNames() const {
    std::vector<std::string> v;
    for (const auto& s : m_shards) v.push_back(s->device->name());
    return v;
}

std::string LlamaModel::deviceSummary() const {
    if (m_shards.size() == 1) return m_shards[0]->device->name();
    std::string s;
    for (const auto& sh : m_shards) s += (s.empty() ? "" : " + ") + sh->device->name();
    return s + ", tensor parallel " + std::to_string(m_shards.size());
}

std::vector<int64_t> LlamaModel::deviceWeightBytes() const {
    std::vector<int64_t> v;
    for (const auto& s : m_shards) v.push_back(s->weightBytes);
    return v;
}

std::vector<int64_t> LlamaModel::deviceKvBytesPerToken() const {
    std::vector<int64_t> v;
    for (const auto& sh : m_shards) v.push_back(m_config.numLayers * 2 * sh->kvHeads * m_config.headDim * 4);
    return v;
}

std::vector<DeviceMemory> LlamaModel::deviceMemory() const {
    std::vector<DeviceMemory> v;
    for (const auto& sh : m_shards) v.push_back(sh->device->memory());
    return v;
}

bool LlamaModel::onGpus() const {
    for (const auto& sh : m_shards)
        if (sh->device->kind() != DeviceKind::Cuda) return false;
    return true;
}

std::vector<int> LlamaModel::deviceOrdinals() const {
    std::vector<int> v;
    for (const auto& sh : m_shards) v.push_back(sh->device->ordinal());
    return v;
}

std::string LlamaModel::needsReload() const {
    if (!m_needsReload.empty()) return m_needsReload;
    for (const auto& sh : m_shards)
        if (std::string f = sh->device->fault(); !f.empty()) return f;
    return {};
}

void LlamaModel::recoverAfterFailedStep() {
    if (!needsReload().empty()) return;  // a faulted device: nothing but a reload helps
    bool aborted = false;
    for (const auto& sh : m_shards) aborted = aborted || (sh->comm && sh->comm->aborted());
    if (!aborted) return;
    // Every rank has left the step (WorkerGroup::run returned): the old group goes first (NCCL frees its
    // resources), then the same factory makes a new one (parallel/communicator.h, step 3).
    std::vector<Device*> raw;
    for (auto& sh : m_shards) {
        sh->comm.reset();
        raw.push_back(sh->device.get());
    }
    auto cs = createCommunicators(m_deviceKind, raw);
    if (!cs) {
        m_needsReload = "the tensor-parallel communicators could not be re-created after a failed step (" +
                        cs.error().message + "); reload the model";
        return;
    }
    for (size_t r = 0; r < m_shards.size(); ++r) m_shards[r]->comm = std::move((*cs)[r]);
    if (auto c = checkCommunicators(); !c) {
        m_needsReload = "the re-created tensor-parallel communicators failed their first all-reduce (" +
                        c.error().message + "); reload the model";
        return;
    }
    ++m_communicatorRecoveries;
}

Result<void> LlamaModel::checkCommunicators() {
    if (!m_workers || !m_shards[0]->comm) return {};
    // One float of 1 from every rank must sum to the world size everywhere. It also makes NCCL set up its
    // connections here rather than in the middle of the first step.
    const float world = float(m_shards.size());
    return m_workers->run(
        [&](int r) -> Result<void> {
            Shard& sh = *m_shards[size_t(r)];
            auto b = sh.device->allocate(4);
            if (!b) return b.error();
            const float one = 1.0f;
            WB_TRY(sh.device->copyToDevice((*b)->data(), &one, 4));
            WB_TRY(sh.comm->allReduceSum((*b)->f32(), 1));
            float sum = 0.0f;
            WB_TRY(sh.device->copyToHost(&sum, (*b)->data(), 4));
            if (sum != world)
                return makeError("communicator check: rank " + std::to_string(r) + " summed " + std::to_string(sum) +
                                 ", expected " + std::to_string(world));
            return {};
        },
        [&](const std::string& why) {
            for (auto& sh : m_shards)
                if (sh->comm) sh->comm->abort(why);
        });
}

Result<void> LlamaModel::reserveStepMemory(int64_t maxTokens, int64_t maxSeqs, int64_t maxContext, int64_t blockSize) {
    const ModelConfig& c = m_config;
    maxTokens = std::max<int64_t>(maxTokens, 1);
    const int64_t maxOut = std::min(maxTokens, std::max<int64_t>(maxSeqs, 1));
    const int64_t maxCtx = std::min(std::max<int64_t>(maxContext, 1), c.maxContext);
    for (auto& shp : m_shards) {
        Shard& sh = *shp;
        Device& d = *sh.device;
        int64_t need = d.attentionWorkspaceBytes(maxTokens, int(sh.heads), c.headDim, maxCtx);
        for (const Shard::Layer& L : sh.layers)
            for (const DeviceWeight* w : {L.wq.get(), L.wk.get(), L.wv.get(), L.wo.get(), L.wGate.get(), L.wUp.get(),
                                          L.wDown.get()})
                if (w) need = std::max(need, d.matmulWorkspaceBytes(*w, maxTokens));
        need = std::max(need, d.matmulWorkspaceBytes(*sh.head, maxOut));
        need = std::max(need, d.sampleWorkspaceBytes(maxOut));
        if (auto r = d.reserveWorkspace(need); !r)
            return makeError("workspace on " + d.name() + ": " + r.error().message);
        sh.workspaceBytes = need;
        // The step's scratch at its largest, so that no step allocates while other ranks' collectives run.
        WB_TRY(ensureScratch(sh, maxTokens, maxOut, maxSeqs * BlockTable::blocksFor(maxCtx, blockSize)));
    }
    return {};
}

std::vector<int64_t> LlamaModel::deviceWorkspaceBytes() const {
    std::vector<int64_t> v;
    for (const auto& sh : m_shards) v.push_back(sh->workspaceBytes);
    return v;
}

Result<void> LlamaModel::ensureScratch(Shard& sh, int64_t n, int64_t numOut, int64_t tableEntries) {
    const ModelConfig& c = m_config;
    const int64_t hd = c.headDim, dim = c.dim, qDim = sh.heads * hd, kvDim = sh.kvHeads * hd;
    WB_TRY(sh.ensure(sh.x, n * dim * 4));
    WB_TRY(sh.ensure(sh.h, n * std::max(dim, qDim) * 4));
    WB_TRY(sh.ensure(sh.q, n * qDim * 4));
    WB_TRY(sh.ensure(sh.k, n * kvDim * 4));
    WB_TRY(sh.ensure(sh.v, n * kvDim * 4));
    WB_TRY(sh.ensure(sh.att, n * qDim * 4));
    WB_TRY(sh.ensure(sh.gate, n * sh.ffn * 4));
    WB_TRY(sh.ensure(sh.up, n * sh.ffn * 4));
    if (c.postNorms) WB_TRY(sh.ensure(sh.post, n * dim * 4));
    for (auto* b : {&sh.ids, &sh.tokSeq, &sh.tokPos, &sh.outRows}) WB_TRY(sh.ensure(*b, n * 4 + 4));
    WB_TRY(sh.ensure(sh.tables, tableEntries * 4 + 4));
    if (c.mropeSection[0] + c.mropeSection[1] + c.mropeSection[2] > 0) WB_TRY(sh.ensure(sh.ropePos, 3 * n * 4 + 4));
    if (numOut > 0 && !(sh.vocab.size() == c.vocabSize && sh.cpu))  // else the logits go straight to the caller
        WB_TRY(sh.ensure(sh.logits, numOut * sh.vocab.size() * 4));
    return {};
}

bool LlamaModel::kvOnHost() const { return m_shards.size() == 1 && m_shards[0]->cpu; }

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& path, const LoadOptions& options,
                                                     const DecoderLayout* layout) {
    std::unique_ptr<LlamaModel> m(new LlamaModel());
    m->m_path = path;
    m->m_precision = options.precision;
    m->m_deviceKind = options.device;
    auto src = openSource(path, m->m_config, &m->m_tokenizer, layout);
    if (!src) return src.error();
    m->m_source = src->keepAlive;
    const ModelConfig& c = m->m_config;
    if (m->m_tokenizer->vocabSize() > c.vocabSize)
        return makeError(path + ": tokenizer has " + std::to_string(m->m_tokenizer->vocabSize()) +
                         " tokens but the model's vocabulary is " + std::to_string(c.vocabSize));

    // The split: query heads evenly; KV heads evenly too, or replicated (each rank keeps the one its query heads
    // read) when there are fewer KV heads than ranks.
    const int n = options.parallelDegree;
    if (n < 1) return makeError("parallel degree must be at least 1, not " + std::to_string(n));
    if (c.numHeads % n != 0)
        return makeError(path + ": parallel degree " + std::to_string(n) + " does not divide the " +
                         std::to_string(c.numHeads) + " attention heads");
    if (c.numKvHeads % n != 0 && n % c.numKvHeads != 0)
        return makeError(path + ": parallel degree " + std::to_string(n) + " neither divides nor is a multiple of the " +
                         std::to_string(c.numKvHeads) + " KV heads");
    const bool single = n == 1;

    {
        const int threadsEach = options.numThreads > 0 ? std::max(1, options.numThreads / n) : 0;
        auto devices = createDevices(options.device, n, threadsEach);
        if (!devices) return devices.error();
        std::vector<Device*> raw;
        for (auto& d : *devices) raw.push_back(d.get());
        std::vector<std::unique_ptr<Communicator>> comms;
        if (!single) {
            auto cs = createCommunicators(options.device, raw);
            if (!cs) return cs.error();
            comms = std::move(*cs);
        }
        for (int r = 0; r < n; ++r) {
            auto sh = std::make_unique<Shard>();
            sh->rank = r;
            sh->device = std::move((*devices)[size_t(r)]);
            sh->cpu = dynamic_cast<CpuDevice*>(sh->device.get());  // null for a device in front of one (tests)
            if (!single) sh->comm = std::move(comms[size_t(r)]);
            sh->heads = c.numHeads / n;
            sh->kvHeads = c.numKvHeads >= n ? c.numKvHeads / n : 1;
            sh->layers.resize(size_t(c.numLayers));
            m->m_shards.push_back(std::move(sh));
        }
    }
    // Huge pages only pay off for weights the CPU streams; a shard is moved after slicing.
    const bool hugePages = options.hugePages && options.device == DeviceKind::Cpu;
    const bool interleave = single && options.device == DeviceKind::Cpu && m->m_shards.front()->cpu &&
                            cpu::interleavesBlocks();

    // wholeMatmul: this device's matmul reads the matrix whole (no embedding gather, no split after loading), so
    // an interleavable one takes the generation layout here, in place of the huge-page copy.
    auto loadMatrix = [&](const std::string& name, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>* perm, bool wholeMatmul) -> Result<WeightMatrix> {
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
        const bool interleaveHere = wholeMatmul && interleave && canInterleave(wm);
        if (interleaveHere) interleaveBlocks(wm, hugePages);
        else if (hugePages && single) moveToHugePages(wm);
        if (interleaveHere || (hugePages && single)) {
            // The copy is all that is used from now on: without this, the file's pages stay resident beside it
            // and a 2 GB model peaks at 4 GB.
            MappedFile::releasePages((*t)->data, size_t((*t)->numBytes));
        }
        m->m_weightBytes += wm.numBytes();
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
    // Hands rank r its block of a loaded matrix: rows(r) x cols(r), or the whole when alone (no copy).
    auto distribute = [&](WeightMatrix&& full, const std::string& what, const std::function<Range(int)>& rows,
                          const std::function<Range(int)>& cols,
                          const std::function<std::unique_ptr<DeviceWeight>&(Shard&)>& slot) -> Result<void> {
        // One CPU device: the parts split after loading (GLM's gate_up halves) take the generation layout here;
        // loadMatrix did the others (a no-op for them). The embedding table does not come through here.
        if (interleave) interleaveBlocks(full, hugePages);
        auto shared = std::make_shared<const WeightMatrix>(std::move(full));
        for (auto& sh : m->m_shards) {
            std::shared_ptr<const WeightMatrix> part = shared;
            if (!single) {
                const Range rr = rows ? rows(sh->rank) : Range{0, shared->rows};
                const Range cr = cols ? cols(sh->rank) : Range{0, shared->cols};
                if (rr.size() != shared->rows || cr.size() != shared->cols) {
                    auto s = sliceWeight(*shared, rr.begin, rr.end, cr.begin, cr.end);
                    if (!s)
                        return makeError(path + ": " + what + ": rank " + std::to_string(sh->rank) + ": " +
                                         s.error().message + " (load at another precision or parallel degree)");
                    if (hugePages) moveToHugePages(*s);
                    part = std::make_shared<const WeightMatrix>(std::move(*s));
                }
            }
            auto up = sh->device->uploadWeight(part);
            if (!up) return makeError(path + ": " + what + ": " + up.error().message);
            sh->weightBytes += (*up)->numBytes;
            slot(*sh) = std::move(*up);
        }
        return {};
    };
    auto distributeVector = [&](const std::vector<float>& full, int64_t stride, const std::function<Range(int)>& units,
                                const std::function<std::unique_ptr<DeviceBuffer>&(Shard&)>& slot) -> Result<void> {
        for (auto& sh : m->m_shards) {
            const Range u = units ? units(sh->rank) : Range{0, int64_t(full.size()) / stride};
            std::vector<float> part(full.begin() + u.begin * stride, full.begin() + u.end * stride);
            auto b = sh->upload(part);
            if (!b) return b.error();
            sh->weightBytes += int64_t(part.size()) * 4;
            slot(*sh) = std::move(*b);
        }
        return {};
    };

    const std::vector<int64_t> permQ = interleavedToRotateHalf(c.numHeads, c.headDim);
    const std::vector<int64_t> permK = interleavedToRotateHalf(c.numKvHeads, c.headDim);
    const std::vector<int64_t>* pq = src->permuteQk ? &permQ : nullptr;
    const std::vector<int64_t>* pk = src->permuteQk ? &permK : nullptr;
    const int64_t hd = c.headDim;
    // In units of rows: query heads, KV heads (a rank's one replicated head when they are fewer than the ranks).
    auto qRows = [&](int r) { return Range{r * (c.numHeads / n) * hd, (r + 1) * (c.numHeads / n) * hd}; };
    auto kvRows = [&](int r) {
        if (c.numKvHeads >= n) return Range{r * (c.numKvHeads / n) * hd, (r + 1) * (c.numKvHeads / n) * hd};
        const int64_t kvh = (r * (c.numHeads / n)) / (c.numHeads / c.numKvHeads);
        return Range{kvh * hd, (kvh + 1) * hd};
    };
    auto vocabRows = [&](int r) { return splitRange(c.vocabSize, n, r, 1); };

    {
        auto e = loadMatrix(src->names.embedding, {c.vocabSize, c.dim}, nullptr, false);
        if (!e) return e.error();
        // Every rank gathers any token, so the table is replicated (shared, not copied, between CPU devices); a
        // tied head is split from it.
        auto shared = std::make_shared<const WeightMatrix>(std::move(*e));
        for (auto& sh : m->m_shards) {
            auto up = sh->device->uploadWeight(shared);
            if (!up) return makeError(path + ": embedding: " + up.error().message);
            sh->weightBytes += (*up)->numBytes;
            sh->embedding = std::move(*up);
            sh->head = sh->embedding.get();
            sh->vocab = single ? Range{0, c.vocabSize} : vocabRows(sh->rank);
        }
        if (c.tiedEmbeddings && !single) {
            WeightMatrix copy = *shared;  // a view: shares the storage behind keepAlive
            WB_TRY(distribute(std::move(copy), "output (tied)", vocabRows, {},
                              [](Shard& s) -> std::unique_ptr<DeviceWeight>& { return s.ownHead; }));
        }
    }
    {
        auto nrm = loadVector(src->names.outputNorm, {c.dim}, nullptr);
        if (!nrm) return nrm.error();
        WB_TRY(distributeVector(*nrm, 1, {}, [](Shard& s) -> std::unique_ptr<DeviceBuffer>& { return s.outputNorm; }));
    }
    if (!c.tiedEmbeddings) {
        auto o = loadMatrix(src->names.output, {c.vocabSize, c.dim}, nullptr, true);
        if (!o) return o.error();
        WB_TRY(distribute(std::move(*o), "output", vocabRows, {},
                          [](Shard& s) -> std::unique_ptr<DeviceWeight>& { return s.ownHead; }));
    }
    for (auto& sh : m->m_shards)
        if (sh->ownHead) sh->head = sh->ownHead.get();

    for (int64_t i = 0; i < c.numLayers; ++i) {
        auto name = [&](const char* role) { return src->names.layer(i, role); };
        auto mat = [&](const char* role, const std::vector<int64_t>* perm, std::function<Range(int)> rows,
                       std::function<Range(int)> cols, std::unique_ptr<DeviceWeight> Shard::Layer::*field)
            -> Result<void> {
            auto w = loadMatrix(name(role), expectedShape(c, role), perm, true);
            if (!w) return w.error();
            return distribute(std::move(*w), name(role), rows, cols,
                              [i, field](Shard& s) -> std::unique_ptr<DeviceWeight>& {
                                  return s.layers[size_t(i)].*field;
                              });
        };
        auto vec = [&](const char* role, const std::vector<int64_t>* perm, std::function<Range(int)> rows,
                       std::unique_ptr<DeviceBuffer> Shard::Layer::*field) -> Result<void> {
            auto v = loadVector(name(role), expectedShape(c, role), perm);
            if (!v) return v.error();
            return distributeVector(*v, 1, rows, [i, field](Shard& s) -> std::unique_ptr<DeviceBuffer>& {
                return s.layers[size_t(i)].*field;
            });
        };
        using L = Shard::Layer;
        WB_TRY(vec("attn_norm", nullptr, {}, &L::attnNorm));
        WB_TRY(vec("ffn_norm", nullptr, {}, &L::ffnNorm));
        WB_TRY(mat("q", pq, qRows, {}, &L::wq));
        WB_TRY(mat("k", pk, kvRows, {}, &L::wk));
        WB_TRY(mat("v", nullptr, kvRows, {}, &L::wv));
        WB_TRY(mat("o", nullptr, {}, qRows, &L::wo));
        // gate/up rows and down columns share one split of the FFN, aligned to down's blocks.
        int64_t ffnBlock = 1;
        {
            const TensorInfo* t = src->find(name("down"));
            DType d = targetDtype(options.precision, t ? t->dtype : DType::F32);
            ffnBlock = dtypeBlockSize(d);
            if (c.ffnDim % ffnBlock != 0) ffnBlock = 1;  // cannot be split at blocks: sliceWeight reports it
        }
        auto ffnRange = [&c, n, ffnBlock](int r) { return splitRange(c.ffnDim, n, r, ffnBlock); };
        if (c.fusedGateUp) {
            // GLM's gate_up_proj: the gate's rows, then the up's. Split into the two the device path runs, each
            // then cut by rank like Llama's.
            auto gu = loadMatrix(name("gate_up"), expectedShape(c, "gate_up"), nullptr, false);
            if (!gu) return gu.error();
            for (int half = 0; half < 2; ++half) {
                auto part = sliceWeight(*gu, half * c.ffnDim, (half + 1) * c.ffnDim, 0, c.dim);
                if (!part) return makeError(path + ": " + name("gate_up") + ": " + part.error().message);
                auto field = half == 0 ? &L::wGate : &L::wUp;
                WB_TRY(distribute(std::move(*part), name("gate_up"), ffnRange, {},
                                  [i, field](Shard& s) -> std::unique_ptr<DeviceWeight>& {
                                      return s.layers[size_t(i)].*field;
                                  }));
            }
        } else {
            WB_TRY(mat("gate", nullptr, ffnRange, {}, &L::wGate));
            WB_TRY(mat("up", nullptr, ffnRange, {}, &L::wUp));
        }
        WB_TRY(mat("down", nullptr, {}, ffnRange, &L::wDown));
        if (c.postNorms) {
            WB_TRY(vec("post_attn_norm", nullptr, {}, &L::postAttnNorm));
            WB_TRY(vec("post_ffn_norm", nullptr, {}, &L::postFfnNorm));
            m->m_weightBytes += 2 * c.dim * 4;
        }
        if (c.qkvBias) {
            WB_TRY(vec("q_bias", pq, qRows, &L::bq));
            WB_TRY(vec("k_bias", pk, kvRows, &L::bk));
            WB_TRY(vec("v_bias", nullptr, kvRows, &L::bv));
        }
        m->m_weightBytes += 2 * c.dim * 4;  // the two norms
    }
    for (auto& sh : m->m_shards) {
        sh->ffn = sh->layers.empty() ? 0 : sh->layers[0].wGate->rows;
        if (sh->heads == 0 || sh->ffn == 0 || sh->vocab.size() == 0)
            return makeError(path + ": parallel degree " + std::to_string(n) + " leaves rank " +
                             std::to_string(sh->rank) + " without work");
    }

    std::vector<float> invFreq = c.ropeInvFreq();
    if (c.rotaryDim > 0 && c.rotaryDim < c.headDim) {
        // Partial rotary (GLM): rotaryDim / 2 frequencies over the rotary dims, in f32 as the reference.
        invFreq.clear();
        for (int64_t j = 0; j < c.rotaryDim / 2; ++j)
            invFreq.push_back(1.0f / std::pow(c.ropeTheta, float(2 * j) / float(c.rotaryDim)));
    }
    if (src->format == "gguf") {
        // Llama 3 GGUFs carry the rope scaling as per-dimension divisors.
        if (const TensorInfo* rf = src->find("rope_freqs.weight")) {
            if (rf->numElements() != c.headDim / 2)
                return makeError(rf->file + ": tensor rope_freqs.weight has " + std::to_string(rf->numElements()) +
                                 " values, expected " + std::to_string(c.headDim / 2));
            auto f = toFloatVector(*rf);
            if (!f) return f.error();
            for (size_t i = 0; i < invFreq.size(); ++i) invFreq[i] /= (*f)[i];
        }
    }
    for (auto& sh : m->m_shards) {
        auto b = sh->upload(invFreq);
        if (!b) return b.error();
        sh->invFreq = std::move(*b);
    }
    if (!m->m_shards[0]->cpu) m->m_hostPool = std::make_unique<ThreadPool>(1);
    // One CPU device runs on the caller's thread, as the kernels always did; anything else gets a pinned worker
    // per rank, bound once to its device.
    if (!(single && m->m_shards[0]->cpu)) {
        LlamaModel* self = m.get();
        m->m_workers = std::make_unique<WorkerGroup>(
            n, [self](int r) { return self->m_shards[size_t(r)]->device->bindCurrentThread(); });
        WB_TRY(m->checkCommunicators());
    }
    return m;
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

Result<LlamaModel::ShardedKv*> LlamaModel::shardedKv(KvBlockPool& pool) {
    if (auto* kv = static_cast<ShardedKv*>(pool.externalStorage(this))) return kv;
    const ModelConfig& c = m_config;
    auto kv = std::make_shared<ShardedKv>();
    kv->numBlocks = pool.numBlocks();
    kv->blockSize = pool.blockSize();
    for (auto& sh : m_shards) {
        const int64_t bytes =
                c.numLayers * pool.numBlocks() * pool.blockSize() * sh->kvHeads * c.headDim * pool.elementBytes();
        auto k = sh->device->allocate(bytes);
        if (!k) return makeError("KV cache on " + sh->device->name() + ": " + k.error().message);
        auto v = sh->device->allocate(bytes);
        if (!v) return makeError("KV cache on " + sh->device->name() + ": " + v.error().message);
        kv->keys.push_back(std::move(*k));
        kv->values.push_back(std::move(*v));
    }
    ShardedKv* raw = kv.get();
    pool.setExternalStorage(this, std::move(kv));
    return raw;
}

Result<void> LlamaModel::forwardImpl(std::span<const BatchSequence> batch, KvBlockPool& pool, float* logits,
                                     bool allLogits) {
    if (const std::string why = needsReload(); !why.empty()) return makeError(why);
    const ModelConfig& c = m_config;
    const int64_t bs = pool.blockSize();
    if (pool.numLayers() != c.numLayers || pool.kvDim() != c.numKvHeads * c.headDim)
        return makeError("forward: the KV pool is shaped for " + std::to_string(pool.numLayers()) + " layers of " +
                         std::to_string(pool.kvDim()) + " values, the model needs " + std::to_string(c.numLayers) +
                         " of " + std::to_string(c.numKvHeads * c.headDim));
    Step st;
    st.allLogits = allLogits;
    st.logits = logits;
    st.numSeqs = int64_t(batch.size());
    for (const BatchSequence& s : batch)
        if (s.blocks) st.maxBlocks = std::max<int64_t>(st.maxBlocks, int64_t(s.blocks->blocks.size()));
    st.tables.assign(size_t(st.numSeqs * st.maxBlocks), 0);
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
            st.ids.push_back(t);
            st.tokSeq.push_back(int32_t(e));
            st.tokPos.push_back(int32_t(s.startPos + int64_t(j)));
        }
        std::copy(s.blocks->blocks.begin(), s.blocks->blocks.end(), st.tables.begin() + int64_t(e) * st.maxBlocks);
        // Image feature rows, one per image token, in order.
        if (c.imageTokenId >= 0) {
            int64_t numImage = 0;
            for (int32_t t : s.tokens) numImage += t == c.imageTokenId;
            if (int64_t(s.imageFeatures.size()) != numImage * c.dim)
                return makeError("forward: batch entry " + std::to_string(e) + " has " + std::to_string(numImage) +
                                 " image tokens but " + std::to_string(s.imageFeatures.size() / size_t(c.dim)) +
                                 " image feature rows");
            int64_t k = 0;
            const int64_t first = int64_t(st.ids.size()) - int64_t(s.tokens.size());
            for (size_t j = 0; j < s.tokens.size(); ++j)
                if (s.tokens[j] == c.imageTokenId) st.features.push_back({first + int64_t(j), s.imageFeatures.data() + (k++) * c.dim});
        }
        if (s.wantLogits && !allLogits) st.outRows.push_back(int32_t(st.ids.size()) - 1);
        st.maxCtx = std::max(st.maxCtx, end);
    }
    if (st.ids.empty()) return makeError("forward: no tokens");
    if (c.mropeSection[0] + c.mropeSection[1] + c.mropeSection[2] > 0) {
        // Rotary positions per axis: given for prompt tokens with images, index + offset otherwise.
        const int64_t n = int64_t(st.ids.size());
        st.ropePos.assign(size_t(3 * n), 0);
        int64_t at = 0;
        for (const BatchSequence& s : batch) {
            const int64_t len = int64_t(s.tokens.size());
            if (!s.ropePositions.empty() && int64_t(s.ropePositions.size()) != 3 * len)
                return makeError("forward: rotary positions for " + std::to_string(s.ropePositions.size()) +
                                 " values, expected 3 x " + std::to_string(len));
            for (int64_t j = 0; j < len; ++j)
                for (int a = 0; a < 3; ++a) {
                    const int64_t p = s.ropePositions.empty() ? s.startPos + j + s.ropeOffset
                                                              : s.ropePositions[size_t(a * len + j)];
                    st.ropePos[size_t(a * n + at + j)] = int32_t(p);
                }
            at += len;
        }
        for (int64_t i = 0; i < n && !st.multiAxis; ++i)
            st.multiAxis = st.ropePos[size_t(i)] != st.ropePos[size_t(n + i)] ||
                           st.ropePos[size_t(i)] != st.ropePos[size_t(2 * n + i)];
    }
    st.numBlocks = pool.numBlocks();
    st.blockSize = bs;
    st.kvType = pool.dtype();
    if (kvOnHost()) {
        if (!pool.hasHostStorage()) return makeError("forward: the KV pool has no storage");
        st.keys = {static_cast<uint8_t*>(pool.keys(0, 0, 0))};
        st.values = {static_cast<uint8_t*>(pool.values(0, 0, 0))};
        st.layerStride = {pool.numBlocks() * bs * pool.kvDim() * pool.elementBytes()};
    } else {
        auto kv = shardedKv(pool);
        if (!kv) return kv.error();
        for (auto& sh : m_shards) {
            st.keys.push_back(static_cast<uint8_t*>((*kv)->keys[size_t(sh->rank)]->data()));
            st.values.push_back(static_cast<uint8_t*>((*kv)->values[size_t(sh->rank)]->data()));
            st.layerStride.push_back(pool.numBlocks() * bs * sh->kvHeads * c.headDim * pool.elementBytes());
        }
    }
    Result<void> r = !m_workers ? runShard(*m_shards[0], st)
                                : m_workers->run([&](int r) { return runShard(*m_shards[size_t(r)], st); },
                                                 [&](const std::string& why) {
                                                     // Recovery contract, step 1 (parallel/communicator.h).
                                                     for (auto& sh : m_shards)
                                                         if (sh->comm) sh->comm->abort(why);
                                                 });
    if (!r) recoverAfterFailedStep();  // every rank has left the step
    return r;
}

Result<void> LlamaModel::runShard(Shard& sh, const Step& st) {
    const ModelConfig& c = m_config;
    Device& d = *sh.device;
    const int64_t n = int64_t(st.ids.size()), hd = c.headDim, dim = c.dim;
    const int64_t qDim = sh.heads * hd, kvDim = sh.kvHeads * hd;
    const int64_t numOut = st.allLogits ? n : int64_t(st.outRows.size());
    const int64_t vocab = sh.vocab.size();
    const float attnScale = 1.0f / std::sqrt(float(hd));

    // Nothing grows when the engine reserved the step's memory at load (reserveStepMemory).
    WB_TRY(ensureScratch(sh, n, numOut, int64_t(st.tables.size())));
    auto toDevice = [&](std::unique_ptr<DeviceBuffer>& b, const std::vector<int32_t>& v) -> Result<void> {
        WB_TRY(sh.ensure(b, int64_t(v.size()) * 4 + 4));
        return d.copyToDevice(b->data(), v.data(), int64_t(v.size()) * 4);
    };
    WB_TRY(toDevice(sh.ids, st.ids));
    WB_TRY(toDevice(sh.tokSeq, st.tokSeq));
    WB_TRY(toDevice(sh.tokPos, st.tokPos));
    WB_TRY(toDevice(sh.tables, st.tables));
    WB_TRY(toDevice(sh.outRows, st.outRows));
    AttentionBatch ab;
    ab.numTokens = n;
    ab.tokenSeq = sh.tokSeq->i32();
    ab.tokenPos = sh.tokPos->i32();
    ab.blockTables = sh.tables->i32();
    ab.maxBlocksPerSeq = st.maxBlocks;
    ab.maxContext = st.maxCtx;
    const size_t kvIndex = st.keys.size() == 1 ? 0 : size_t(sh.rank);

    float *x = sh.x->f32(), *h = sh.h->f32(), *q = sh.q->f32(), *k = sh.k->f32(), *v = sh.v->f32();
    float *att = sh.att->f32(), *gate = sh.gate->f32(), *up = sh.up->f32();
    float* post = nullptr;
    if (c.postNorms) {
        WB_TRY(sh.ensure(sh.post, n * dim * 4));
        post = sh.post->f32();
    }
    float* mlpOut = h;  // what the previous layer's MLP adds to the residual stream (post when it is normed)
    const int64_t rotDim = c.rotaryDim > 0 ? c.rotaryDim : hd;
    const int32_t* ropePos = ab.tokenPos;
    if (!st.ropePos.empty()) {
        WB_TRY(toDevice(sh.ropePos, st.ropePos));
        ropePos = sh.ropePos->i32();
    }
    const RopeStyle ropeStyle = c.interleavedRotary ? RopeStyle::Interleaved : RopeStyle::RotateHalf;
    WB_TRY(d.embed(*sh.embedding, sh.ids->i32(), n, x));
    // Image tokens take their feature rows instead of the embedding (GLM-4.1V; every rank holds the whole x).
    for (const auto& [row, feat] : st.features) WB_TRY(d.copyToDevice(x + row * dim, feat, dim * 4));
    for (int64_t l = 0; l < c.numLayers; ++l) {
        Shard::Layer& L = sh.layers[size_t(l)];
        // The previous layer's MLP output (mlpOut) joins the residual stream inside the norm.
        if (l == 0)
            WB_TRY(d.rmsNorm(x, L.attnNorm->f32(), c.normEps, n, dim, h));
        else
            WB_TRY(d.addRmsNorm(x, mlpOut, L.attnNorm->f32(), c.normEps, n, dim, h));
        WB_TRY(d.matmul(*L.wq, h, n, q));
        WB_TRY(d.matmul(*L.wk, h, n, k));
        WB_TRY(d.matmul(*L.wv, h, n, v));
        if (c.qkvBias) {
            WB_TRY(d.addBias(q, L.bq->f32(), n, qDim));
            WB_TRY(d.addBias(k, L.bk->f32(), n, kvDim));
            WB_TRY(d.addBias(v, L.bv->f32(), n, kvDim));
        }
        if (!st.multiAxis) {
            WB_TRY(d.rope(q, n, int(sh.heads), int(hd), int(rotDim), ropePos, sh.invFreq->f32(), ropeStyle));
            WB_TRY(d.rope(k, n, int(sh.kvHeads), int(hd), int(rotDim), ropePos, sh.invFreq->f32(), ropeStyle));
        } else {
            // Multimodal rotary: the pairs of each section turn by that axis's positions (the rope op on the
            // section's dims: the rows start 2 * pairStart floats in, the frequencies pairStart in).
            int64_t pair = 0;
            for (int a = 0; a < 3; ++a) {
                const int64_t count = c.mropeSection[size_t(a)];
                if (count == 0) continue;
                const int32_t* pos = ropePos + a * n;
                const float* inv = sh.invFreq->f32() + pair;
                WB_TRY(d.rope(q + 2 * pair, n, int(sh.heads), int(hd), int(2 * count), pos, inv, ropeStyle));
                WB_TRY(d.rope(k + 2 * pair, n, int(sh.kvHeads), int(hd), int(2 * count), pos, inv, ropeStyle));
                pair += count;
            }
        }
        KvLayer kl;
        kl.keys = st.keys[kvIndex] + l * st.layerStride[kvIndex];
        kl.values = st.values[kvIndex] + l * st.layerStride[kvIndex];
        kl.numBlocks = st.numBlocks;
        kl.blockSize = st.blockSize;
        kl.numKvHeads = sh.kvHeads;
        kl.headDim = hd;
        kl.dtype = st.kvType;
        WB_TRY(d.writeKv(k, v, ab, kl));
        WB_TRY(d.pagedAttention(q, int(sh.heads), attnScale, ab, kl, att));
        WB_TRY(d.matmul(*L.wo, att, n, h));
        if (sh.comm) WB_TRY(sh.comm->allReduceSum(h, n * dim));
        if (c.postNorms) {  // GLM: the attention output is normed before it joins the residual
            WB_TRY(d.rmsNorm(h, L.postAttnNorm->f32(), c.normEps, n, dim, post));
            WB_TRY(d.addRmsNorm(x, post, L.ffnNorm->f32(), c.normEps, n, dim, h));
        } else {
            WB_TRY(d.addRmsNorm(x, h, L.ffnNorm->f32(), c.normEps, n, dim, h));
        }
        WB_TRY(d.matmul(*L.wGate, h, n, gate));
        WB_TRY(d.matmul(*L.wUp, h, n, up));
        WB_TRY(d.siluMul(gate, up, n * sh.ffn, gate));
        WB_TRY(d.matmul(*L.wDown, gate, n, h));
        if (sh.comm) WB_TRY(sh.comm->allReduceSum(h, n * dim));
        if (c.postNorms) {  // GLM: so is the MLP output
            WB_TRY(d.rmsNorm(h, L.postFfnNorm->f32(), c.normEps, n, dim, post));
            mlpOut = post;
        }
    }
    WB_TRY(d.add(x, mlpOut, n * dim));
    if (numOut == 0) return d.synchronize();
    // The rows that want logits, normed; then one matmul for all of them.
    if (st.allLogits) {
        WB_TRY(d.rmsNorm(x, sh.outputNorm->f32(), c.normEps, n, dim, h));
    } else {
        WB_TRY(d.gatherRows(x, sh.outRows->i32(), numOut, dim, h));
        WB_TRY(d.rmsNorm(h, sh.outputNorm->f32(), c.normEps, numOut, dim, h));
    }
    if (vocab == c.vocabSize && sh.cpu) {  // host memory: straight into the caller's logits
        WB_TRY(d.matmul(*sh.head, h, numOut, st.logits));
        return {};
    }
    WB_TRY(sh.ensure(sh.logits, numOut * vocab * 4));
    WB_TRY(d.matmul(*sh.head, h, numOut, sh.logits->f32()));
    if (vocab == c.vocabSize) return d.copyToHost(st.logits, sh.logits->data(), numOut * vocab * 4);
    // A split head: this rank's columns of every row (ranks write disjoint columns of the caller's buffer).
    sh.hostLogits.resize(size_t(numOut * vocab));
    WB_TRY(d.copyToHost(sh.hostLogits.data(), sh.logits->data(), numOut * vocab * 4));
    for (int64_t r = 0; r < numOut; ++r)
        std::copy(sh.hostLogits.begin() + r * vocab, sh.hostLogits.begin() + (r + 1) * vocab,
                  st.logits + r * c.vocabSize + sh.vocab.begin);
    return {};
}

}  // namespace wb
