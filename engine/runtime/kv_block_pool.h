// Paged KV cache storage: a fixed pool of blocks of `blockSize` token slots, each slot holding the keys and
// values of every layer. Sequences own blocks through their block tables; blocks are reference-counted so
// that identical prompt prefixes can share them. Not thread-safe: owned by the engine loop.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <optional>
#include <vector>

#include "core/dtype.h"

namespace wb {

class HugeBuffer;

/// Where a pool keeps keys and values: in host memory here, or elsewhere (device memory, split across the ranks of
/// a tensor-parallel model) in storage the model attaches with setExternalStorage.
enum class KvStorage { Host, External };

class KvBlockPool {
public:
    /// kvDim = numKvHeads * headDim. Host storage: numLayers * numBlocks * blockSize * kvDim values of `dtype`
    /// (F32, or F16: the FP16 KV cache, half the memory), twice.
    KvBlockPool(int64_t numLayers, int64_t kvDim, int64_t blockSize, int64_t numBlocks,
                KvStorage storage = KvStorage::Host, DType dtype = DType::F32);

    int64_t blockSize() const { return m_blockSize; }
    int64_t numBlocks() const { return m_numBlocks; }
    /// Blocks with no reference (cached prefix blocks included: they are reused only until allocated again).
    int64_t numFree() const { return m_numFree; }
    int64_t numUsed() const { return m_numBlocks - numFree(); }
    /// The type keys and values are stored in: F32 or F16.
    DType dtype() const { return m_dtype; }
    int64_t elementBytes() const { return kvElementBytes(m_dtype); }
    static int64_t kvElementBytes(DType t) { return t == DType::F16 ? 2 : 4; }
    static int64_t bytesPerBlock(int64_t numLayers, int64_t kvDim, int64_t blockSize, DType dtype = DType::F32) {
        return 2 * numLayers * kvDim * blockSize * kvElementBytes(dtype);
    }

    /// A free block with reference count 1, or nothing when the pool is exhausted. A block taken this way loses
    /// its prefix-cache entry (its contents are about to be overwritten).
    std::optional<int32_t> allocate();
    /// Adds a reference to a block in use, or takes a cached free block back into use.
    void retain(int32_t block);

    // Prefix cache: a full block whose keys and values were computed for a given token history is registered
    // under the hash of that history (every token from position 0 to the block's end), so a later sequence with
    // the same prefix reuses it instead of recomputing. Entries live until the block is allocated for other data.
    /// The cached block holding the history with this hash, if any (in use or free).
    std::optional<int32_t> lookup(uint64_t historyHash) const;
    /// Registers a full, computed block under its history hash (the first block registered for a hash wins).
    void registerBlock(int32_t block, uint64_t historyHash);
    /// Chains a block's tokens onto the hash of the history before it.
    static uint64_t chainHash(uint64_t previous, const int32_t* tokens, int64_t count);
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

    /// The kvDim values (of dtype()) of one token slot.
    void* keys(int64_t layer, int32_t block, int64_t offset) {
        return m_k + ((layer * m_numBlocks + block) * m_blockSize + offset) * m_kvDim * elementBytes();
    }
    void* values(int64_t layer, int32_t block, int64_t offset) {
        return m_v + ((layer * m_numBlocks + block) * m_blockSize + offset) * m_kvDim * elementBytes();
    }

private:
    int64_t m_numLayers, m_kvDim, m_blockSize, m_numBlocks;
    DType m_dtype = DType::F32;
    // Anonymous mapped memory (zero pages are free until written): a pool sized for every sequence at full
    // length takes RAM only for the blocks that get filled.
    std::shared_ptr<HugeBuffer> m_storage;
    uint8_t* m_k = nullptr;
    uint8_t* m_v = nullptr;
    // Free blocks in the order they were freed: allocation takes the front, so the block evicted from the prefix
    // cache is the one freed longest ago (LRU) and freshly cached blocks survive longest. A cached block taken
    // back by retain() stays in the queue and is skipped when it comes up (its count is no longer zero), so
    // retain needs no search.
    std::deque<int32_t> m_free;
    int64_t m_numFree = 0;
    std::vector<int32_t> m_refs;
    std::unordered_map<uint64_t, int32_t> m_cached;  // history hash -> block
    std::vector<uint64_t> m_blockHash;               // per block: its registered hash (when m_hasHash)
    std::vector<bool> m_hasHash;
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
