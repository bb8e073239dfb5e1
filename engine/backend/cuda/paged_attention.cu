// Paged attention for mixed prefill/decode batches, flash-attention style: a block serves one (token, KV head,
// context partition); its warps are the query heads of the GQA group that read that KV head, and they share each
// tile of keys and values staged in shared memory. Each warp keeps an online softmax (running max and sum) and its
// output row in registers (lane owns dims lane, lane+32, ...). Long contexts are split into partitions
// (split-K, "flash-decoding"; how many: backend/attention_split.h, fewer per token as the step's tokens grow, so
// the workspace is bounded whatever the context): partitions write (max, sum, unnormalised output) and a second
// kernel combines them; a context that fits one partition is normalised in place.
//
// Not yet done: prefill query tiling (each query row is still its own warp, so a prefill re-reads K/V per token
// from L2) and FP16 KV storage.
#include "backend/cuda/common.cuh"
#include "backend/cuda/paged_attention.cuh"

#include "backend/attention_split.h"

namespace wb::cuda {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxDimsPerLane = kMaxHeadDim / kWarp;

__global__ void writeKvKernel(const float* k, const float* v, AttnBatch b, AttnCache c) {
    const int64_t kvDim = c.numKvHeads * c.headDim;
    const int64_t t = blockIdx.x;
    const int64_t pos = b.tokenPos[t];
    const int32_t block = b.blockTables[int64_t(b.tokenSeq[t]) * b.maxBlocksPerSeq + pos / c.blockSize];
    const int64_t slot = (int64_t(block) * c.blockSize + pos % c.blockSize) * kvDim;
    for (int64_t i = threadIdx.x; i < kvDim; i += blockDim.x) {
        c.keys[slot + i] = k[t * kvDim + i];
        c.values[slot + i] = v[t * kvDim + i];
    }
}

// grid (numTokens, numKvHeads, numPartitions), block (group * 32). Dynamic shared memory: 2 * tile * (hd + 1).
template <int kTile>
__global__ void attentionKernel(const float* q, int numHeads, float scale, AttnBatch b, AttnCache c, float* out,
                                float* partMax, float* partSum, float* partOut, int numParts,
                                int64_t partLen) {
    extern __shared__ float smem[];
    const int hd = int(c.headDim), stride = hd + 1;  // +1: keys read down a column do not hit one bank
    float* kTileS = smem;
    float* vTileS = smem + kTile * stride;
    const int group = numHeads / int(c.numKvHeads);
    const int t = blockIdx.x, kvh = blockIdx.y, part = blockIdx.z;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int h = kvh * group + warp;
    const int64_t len = int64_t(b.tokenPos[t]) + 1;
    const int64_t begin = int64_t(part) * partLen, end = min(len, begin + partLen);
    const int32_t* table = b.blockTables + int64_t(b.tokenSeq[t]) * b.maxBlocksPerSeq;
    const int64_t kvDim = c.numKvHeads * hd;

    float qv[kMaxDimsPerLane], acc[kMaxDimsPerLane];
    const float* qRow = q + (int64_t(t) * numHeads + h) * hd;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
        const int d = lane + i * kWarp;
        qv[i] = d < hd ? qRow[d] * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float runMax = -INFINITY, runSum = 0.0f;
    for (int64_t tile0 = begin; tile0 < end; tile0 += kTile) {
        const int n = int(end - tile0 < kTile ? end - tile0 : int64_t(kTile));
        __syncthreads();
        for (int idx = threadIdx.x; idx < n * hd; idx += blockDim.x) {
            const int j = idx / hd, d = idx % hd;
            const int64_t p = tile0 + j;
            const int64_t off = (int64_t(table[p / c.blockSize]) * c.blockSize + p % c.blockSize) * kvDim + kvh * hd + d;
            kTileS[j * stride + d] = c.keys[off];
            vTileS[j * stride + d] = c.values[off];
        }
        __syncthreads();
        // Lane j scores key j of the tile (kTile <= 32); lanes past n compute a dummy so that every lane joins the
        // shuffles that broadcast q.
        const int j = lane < n ? lane : 0;
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += __shfl_sync(0xffffffffu, qv[d / kWarp], d % kWarp) * kTileS[j * stride + d];
        const float s = lane < n ? dot : -INFINITY;
        const float tileMax = warpMax(s);
        const float newMax = fmaxf(runMax, tileMax);
        const float correction = __expf(runMax - newMax);
        const float p = lane < n ? __expf(s - newMax) : 0.0f;
        runSum = runSum * correction + warpSum(p);
#pragma unroll
        for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] *= correction;
        for (int j = 0; j < n; ++j) {
            const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
            for (int i = 0; i < kMaxDimsPerLane; ++i) {
                const int d = lane + i * kWarp;
                if (d < hd) acc[i] += pj * vTileS[j * stride + d];
            }
        }
        runMax = newMax;
    }
    const int64_t row = int64_t(t) * numHeads + h;
    if (numParts == 1) {
        const float inv = runSum > 0 ? 1.0f / runSum : 0.0f;
#pragma unroll
        for (int i = 0; i < kMaxDimsPerLane; ++i) {
            const int d = lane + i * kWarp;
            if (d < hd) out[row * hd + d] = acc[i] * inv;
        }
        return;
    }
    if (lane == 0) {
        partMax[row * numParts + part] = runMax;
        partSum[row * numParts + part] = runSum;
    }
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
        const int d = lane + i * kWarp;
        if (d < hd) partOut[(row * numParts + part) * hd + d] = acc[i];
    }
}

