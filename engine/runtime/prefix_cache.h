// The scheduler's side of the prefix cache: a sequence's full blocks are keyed by the hash of its history up to
// each block's end, so a later sequence with the same prefix takes those blocks instead of recomputing them. The
// pool keeps the hash -> block entries (KvBlockPool::lookup / registerBlock); this decides what is hashed.
// Internal to the scheduler (compiled into wb_api, see scheduler.h). Loop thread only.
#pragma once

#include <cstdint>

#include "runtime/kv_block_pool.h"
#include "runtime/sequence.h"

namespace wb {

/// Keys the prompt's image tokens (which all share one id) by their image's content and index, in s.keyTokens.
void setImageKeyTokens(Sequence& s);
/// The history hash of block `block` of the sequence, chained onto `prev` (the hash of the blocks before it).
uint64_t prefixBlockHash(const KvBlockPool& pool, const Sequence& s, uint64_t prev, int64_t block);
/// Takes the longest run of cached blocks matching the sequence's history into its (empty) block table.
void matchPrefix(KvBlockPool& pool, Sequence& s);
/// Registers the sequence's newly computed full blocks under their history hashes.
void registerComputedBlocks(KvBlockPool& pool, Sequence& s);

}  // namespace wb
