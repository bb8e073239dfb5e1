// Sampling on the device, one block per row: topK rounds of a block-wide argmax that skips ids already taken
// (O(topK * vocab), which for topK <= 256 costs less than sorting the vocabulary), then thread 0 draws from the
// softmax of the chosen logits. Greedy is the one-round case.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "backend/cuda/common.cuh"
#include "backend/cuda/sampling.cuh"

namespace wb::cuda {
namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ bool better(float v, int id, float bv, int bid) { return v > bv || (v == bv && id < bid); }

__global__ void topKKernel(const float* logits, int64_t vocab, int topK, float temperature, const float* uniforms,
                           int32_t* tokens) {
    __shared__ int chosen[kMaxTopK];
    __shared__ float chosenVal[kMaxTopK];
    __shared__ float redVal[kThreads / kWarp];
    __shared__ int redId[kThreads / kWarp];
    const float* row = logits + int64_t(blockIdx.x) * vocab;
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    for (int k = 0; k < topK; ++k) {
        float bv = -INFINITY;
        int bid = INT_MAX;
        for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
            bool taken = false;
            for (int j = 0; j < k; ++j) taken |= chosen[j] == int(i);
            if (!taken && better(row[i], int(i), bv, bid)) bv = row[i], bid = int(i);
        }
        for (int o = kWarp / 2; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oid = __shfl_xor_sync(0xffffffffu, bid, o);
            if (better(ov, oid, bv, bid)) bv = ov, bid = oid;
        }
        if (lane == 0) redVal[warp] = bv, redId[warp] = bid;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < int(blockDim.x) / kWarp; ++w)
                if (better(redVal[w], redId[w], bv, bid)) bv = redVal[w], bid = redId[w];
            chosen[k] = bid;
            chosenVal[k] = bv;
        }
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    if (topK == 1 || temperature <= 0.0f) {
        tokens[blockIdx.x] = chosen[0];
        return;
    }
    // chosenVal is sorted descending: the first is the max.
    float sum = 0.0f;
    for (int k = 0; k < topK; ++k) sum += __expf((chosenVal[k] - chosenVal[0]) / temperature);
    const float target = uniforms[blockIdx.x] * sum;
    float c = 0.0f;
    int pick = chosen[topK - 1];
    for (int k = 0; k < topK; ++k) {
        c += __expf((chosenVal[k] - chosenVal[0]) / temperature);
        if (target < c) {
            pick = chosen[k];
            break;
        }
    }
    tokens[blockIdx.x] = pick;
}

}  // namespace

Result<void> sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK, float temperature,
                        const float* uniforms, int32_t* tokens, cudaStream_t stream) {
    if (m == 0) return {};
    if (temperature <= 0.0f) topK = 1;
    topK = int(std::min<int64_t>(std::max(topK, 1), vocab));
    if (topK > kMaxTopK) return makeError("cuda sampling: top-k " + std::to_string(topK) + " > 256");
    NvtxRange r("sampleTopK");
    topKKernel<<<unsigned(m), kThreads, 0, stream>>>(logits, vocab, topK, temperature, uniforms, tokens);
    WB_CUDA_CHECK_LAUNCH("topKKernel");
    return {};
}

}  // namespace wb::cuda
