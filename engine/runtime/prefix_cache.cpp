#include "runtime/prefix_cache.h"

#include <vector>

namespace wb {

void setImageKeyTokens(Sequence& s) {
    // Image tokens all share one id: key each by its image's content and its index in it, so that the prefix
    // cache never hands one image's keys and values to a prompt with another image. Keys are negative:
    // no real token id collides with them.
    s.keyTokens = s.prompt.ids;
    size_t image = 0;
    int64_t k = 0;
    for (size_t i = 0; i < s.keyTokens.size(); ++i) {
        if (s.keyTokens[i] != s.prompt.imageTokenId) {
            if (k > 0) ++image;
            k = 0;
            continue;
        }
        const uint64_t h = (image < s.prompt.imageHashes.size() ? s.prompt.imageHashes[image] : 0) ^
                           (uint64_t(k++) * 0x9E3779B97F4A7C15ull);
        s.keyTokens[i] = int32_t(uint32_t(h ^ (h >> 32)) | 0x80000000u);
    }
}

uint64_t prefixBlockHash(const KvBlockPool& pool, const Sequence& s, uint64_t prev, int64_t block) {
    const int64_t bs = pool.blockSize(), from = block * bs;
    if (s.keyTokens.empty() || from >= int64_t(s.keyTokens.size()))
        return KvBlockPool::chainHash(prev, s.tokens.data() + from, bs);
    std::vector<int32_t> key(static_cast<size_t>(bs));
    for (int64_t i = 0; i < bs; ++i)
        key[size_t(i)] = from + i < int64_t(s.keyTokens.size()) ? s.keyTokens[size_t(from + i)] : s.tokens[size_t(from + i)];
    return KvBlockPool::chainHash(prev, key.data(), bs);
}

void matchPrefix(KvBlockPool& pool, Sequence& s) {
    // Reuse the longest run of cached full blocks of this history, stopping before the block of the last token:
    // that token must run to give the logits, and a sequence only ever writes into blocks of its own.
    const int64_t bs = pool.blockSize();
    const int64_t maxBlocks = (int64_t(s.tokens.size()) - 1) / bs;
    uint64_t h = 0;
    s.blockHashes.clear();
    for (int64_t j = 0; j < maxBlocks; ++j) {
        h = prefixBlockHash(pool, s, h, j);
        const auto b = pool.lookup(h);
        if (!b) break;
        pool.retain(*b);
        s.table.blocks.push_back(*b);
        s.blockHashes.push_back(h);
    }
    s.numComputed = int64_t(s.table.blocks.size()) * bs;
}

void registerComputedBlocks(KvBlockPool& pool, Sequence& s) {
    const int64_t bs = pool.blockSize();
    while (int64_t(s.blockHashes.size() + 1) * bs <= s.numComputed) {
        const size_t j = s.blockHashes.size();
        const uint64_t h = prefixBlockHash(pool, s, j ? s.blockHashes.back() : 0, int64_t(j));
        pool.registerBlock(s.table.blocks[j], h);
        s.blockHashes.push_back(h);
    }
}

}  // namespace wb
