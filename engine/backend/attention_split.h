// How the CUDA paged attention splits each token's context into partitions (split-K, "flash-decoding"), and the
// workspace that costs: a plain rule, compiled into the CUDA module and the engine alike, so that the engine can
// reserve the worst case at load time (inside the memory plan, before the KV budget) and tests can hold the rule
// on the CPU.
//
// Partitions exist for parallelism: a decode of one token over a long context has few (token, KV head) blocks,
// so its context is cut into partitions that run side by side and a second kernel combines them. A step with
// many tokens already has enough blocks, so the partitions per token shrink as tokens grow: numTokens *
// partitions never exceeds kAttentionMaxSplitRows when there is more than one partition. That bounds the
// workspace by numHeads * kAttentionMaxSplitRows * (headDim + 2) floats whatever the context, where sizing every
// token by the batch's longest context (the old rule) asked gigabytes for a prefill chunk beside one long decode.
#pragma once

#include <algorithm>
#include <cstdint>

namespace wb {

/// A partition covers at least this many positions: a shorter one costs more in the combine than it gains.
constexpr int64_t kAttentionMinPartitionPositions = 512;
/// The most (token, partition) pairs of one step when the context is split.
constexpr int64_t kAttentionMaxSplitRows = 1024;

struct AttentionSplit {
    int64_t partitions = 1;
    int64_t positionsPerPartition = 0;  // the span of every partition; a token's last one may be shorter or empty
};

/// The split of a step of `numTokens` tokens whose longest context is `maxContext` positions.
inline AttentionSplit attentionSplit(int64_t numTokens, int64_t maxContext) {
    AttentionSplit s;
    if (numTokens <= 0 || maxContext <= 0) return s;
    const int64_t byContext = maxContext / kAttentionMinPartitionPositions;  // each at least the minimum
    const int64_t byRows = std::max<int64_t>(1, kAttentionMaxSplitRows / numTokens);
    s.partitions = std::max<int64_t>(1, std::min(byContext, byRows));
    s.positionsPerPartition = (maxContext + s.partitions - 1) / s.partitions;
    return s;
}

/// Workspace bytes of that split for `numHeads` query heads of `headDim` (per row and partition: a max, a sum
/// and headDim unnormalised outputs, f32); 0 when the context is not split.
inline int64_t attentionWorkspaceBytes(int64_t numTokens, int64_t numHeads, int64_t headDim, int64_t maxContext) {
    const AttentionSplit s = attentionSplit(numTokens, maxContext);
    if (s.partitions <= 1) return 0;
    return numTokens * numHeads * s.partitions * (headDim + 2) * int64_t(sizeof(float));
}

/// The most attentionWorkspaceBytes asks of any step of 1..maxTokens tokens with contexts up to maxContext: what
/// a model reserves at load time. (More context never means fewer partitions, so maxContext is the worst case.)
inline int64_t attentionWorkspaceBound(int64_t maxTokens, int64_t numHeads, int64_t headDim, int64_t maxContext) {
    int64_t worst = 0;
    const int64_t last = std::min(maxTokens, kAttentionMaxSplitRows);  // beyond, nothing is split
    for (int64_t n = 1; n <= last; ++n)
        worst = std::max(worst, attentionWorkspaceBytes(n, numHeads, headDim, maxContext));
    return worst;
}

}  // namespace wb
