#include "runtime/kv_block_pool.h"

#include <cassert>

#include "core/huge_buffer.h"

namespace wb {

KvBlockPool::KvBlockPool(int64_t numLayers, int64_t kvDim, int64_t blockSize, int64_t numBlocks, KvStorage storage)
    : m_numLayers(numLayers),
      m_kvDim(kvDim),
      m_blockSize(blockSize),
      m_numBlocks(numBlocks),
      m_refs(size_t(numBlocks), 0) {
    if (storage == KvStorage::Host) {
        const size_t n = size_t(numLayers * numBlocks * blockSize * kvDim);
        // Left empty (hasHostStorage() false) when the memory cannot be had; the owner reports it.
        m_storage = HugeBuffer::allocate(2 * n * sizeof(float));
        if (m_storage) {
            m_k = reinterpret_cast<float*>(m_storage->data());
            m_v = m_k + n;
        }
    }
    m_free.reserve(size_t(numBlocks));
    // Hand out low ids first: a stack popped from the back.
    for (int64_t b = numBlocks - 1; b >= 0; --b) m_free.push_back(int32_t(b));
}

std::optional<int32_t> KvBlockPool::allocate() {
    if (m_free.empty()) return std::nullopt;
    const int32_t b = m_free.back();
    m_free.pop_back();
    m_refs[size_t(b)] = 1;
    return b;
}

void KvBlockPool::retain(int32_t block) { ++m_refs[size_t(block)]; }

void KvBlockPool::release(int32_t block) {
    assert(m_refs[size_t(block)] > 0);
    if (--m_refs[size_t(block)] == 0) m_free.push_back(block);
}

}  // namespace wb
