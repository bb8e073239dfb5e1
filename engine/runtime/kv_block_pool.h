// Paged KV cache storage: a fixed pool of blocks of `blockSize` token slots, each slot holding the keys and
// values of every layer. Sequences own blocks through their block tables; blocks are reference-counted so
// that identical prompt prefixes can share them. Not thread-safe: owned by the engine loop.
#pragma once

#include <cstdint>
#include <memory>
#include <memory>
#include <optional>
#include <vector>

namespace wb {

class HugeBuffer;

/// Where a pool keeps keys and values: in host memory here, or elsewhere (device memory, split across the ranks of
/// a tensor-parallel model) in storage the model attaches with setExternalStorage.
enum class KvStorage { Host, External };

class KvBlockPool {
public:
    /// kvDim = numKvHeads * headDim. Host storage: numLayers * numBlocks * blockSize * kvDim floats, twice.
    KvBlockPool(int64_t numLayers, int64_t kvDim, int64_t blockSize, int64_t numBlocks,
                KvStorage storage = KvStorage::Host);

    int64_t blockSize() const { return m_blockSize; }
    int64_t numBlocks() const { return m_numBlocks; }
    int64_t numFree() const { return int64_t(m_free.size()); }
    int64_t numUsed() const { return m_numBlocks - numFree(); }
    static int64_t bytesPerBlock(int64_t numLayers, int64_t kvDim, int64_t blockSize) {
        return 2 * numLayers * kvDim * blockSize * int64_t(sizeof(float));
    }

    /// A free block with reference count 1, or nothing when the pool is exhausted.
    std::optional<int32_t> allocate();
    /// Adds a reference (prefix sharing).
    void retain(int32_t block);
    /// Drops a reference; the block returns to the pool at zero.
    void release(int32_t block);
    int32_t refCount(int32_t block) const { return m_refs[size_t(block)]; }

    int64_t numLayers() const { return m_numLayers; }
    int64_t kvDim() const { return m_kvDim; }
    bool hasHostStorage() const { return m_k != nullptr; }
    /// Storage kept by `owner` (a model) outside this pool, released with the pool; null until set.
    void* externalStorage(const void* owner) const { return m_externalOwner == owner ? m_external.get() : nullptr; }
    void setExternalStorage(const void* owner, std::shared_ptr<void> storage) {
        m_externalOwner = owner;
        m_external = std::move(storage);
    }

    float* keys(int64_t layer, int32_t block, int64_t offset) {
        return m_k + ((layer * m_numBlocks + block) * m_blockSize + offset) * m_kvDim;
    }
    float* values(int64_t layer, int32_t block, int64_t offset) {
        return m_v + ((layer * m_numBlocks + block) * m_blockSize + offset) * m_kvDim;
    }

private:
    int64_t m_numLayers, m_kvDim, m_blockSize, m_numBlocks;
    // Anonymous mapped memory (zero pages are free until written): a pool sized for every sequence at full
    // length takes RAM only for the blocks that get filled.
    std::shared_ptr<HugeBuffer> m_storage;
    float* m_k = nullptr;
    float* m_v = nullptr;
    std::vector<int32_t> m_free;  // stack of free block ids
    std::vector<int32_t> m_refs;
    const void* m_externalOwner = nullptr;
    std::shared_ptr<void> m_external;
};

/// The blocks of one sequence, in position order: position p lives in block table[p / blockSize].
struct BlockTable {
    std::vector<int32_t> blocks;
    /// Blocks needed to hold `numTokens` tokens.
    static int64_t blocksFor(int64_t numTokens, int64_t blockSize) { return (numTokens + blockSize - 1) / blockSize; }
};

}  // namespace wb
