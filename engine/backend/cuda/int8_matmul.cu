// W8A8 INT8 matmul, the same numerics at every token count and the CPU backend's activations bit for bit.
//
// 1. quantizeActsKernel: one warp per (token, block of 32 values); lane i quantizes value i by the shared rule of
//    backend/int8_act_quant.h (block max by shuffles, which is exact, NaN/inf by a ballot).
// 2. w8a8Kernel: one CTA of kW8a8KSplits (4) warps per tile of 16 weight rows x 8·T tokens. Warp s walks its own
//    contiguous run of K blocks; per block one mma.sync.m16n8k32 s8 x s8 -> s32 per 8 tokens gives the exact
//    integer dot of every (row, token) of the tile over that block, and each is folded into an f32 accumulator
//    with one fma by the token's block scale. The four runs meet in shared memory and are added pairwise, then
//    times the row's scale. Every output takes exactly that sequence of f32 operations, which depends on K only:
//    m, the token tiling and the launch shape never change a bit (w8a8Reference replays it on the host).
//
// Fragment use: within a block the mma contracts over 32 k values in its own fragment order; any permutation of
// k applied to both operands gives the same integer, so each lane loads 8 contiguous bytes (k = 8·(lane%4) ..)
// of its weight rows and of its token, and puts the first 4 where the fragment wants k = 4·(lane%4) .. and the
// last 4 where it wants k = 16 + 4·(lane%4) .. (PTX ISA, mma.m16n8k32 .s8 fragments: A rows lane/4 and lane/4+8,
// B column lane/4, C rows lane/4 (+8), columns 2·(lane%4) + {0, 1}).
#include <algorithm>
#include <cstdint>

#include "backend/cuda/common.cuh"
#include "backend/cuda/int8_matmul.cuh"
#include "backend/int8_act_quant.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the W8A8 kernel needs mma.sync m16n8k32 s8 (sm_80 and newer): set CMAKE_CUDA_ARCHITECTURES accordingly"
#endif

namespace wb::cuda {
namespace {

constexpr int kTileRows = 16;
constexpr int kMmaTokens = 8;
constexpr int kThreads = kW8a8KSplits * kWarp;
constexpr int64_t kMaxGridY = 65535;

int64_t align256(int64_t n) { return (n + 255) / 256 * 256; }

// x: [m, cols]; q: [m, nb·32]; d: [m, nb].
__global__ void quantizeActsKernel(const float* __restrict__ x, int64_t m, int64_t cols, int64_t nb,
                                   int8_t* __restrict__ q, float* __restrict__ d) {
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int lane = int(threadIdx.x % kWarp);
    if (warp >= m * nb) return;  // whole warps only: blockDim is a multiple of 32
    const int64_t t = warp / nb, b = warp % nb;
    const int64_t k = b * kActBlock + lane;
    const float v = k < cols ? x[t * cols + k] : 0.0f;
    const bool nonFinite = __any_sync(0xffffffffu, actNonFinite(v)) != 0;
    // Finite values: the max is exact in any order. With a NaN fmaxf drops it, but then the flag decides.
    const float amax = warpMax(fabsf(v));
    const ActQuantParams p = actQuantParams(amax, nonFinite);
    q[t * nb * kActBlock + k] = quantizeActValue(v, p);
    if (lane == 0) d[t * nb + b] = p.scale;
}

// Eight weights of one row from k (zeros past cols, or for a row outside the matrix).
template <bool kVec>
__device__ __forceinline__ uint2 loadWeights8(const int8_t* __restrict__ row, int64_t k, int64_t cols) {
    if (row == nullptr) return make_uint2(0u, 0u);
    if (kVec && k + 8 <= cols) return __ldg(reinterpret_cast<const uint2*>(row + k));
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if (k + i < cols) lo |= uint32_t(uint8_t(row[k + i])) << (8 * i);
        if (k + 4 + i < cols) hi |= uint32_t(uint8_t(row[k + 4 + i])) << (8 * i);
    }
    return make_uint2(lo, hi);
}

// d[0..3] = A(16x32, s8) · B(32x8, s8), exact in int32.
__device__ __forceinline__ void mmaS8(int (&d)[4], uint2 rowLo, uint2 rowHi, uint2 tok) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
        : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
        : "r"(rowLo.x), "r"(rowHi.x), "r"(rowLo.y), "r"(rowHi.y), "r"(tok.x), "r"(tok.y), "r"(0));
}

