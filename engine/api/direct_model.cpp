#include "api/direct_model.h"

#include <thread>

#include "models/decoder/generator.h"
#include "models/decoder/llama_model.h"
#include "api/model_info.h"
#include "runtime/engine_model.h"

namespace wb {

// A Llama-family model runs on LlamaModel (generate and forward over a KvCache). Another family (GLM-4, GLM-4.1V's
// text model) runs forward only, through the engine's model interface over a block pool of its own: what `wb
// bench` needs to put the same GGUF files as llama-bench through the same single-sequence test.
struct DirectModel::Impl {
    std::unique_ptr<LlamaModel> model;
    std::unique_ptr<KvCache> cache;

    std::unique_ptr<EngineModel> family;
    std::unique_ptr<KvBlockPool> pool;
    BlockTable table;
    int64_t capacity = 0;

    std::string path;
    Precision precision = Precision::Native;
    int threads = 1;
};

DirectModel::DirectModel() : m(std::make_unique<Impl>()) {}
DirectModel::~DirectModel() = default;

Result<std::unique_ptr<DirectModel>> DirectModel::load(const std::string& path, const LoadOptions& options) {
    std::unique_ptr<DirectModel> d(new DirectModel());
    auto family = modelFamily(path);
    if (!family) return family.error();
    if (*family == "llama") {
        auto lm = LlamaModel::load(path, options);
        if (!lm) return lm.error();
        d->m->model = std::move(*lm);
        return d;
    }
    if (options.device != DeviceKind::Cpu || options.parallelDegree != 1)
        return makeError(path + ": a " + *family + " model runs one sequence directly on one CPU device only "
                         "(the engine runs it on devices: wb serve / wb chat)");
    auto em = loadEngineModel(path, options, 0);
    if (!em) return em.error();
    d->m->family = std::move(*em);
    d->m->path = path;
    d->m->precision = options.precision;
    d->m->threads = options.numThreads > 0 ? options.numThreads
                                           : std::max(1, int(std::thread::hardware_concurrency()));
    return d;
}

bool DirectModel::canGenerate() const { return m->model != nullptr; }
const ModelConfig& DirectModel::config() const { return m->model ? m->model->config() : m->family->config(); }
const Tokenizer& DirectModel::tokenizer() const { return m->model ? m->model->tokenizer() : m->family->tokenizer(); }
Precision DirectModel::precision() const { return m->model ? m->model->precision() : m->precision; }
const std::string& DirectModel::path() const { return m->model ? m->model->path() : m->path; }
int DirectModel::numThreads() const { return m->model ? int(m->model->threadPool().size()) : m->threads; }
int64_t DirectModel::weightBytes() const { return m->model ? m->model->weightBytes() : m->family->weightBytes(); }

Result<GenerateResult> DirectModel::generate(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                             const std::function<void(const std::string&)>& onText) {
    if (!m->model)
        return makeError(path() + ": generate runs Llama-family models; this one goes through the engine "
                         "(wb chat, wb ask, wb serve)");
    return wb::generate(*m->model, prompt, options, onText);
}

void DirectModel::resetCache(int64_t capacityTokens, KvCacheType kvType) {
    m->cache.reset();  // the old cache's blocks go before the new one's are taken
    m->pool.reset();
    m->table.blocks.clear();
    const bool onGpus = m->model ? m->model->onGpus() : false;
    const DType dtype = resolveKvCacheType(kvType, capacityTokens, onGpus) == KvCacheType::F16 ? DType::F16 : DType::F32;
    if (m->model) {
        m->cache = std::make_unique<KvCache>(m->model->config(), capacityTokens, 16, dtype);
        return;
    }
    const ModelConfig& c = m->family->config();
    m->pool = std::make_unique<KvBlockPool>(c.numLayers, c.numKvHeads * c.headDim, 16,
                                            BlockTable::blocksFor(capacityTokens, 16), KvStorage::Host, dtype);
    for (int64_t i = 0; i < m->pool->numBlocks(); ++i) m->table.blocks.push_back(*m->pool->allocate());
    m->capacity = capacityTokens;
}

KvCacheType DirectModel::cacheType() const {
    const KvBlockPool* p = m->cache ? &m->cache->pool() : m->pool.get();
    return p && p->dtype() == DType::F16 ? KvCacheType::F16 : KvCacheType::F32;
}

Result<void> DirectModel::forward(std::span<const int32_t> tokens, int64_t startPos, float* logits) {
    if (!m->cache && !m->pool) return makeError("DirectModel::forward: no KV cache (call resetCache first)");
    const int64_t capacity = m->cache ? m->cache->capacity() : m->capacity;
    if (startPos < 0 || startPos + int64_t(tokens.size()) > capacity)
        return makeError("DirectModel::forward: positions " + std::to_string(startPos) + ".." +
                         std::to_string(startPos + int64_t(tokens.size())) + " exceed the cache of " +
                         std::to_string(capacity));
    if (m->model) return m->model->forward(tokens, startPos, *m->cache, logits);
    ModelStep step;
    step.tokens = tokens;
    step.start = startPos;
    step.blocks = &m->table;
    return m->family->forward(std::span<const ModelStep>(&step, 1), *m->pool, logits);
}

}  // namespace wb