// grid (numTokens * numHeads), block hd threads: merges the partitions' online-softmax states.
__global__ void combineKernel(const float* partMax, const float* partSum, const float* partOut, int numParts, int hd,
                              float* out) {
    const int64_t row = blockIdx.x;
    float m = -INFINITY;
    for (int p = 0; p < numParts; ++p) m = fmaxf(m, partMax[row * numParts + p]);
    float sum = 0.0f, acc = 0.0f;
    for (int p = 0; p < numParts; ++p) {
        const float pm = partMax[row * numParts + p];
        if (pm == -INFINITY) continue;  // an empty partition (beyond this token's context)
        const float w = __expf(pm - m);
        sum += partSum[row * numParts + p] * w;
        acc += partOut[(row * numParts + p) * hd + threadIdx.x] * w;
    }
    out[row * hd + threadIdx.x] = sum > 0 ? acc / sum : 0.0f;
}


}  // namespace

Result<void> writeKv(const float* k, const float* v, const AttnBatch& b, const AttnCache& c, cudaStream_t stream) {
    if (b.numTokens == 0) return {};
    NvtxRange r("writeKv");
    writeKvKernel<<<unsigned(b.numTokens), 128, 0, stream>>>(k, v, b, c);
    WB_CUDA_CHECK_LAUNCH("writeKvKernel");
    return {};
}

int64_t pagedAttentionWorkspaceBytes(const AttnBatch& b, int numHeads, int64_t headDim) {
    return attentionWorkspaceBytes(b.numTokens, numHeads, headDim, b.maxContext);
}

Result<void> pagedAttention(const float* q, int numHeads, float scale, const AttnBatch& b, const AttnCache& c,
                            float* out, void* workspace, int64_t workspaceBytes, cudaStream_t stream) {
    if (b.numTokens == 0) return {};
    if (c.headDim > kMaxHeadDim) return makeError("cuda attention: head dim " + std::to_string(c.headDim) + " > 256");
    const int group = numHeads / int(c.numKvHeads);
    if (group * kWarp > 1024) return makeError("cuda attention: more than 32 query heads per KV head");
    NvtxRange r("pagedAttention");
    const AttentionSplit split = attentionSplit(b.numTokens, b.maxContext);
    const int parts = int(split.partitions);
    const int64_t need = pagedAttentionWorkspaceBytes(b, numHeads, c.headDim);
    if (need > workspaceBytes || (need > 0 && !workspace))
        return makeError("cuda attention: the split needs " + std::to_string(need) + " bytes of workspace, " +
                         std::to_string(workspaceBytes) + " given");
    float* partMax = static_cast<float*>(workspace);
    const int64_t rows = b.numTokens * numHeads;
    float* partSum = partMax ? partMax + rows * parts : nullptr;
    float* partOut = partSum ? partSum + rows * parts : nullptr;
    const dim3 grid(unsigned(b.numTokens), unsigned(c.numKvHeads), unsigned(parts));
    const int threads = group * kWarp;
    if (c.headDim <= 128) {
        const size_t smem = size_t(2 * 32 * (c.headDim + 1)) * sizeof(float);
        attentionKernel<32><<<grid, threads, smem, stream>>>(q, numHeads, scale, b, c, out, partMax, partSum, partOut,
                                                             parts, split.positionsPerPartition);
    } else {
        const size_t smem = size_t(2 * 16 * (c.headDim + 1)) * sizeof(float);
        attentionKernel<16><<<grid, threads, smem, stream>>>(q, numHeads, scale, b, c, out, partMax, partSum, partOut,
                                                             parts, split.positionsPerPartition);
    }
    WB_CUDA_CHECK_LAUNCH("attentionKernel");
    if (parts > 1) {
        combineKernel<<<unsigned(rows), unsigned(c.headDim), 0, stream>>>(partMax, partSum, partOut, parts,
                                                                          int(c.headDim), out);
        WB_CUDA_CHECK_LAUNCH("combineKernel");
    }
    return {};
}

}  // namespace wb::cuda