// One CTA: rows [r0, r0 + 16) of this launch's slice x tokens [t0, t0 + 8·T). w, wScale and y start at the
// slice's first row; y's rows are ldy apart.
template <int T, bool kVec>
__global__ void __launch_bounds__(kThreads)
    w8a8Kernel(const int8_t* __restrict__ w,      // [rows, cols]
               const float* __restrict__ wScale,  // [rows]
               int64_t rows, int64_t cols,
               const int8_t* __restrict__ q,  // [m, nb·32]
               const float* __restrict__ d,   // [m, nb]
               int64_t m,
               float* __restrict__ y,  // [m, ldy]
               int64_t ldy) {
    __shared__ float part[kW8a8KSplits][T * kMmaTokens][kTileRows];
    const int warp = int(threadIdx.x / kWarp), lane = int(threadIdx.x % kWarp);
    const int g = lane / 4, tq = lane % 4;
    const int64_t nb = actBlocks(cols), ldq = nb * kActBlock;
    const int64_t run = (nb + kW8a8KSplits - 1) / kW8a8KSplits;
    const int64_t bBegin = std::min<int64_t>(nb, warp * run), bEnd = std::min<int64_t>(nb, bBegin + run);
    const int64_t t0 = int64_t(blockIdx.x) * T * kMmaTokens;
    const int64_t r0 = int64_t(blockIdx.y) * kTileRows;
    const int8_t* rowLo = r0 + g < rows ? w + (r0 + g) * cols : nullptr;
    const int8_t* rowHi = r0 + g + 8 < rows ? w + (r0 + g + 8) * cols : nullptr;

    float acc[T][4];
#pragma unroll
    for (int j = 0; j < T; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

    for (int64_t b = bBegin; b < bEnd; ++b) {
        const int64_t k = b * kActBlock + tq * 8;
        const uint2 lo = loadWeights8<kVec>(rowLo, k, cols), hi = loadWeights8<kVec>(rowHi, k, cols);
#pragma unroll
        for (int j = 0; j < T; ++j) {
            const int64_t tokB = t0 + j * kMmaTokens + g;  // this lane's B column
            const uint2 xb = tokB < m ? __ldg(reinterpret_cast<const uint2*>(q + tokB * ldq + k)) : make_uint2(0u, 0u);
            int dot[4];
            mmaS8(dot, lo, hi, xb);
            const int64_t tokC = t0 + j * kMmaTokens + tq * 2;  // this lane's C columns: tokC, tokC + 1
            const float d0 = tokC < m ? __ldg(d + tokC * nb + b) : 0.0f;
            const float d1 = tokC + 1 < m ? __ldg(d + (tokC + 1) * nb + b) : 0.0f;
            // |dot| <= 32·127·128 < 2^24: exact as a float. One fma per block, in block order (the canonical sum).
            acc[j][0] = fmaf(float(dot[0]), d0, acc[j][0]);
            acc[j][1] = fmaf(float(dot[1]), d1, acc[j][1]);
            acc[j][2] = fmaf(float(dot[2]), d0, acc[j][2]);
            acc[j][3] = fmaf(float(dot[3]), d1, acc[j][3]);
        }
    }
#pragma unroll
    for (int j = 0; j < T; ++j) {
        part[warp][j * kMmaTokens + tq * 2][g] = acc[j][0];
        part[warp][j * kMmaTokens + tq * 2 + 1][g] = acc[j][1];
        part[warp][j * kMmaTokens + tq * 2][g + 8] = acc[j][2];
        part[warp][j * kMmaTokens + tq * 2 + 1][g + 8] = acc[j][3];
    }
    __syncthreads();
    static_assert(kW8a8KSplits == 4, "the pairwise sum below is written for four runs");
    for (int o = int(threadIdx.x); o < T * kMmaTokens * kTileRows; o += kThreads) {
        const int tok = o / kTileRows, r = o % kTileRows;
        const int64_t t = t0 + tok, row = r0 + r;
        if (t >= m || row >= rows) continue;
        // _rn intrinsics: never contracted, the same two adds and one multiply as w8a8Reference.
        const float s = __fadd_rn(__fadd_rn(part[0][tok][r], part[1][tok][r]), __fadd_rn(part[2][tok][r], part[3][tok][r]));
        y[t * ldy + row] = __fmul_rn(s, wScale[row]);
    }
}

template <int T, bool kVec>
Result<void> launchTiles(const int8_t* w, const float* wScale, int64_t rows, int64_t cols, const int8_t* q,
                         const float* d, int64_t m, float* y, cudaStream_t stream) {
    // Token tiles on x (consecutive CTAs share a weight tile, which then comes from L2), row tiles on y in
    // slices of at most 65,535.
    const int64_t tokenTiles = (m + T * kMmaTokens - 1) / (T * kMmaTokens);
    const int64_t rowTiles = (rows + kTileRows - 1) / kTileRows;
    for (int64_t rt = 0; rt < rowTiles; rt += kMaxGridY) {
        const int64_t sliceTiles = std::min(kMaxGridY, rowTiles - rt);
        const int64_t r0 = rt * kTileRows;
        const int64_t sliceRows = std::min(rows - r0, sliceTiles * kTileRows);
        const dim3 grid{unsigned(tokenTiles), unsigned(sliceTiles), 1u};
        w8a8Kernel<T, kVec><<<grid, kThreads, 0, stream>>>(w + r0 * cols, wScale + r0, sliceRows, cols, q, d, m,
                                                           y + r0, rows);
        WB_CUDA_CHECK_LAUNCH("w8a8Kernel");
    }
    return {};
}

template <int T>
Result<void> launchTiles(bool vec, const int8_t* w, const float* wScale, int64_t rows, int64_t cols, const int8_t* q,
                         const float* d, int64_t m, float* y, cudaStream_t stream) {
    return vec ? launchTiles<T, true>(w, wScale, rows, cols, q, d, m, y, stream)
               : launchTiles<T, false>(w, wScale, rows, cols, q, d, m, y, stream);
}

}  // namespace

