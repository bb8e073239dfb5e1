// Rotary embeddings: one thread per rotating pair (token, head, j). The angle is computed as the CPU reference
// computes it for each order: rotate-half in double (position * invFreq[j], then sin/cos, rounded to f32), so that
// long contexts keep their precision (f32 angles drift by ~2e-3 rad at position 32k); interleaved in f32.
#include "backend/cuda/common.cuh"
#include "backend/cuda/rope.cuh"

namespace wb::cuda {
namespace {

__global__ void ropeKernel(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                           const float* invFreq, int style) {
    const int half = rotaryDim / 2;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= m * numHeads * half) return;
    const int j = int(idx % half);
    const int64_t th = idx / half;  // token * numHeads + head
    const int64_t t = th / numHeads;
    float* v = x + th * headDim;
    float s, c;
    if (style == 0) {
        double sd, cd;
        sincos(double(positions[t]) * double(invFreq[j]), &sd, &cd);
        s = float(sd);
        c = float(cd);
    } else {
        sincosf(float(positions[t]) * invFreq[j], &s, &c);
    }
    const int a = style == 0 ? j : 2 * j, b = style == 0 ? j + half : 2 * j + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

}  // namespace

Result<void> rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                  const float* invFreq, int style, cudaStream_t stream) {
    const int64_t n = m * numHeads * (rotaryDim / 2);
    if (n == 0) return {};
    NvtxRange r("rope");
    ropeKernel<<<ceilDiv(n, 256), 256, 0, stream>>>(x, m, numHeads, headDim, rotaryDim, positions, invFreq, style);
    WB_CUDA_CHECK_LAUNCH("ropeKernel");
    return {};
}

}  // namespace wb::cuda
