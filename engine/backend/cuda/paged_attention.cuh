#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace wb::cuda {

/// Batch metadata (device arrays), as wb::AttentionBatch.
struct AttnBatch {
    int64_t numTokens;
    const int32_t* tokenSeq;     // [numTokens]
    const int32_t* tokenPos;     // [numTokens]
    const int32_t* blockTables;  // [numSeqs, maxBlocksPerSeq]
    int64_t maxBlocksPerSeq;
    int64_t maxContext;
};

struct AttnCache {
    float* keys;    // [numBlocks, blockSize, numKvHeads * headDim]
    float* values;  // same
    int64_t blockSize, numKvHeads, headDim;
};

/// Keys/values of each token into its slot of the paged cache.
Result<void> writeKv(const float* k,  // [numTokens, numKvHeads * headDim]
                     const float* v,  // same
                     const AttnBatch& b, const AttnCache& c, cudaStream_t stream);

/// Workspace bytes pagedAttention needs for this batch (split-K partials); 0 when no split is needed.
int64_t pagedAttentionWorkspaceBytes(const AttnBatch& b, int numHeads, int64_t headDim);

/// Causal attention over each token's own sequence (decode and prefill tokens mixed in one launch).
Result<void> pagedAttention(const float* q,  // [numTokens, numHeads * headDim]
                            int numHeads, float scale, const AttnBatch& b, const AttnCache& c,
                            float* out,  // [numTokens, numHeads * headDim]
                            void* workspace, int64_t workspaceBytes, cudaStream_t stream);

}  // namespace wb::cuda
