// Private to backend/cpu: the per-ISA kernel tables that cpu_ops.cpp dispatches to. Each ISA lives in its own
// .cpp compiled (through #pragma GCC target) for that instruction set only, so nothing it defines can leak into
// code that runs on a CPU without it.
#pragma once

#include <cstdint>

#include "backend/cpu/weight_matrix.h"

namespace wb::cpu::detail {

/// Activations quantized once per matmul for the integer paths (Q8_0, I8): per token, `ldq` int8 values
/// (cols rounded up to 64 and zero padded, so kernels may load two 32-blocks at a time), and per 32-block an f32
/// scale and bias = -16·Σq. The AVX-512 path feeds weights as unsigned w+128 to vpdpbusd, which adds 128·Σq per
/// block; starting each block's 8 int32 lanes at -16·Σq cancels that for free.
struct QuantizedActs {
    const int8_t* q = nullptr;
    const float* d = nullptr;
    const int32_t* bias = nullptr;
    int64_t ldq = 0;  // bytes per token in q
    int64_t ldb = 0;  // entries per token in d and sum (ldq / 32)
    /// Only for the block types whose values are offset or carry mins (filled by cpu_ops.cpp from q, d, bias):
    /// xsum[t·ldb + b] = d·Σq of block b (the dequantized block's sum, for Q4_K's mins), and
    /// bias16[t·ldq/16 + g] = -8·Σq of 16-value group g (Q6_K's offset -32 spread over the group's 4 int32
    /// lanes, since its scales change every 16 values).
    const float* xsum = nullptr;
    const int32_t* bias16 = nullptr;
    /// Only for interleaved matrices on AMX-INT8 tiles: q in tile order, each group of 16 tokens (the last padded
    /// with zeros) as [block][16 tokens][32 bytes] at tiles + group·16·ldq: a block's A tile is 512 bytes in a row.
    const int8_t* tiles = nullptr;
    /// With tiles: d and the offset's correction of group g, block b, token t at [(g·ldb + b)·16 + t] (one memory
    /// broadcast each): 8·bias for Q8_0 (stored + 128), bias/2 for Q4_0 (values q - 8), bias for Q5_0 (q - 16).
    const float* tileD = nullptr;
    const int32_t* tileBias = nullptr;
    /// With tiles, Q4_K only: the token's d·Σq of the block (xsum) at the same place, for the sub-blocks' mins.
    const float* tileXsum = nullptr;
    /// With tiles, Q6_K only: -32·Σq of each 16-value half of the block at [((g·ldb + b)·2 + half)·16 + t].
    const int32_t* tileBias16 = nullptr;
};

struct MatmulJob {
    const WeightMatrix* w = nullptr;
    const float* x = nullptr;  // [m, cols]
    int64_t m = 0;
    float* y = nullptr;  // [m, rows]
    QuantizedActs qa;
};

/// Computes y[:, r0:r1) for all m tokens. r0 is a multiple of 16 (except possibly for the last range).
using RowRangeFn = void (*)(const MatmulJob& job, int64_t r0, int64_t r1);

struct KernelTable {
    RowRangeFn matmulF32 = nullptr;
    RowRangeFn matmulF16 = nullptr;
    RowRangeFn matmulBF16 = nullptr;
    RowRangeFn matmulQ8_0 = nullptr;
    /// Interleaved Q8_0 (WeightMatrix::interleaved; r0 and r1 multiples of 16). AVX-512 only: cpu_ops.cpp falls
    /// back to decoded rows on the other ISAs.
    RowRangeFn matmulQ8_0x16 = nullptr;
    /// Interleaved Q4_0, Q5_0, Q4_K and Q6_K, likewise.
    RowRangeFn matmulQ4_0x16 = nullptr;
    RowRangeFn matmulQ5_0x16 = nullptr;
    RowRangeFn matmulQ4_Kx16 = nullptr;
    RowRangeFn matmulQ6_Kx16 = nullptr;
    RowRangeFn matmulI8 = nullptr;
    /// Dot products on the blocks against the quantized activations (never a row decoded to f32).
    RowRangeFn matmulQ4_0 = nullptr;
    RowRangeFn matmulQ5_0 = nullptr;
    RowRangeFn matmulQ4_K = nullptr;
    RowRangeFn matmulQ6_K = nullptr;
    /// Any dtype: dequantizes a few rows at a time to f32 (thread-local scratch) and runs the f32 tile kernel.
    RowRangeFn matmulPanel = nullptr;
    /// quantizeActs (below), vectorized where the ISA allows.
    void (*quantizeActs)(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, int32_t* bias, int64_t ldq,
                         int64_t ldb) = nullptr;
    float (*dot)(const float* a, const float* b, int64_t n) = nullptr;
    void (*axpy)(float a, const float* x, float* y, int64_t n) = nullptr;
    /// x[i] = exp(x[i] - shift) in place, returning the sum (softmax's inner loop). SIMD versions use a degree-6
    /// polynomial for 2^f after range reduction: relative error ~2e-7.
    float (*expShiftSum)(float* x, float shift, int64_t n) = nullptr;
    /// Decode attention for a group of query heads sharing one KV head (GQA), a run of n <= 16 positions at a time:
    /// s[g·ls + p] = scale · (q_g · k_p) for the G query rows of q (stride hd), k_p = k + p·kStride. Each key is
    /// loaded once for all G heads, and 16 dot products reduce together instead of one horizontal sum each.
    void (*groupScores)(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd,
                        float scale, float* s, int64_t ls) = nullptr;
    /// out_g += Σ_p s[g·ls + p] · v_p for the G rows of out (stride hd), n <= 16 values v_p = v + p·vStride.
    void (*groupAccum)(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n,
                       int64_t hd, float* out) = nullptr;
};

const KernelTable& scalarKernels();
const KernelTable& avx2Kernels();
const KernelTable& avx512Kernels();

/// Quantizes m rows of `cols` f32 values into `qa`'s buffers (see QuantizedActs) by the rule of
/// backend/int8_act_quant.h (shared with the CUDA backend): ggml's Q8_0 layout, rounding to nearest even.
void quantizeActs(const float* x, int64_t m, int64_t cols, int8_t* q, float* d, int32_t* bias, int64_t ldq,
                  int64_t ldb);

}  // namespace wb::cpu::detail
