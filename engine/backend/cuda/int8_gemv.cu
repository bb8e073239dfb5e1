// INT8 weight-only GEMV: one warp per output row; each lane streams 4 weights at a time (char4 loads, 128 bytes per
// warp per step, fully coalesced), converts them to float in registers and multiplies by up to kTokens activation
// rows, which every warp of the block reads through L1. The per-row scale is applied once after the warp sum.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/common.cuh"
#include "backend/cuda/int8_gemv.cuh"

namespace wb::cuda {
namespace {

constexpr int kTokens = 8;
constexpr int kWarpsPerBlock = 8;

template <int kM>
__global__ void int8GemvKernel(const int8_t* q, const float* scales, int64_t rows, int64_t cols, const float* x,
                               float* y) {
    const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    const char4* w = reinterpret_cast<const char4*>(q + row * cols);
    float acc[kM];
#pragma unroll
    for (int t = 0; t < kM; ++t) acc[t] = 0.0f;
    for (int64_t c4 = lane; c4 < cols / 4; c4 += kWarp) {
        const char4 wv = w[c4];
        const float w0 = float(wv.x), w1 = float(wv.y), w2 = float(wv.z), w3 = float(wv.w);
#pragma unroll
        for (int t = 0; t < kM; ++t) {
            const float4 xv = reinterpret_cast<const float4*>(x + t * cols)[c4];
            acc[t] += w0 * xv.x + w1 * xv.y + w2 * xv.z + w3 * xv.w;
        }
    }
    const float s = scales[row];
#pragma unroll
    for (int t = 0; t < kM; ++t) {
        const float v = warpSum(acc[t]);
        if (lane == 0) y[t * rows + row] = v * s;
    }
}

template <int kM>
void launch(const int8_t* q, const float* scales, int64_t rows, int64_t cols, const float* x, float* y,
            cudaStream_t stream) {
    int8GemvKernel<kM><<<ceilDiv(rows, kWarpsPerBlock), kWarpsPerBlock * kWarp, 0, stream>>>(q, scales, rows, cols, x,
                                                                                            y);
}

}  // namespace

Result<void> int8Gemv(const int8_t* q, const float* scales, int64_t rows, int64_t cols, const float* x, int64_t m,
                      float* y, cudaStream_t stream) {
    if (cols % 4 != 0) return makeError("int8 gemv: columns must be a multiple of 4, not " + std::to_string(cols));
    if ((uintptr_t(q) | uintptr_t(x)) % 16 != 0) return makeError("int8 gemv: misaligned operands");
    NvtxRange r("int8Gemv");
    // Output rows of chunk t0 live at y + t0 * rows: the kernel writes [kM, rows] from there.
    for (int64_t t0 = 0; t0 < m; t0 += kTokens) {
        const int64_t mt = std::min<int64_t>(kTokens, m - t0);
        const float* xs = x + t0 * cols;
        float* ys = y + t0 * rows;
        switch (mt) {
            case 1: launch<1>(q, scales, rows, cols, xs, ys, stream); break;
            case 2: launch<2>(q, scales, rows, cols, xs, ys, stream); break;
            case 3: launch<3>(q, scales, rows, cols, xs, ys, stream); break;
            case 4: launch<4>(q, scales, rows, cols, xs, ys, stream); break;
            case 5: launch<5>(q, scales, rows, cols, xs, ys, stream); break;
            case 6: launch<6>(q, scales, rows, cols, xs, ys, stream); break;
            case 7: launch<7>(q, scales, rows, cols, xs, ys, stream); break;
            default: launch<8>(q, scales, rows, cols, xs, ys, stream); break;
        }
        WB_CUDA_CHECK_LAUNCH("int8GemvKernel");
    }
    return {};
}

}  // namespace wb::cuda