Result<void> quantizeActs(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, cudaStream_t stream) {
    const int64_t nb = actBlocks(cols);
    if (m * nb == 0) return {};
    constexpr int kBlock = 256;
    quantizeActsKernel<<<ceilDiv(m * nb * kWarp, kBlock), kBlock, 0, stream>>>(x, m, cols, nb, q, d);
    WB_CUDA_CHECK_LAUNCH("quantizeActsKernel");
    return {};
}

Result<void> w8a8Matmul(const int8_t* w, const float* wScale, int64_t rows, int64_t cols, const float* x, int64_t m,
                        float* y, void* workspace, int64_t workspaceBytes, cudaStream_t stream) {
    if (m <= 0 || rows <= 0) return {};
    if (cols <= 0) return makeError("int8 matmul: no columns");
    if (workspaceBytes < w8a8WorkspaceBytes(m, cols))
        return makeError("int8 matmul: workspace of " + std::to_string(workspaceBytes) + " bytes, " +
                         std::to_string(w8a8WorkspaceBytes(m, cols)) + " needed");
    if (uintptr_t(workspace) % 16 != 0) return makeError("int8 matmul: misaligned workspace");
    if ((m + kMmaTokens - 1) / kMmaTokens > int64_t(0x7fffffff)) return makeError("int8 matmul: too many tokens");
    NvtxRange r("w8a8Matmul");
    const int64_t nb = actBlocks(cols);
    float* d = static_cast<float*>(workspace);
    int8_t* q = static_cast<int8_t*>(workspace) + align256(m * nb * 4);
    WB_TRY(quantizeActs(x, m, cols, q, d, stream));
    // 8-byte weight loads where every row starts 8-byte aligned; byte loads otherwise (and for a partial block).
    const bool vec = cols % 8 == 0 && uintptr_t(w) % 8 == 0;
    if (m <= 8) return launchTiles<1>(vec, w, wScale, rows, cols, q, d, m, y, stream);
    if (m <= 16) return launchTiles<2>(vec, w, wScale, rows, cols, q, d, m, y, stream);
    if (m <= 32) return launchTiles<4>(vec, w, wScale, rows, cols, q, d, m, y, stream);
    return launchTiles<8>(vec, w, wScale, rows, cols, q, d, m, y, stream);
}

}  // namespace wb::cuda
