#include "runtime/kv_block_pool.h"

#include <cassert>

#include "core/huge_buffer.h"

namespace wb {

KvBlockPool::KvBlockPool(int64_t numLayers, int64_t kvDim, int64_t blockSize, int64_t numBlocks, KvStorage storage,
                         DType dtype)
    : m_numLayers(numLayers),
      m_kvDim(kvDim),
      m_blockSize(blockSize),
      m_numBlocks(numBlocks),
      m_dtype(dtype == DType::F16 ? DType::F16 : DType::F32),
      m_numFree(numBlocks),
      m_refs(size_t(numBlocks), 0),
      m_blockHash(size_t(numBlocks), 0),
      m_hasHash(size_t(numBlocks), false) {
    if (storage == KvStorage::Host) {
        const size_t bytes = size_t(numLayers * numBlocks * blockSize * kvDim * elementBytes());
        // Left empty (hasHostStorage() false) when the memory cannot be had; the owner reports it.
        m_storage = HugeBuffer::allocate(2 * bytes);
        if (m_storage) {
            m_k = reinterpret_cast<uint8_t*>(m_storage->data());
            m_v = m_k + bytes;
        }
    }
    // Hand out low ids first.
    for (int64_t b = 0; b < numBlocks; ++b) m_free.push_back(int32_t(b));
}

std::optional<int32_t> KvBlockPool::allocate() {
    while (!m_free.empty()) {
        const int32_t b = m_free.front();
        m_free.pop_front();
        if (m_refs[size_t(b)] != 0) continue;  // taken back from the cache by retain()
        if (m_hasHash[size_t(b)]) {
            m_cached.erase(m_blockHash[size_t(b)]);
            m_hasHash[size_t(b)] = false;
        }
        m_refs[size_t(b)] = 1;
        --m_numFree;
        return b;
    }
    return std::nullopt;
}

void KvBlockPool::retain(int32_t block) {
    if (m_refs[size_t(block)]++ == 0) --m_numFree;
}

void KvBlockPool::release(int32_t block) {
    assert(m_refs[size_t(block)] > 0);
    if (--m_refs[size_t(block)] == 0) {
        m_free.push_back(block);
        ++m_numFree;
    }
}

std::optional<int32_t> KvBlockPool::lookup(uint64_t historyHash) const {
    auto it = m_cached.find(historyHash);
    if (it == m_cached.end()) return std::nullopt;
    return it->second;
}

void KvBlockPool::registerBlock(int32_t block, uint64_t historyHash) {
    if (m_hasHash[size_t(block)]) return;  // already holds a registered history
    if (m_cached.count(historyHash)) return;  // another block holds the same history
    m_cached[historyHash] = block;
    m_blockHash[size_t(block)] = historyHash;
    m_hasHash[size_t(block)] = true;
}

uint64_t KvBlockPool::chainHash(uint64_t previous, const int32_t* tokens, int64_t count) {
    // splitmix64-style mixing per token: cheap, and a 64-bit collision between two real prefixes is not a concern
    // at the pool sizes involved.
    uint64_t h = previous ^ 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < count; ++i) {
        h ^= uint64_t(uint32_t(tokens[i])) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h ^= h >> 30;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 27;
        h *= 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    return h;
}

}  // namespace wb
