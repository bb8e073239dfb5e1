#include "api/direct_model.h"

#include "models/decoder/generator.h"
#include "models/decoder/llama_model.h"

namespace wb {

struct DirectModel::Impl {
    std::unique_ptr<LlamaModel> model;
    std::unique_ptr<KvCache> cache;
};

DirectModel::DirectModel() : m(std::make_unique<Impl>()) {}
DirectModel::~DirectModel() = default;

Result<std::unique_ptr<DirectModel>> DirectModel::load(const std::string& path, const LoadOptions& options) {
    auto lm = LlamaModel::load(path, options);
    if (!lm) return lm.error();
    std::unique_ptr<DirectModel> d(new DirectModel());
    d->m->model = std::move(*lm);
    return d;
}

const ModelConfig& DirectModel::config() const { return m->model->config(); }
const Tokenizer& DirectModel::tokenizer() const { return m->model->tokenizer(); }
Precision DirectModel::precision() const { return m->model->precision(); }
const std::string& DirectModel::path() const { return m->model->path(); }
int DirectModel::numThreads() const { return m->model->threadPool().size(); }
int64_t DirectModel::weightBytes() const { return m->model->weightBytes(); }

Result<GenerateResult> DirectModel::generate(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                             const std::function<void(const std::string&)>& onText) {
    return wb::generate(*m->model, prompt, options, onText);
}

void DirectModel::resetCache(int64_t capacityTokens, KvCacheType kvType) {
    m->cache.reset();  // the old cache's blocks go before the new one's are taken
    const bool f16 = resolveKvCacheType(kvType, capacityTokens, m->model->onGpus()) == KvCacheType::F16;
    m->cache = std::make_unique<KvCache>(m->model->config(), capacityTokens, 16, f16 ? DType::F16 : DType::F32);
}

KvCacheType DirectModel::cacheType() const {
    return m->cache && m->cache->pool().dtype() == DType::F16 ? KvCacheType::F16 : KvCacheType::F32;
}

Result<void> DirectModel::forward(std::span<const int32_t> tokens, int64_t startPos, float* logits) {
    if (!m->cache) return makeError("DirectModel::forward: no KV cache (call resetCache first)");
    if (startPos < 0 || startPos + int64_t(tokens.size()) > m->cache->capacity())
        return makeError("DirectModel::forward: positions " + std::to_string(startPos) + ".." +
                         std::to_string(startPos + int64_t(tokens.size())) + " exceed the cache of " +
                         std::to_string(m->cache->capacity()));
    return m->model->forward(tokens, startPos, *m->cache, logits);
}

}  // namespace wb
