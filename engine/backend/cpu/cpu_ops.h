// CPU kernels. Every op accumulates in f32; the SIMD paths (AVX2+F16C+FMA, AVX-512 with BF16/VNNI) are picked
// at run time from what the CPU reports, with a portable scalar fallback that is also the reference in tests.
#pragma once

#include <cstdint>

#include "backend/cpu/weight_matrix.h"
#include "core/thread_pool.h"

namespace wb::cpu {

enum class Isa { Scalar, Avx2, Avx512 };
/// The best instruction set this CPU has (overridable with WB_CPU_ISA=scalar|avx2|avx512 for tests).
Isa detectedIsa();
const char* isaName(Isa isa);
/// Switches the kernels used from now on (clamped to what the CPU supports; returns the ISA in effect). For tests
/// and benchmarks that compare paths within one process; not to be called while kernels run.
Isa setIsa(Isa isa);
/// The ISA whose kernels run now (detectedIsa() until setIsa is called).
Isa activeIsa();

/// Whether the active kernels run interleaved Q8_0, Q4_0 and Q4_K matrices (interleaveBlocks) natively: AVX-512
/// VNNI. Loaders interleave only then; any ISA still computes them (rows decoded, slowly).
bool interleavesBlocks();

/// y[m, w.rows] = x[m, w.cols] · Wᵀ. x and y are row-major f32. Threads split the output rows (and for
/// large m, tiles of rows × tokens). Supports every dtype of WeightMatrix, interleaved ones included.
void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool);

/// out = x / rms(x) * weight, over rows of n (m rows). out may alias x.
void rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out);

/// Rotary embedding in rotate-half (NeoX/HF) order on `numHeads` heads of `headDim` for one token at
/// position `pos`; only the first `rotaryDim` dims of each head rotate. invFreq has rotaryDim/2 entries.
void ropeRotateHalf(float* x, int numHeads, int headDim, int rotaryDim, float pos, const float* invFreq);

/// out[i] = silu(gate[i]) * up[i].
void siluMul(const float* gate, const float* up, int64_t n, float* out);

/// In-place softmax over n values.
void softmax(float* x, int64_t n);
/// x[i] = exp(x[i] - shift) in place; returns the sum (SIMD, relative error ~2e-7).
float expShiftSum(float* x, float shift, int64_t n);

/// y += x (n values).
void addInPlace(float* y, const float* x, int64_t n);

/// Dot products of f32 vectors, used by attention.
float dot(const float* a, const float* b, int64_t n);
/// y += a * x.
void axpy(float a, const float* x, float* y, int64_t n);

/// Decode attention for G query heads that share a KV head, n <= 16 positions at a time (see cpu_kernels.h):
/// s[g·ls + p] = scale · (q_g · k_p), q rows at stride hd, k_p = k + p·kStride.
void groupScores(const float* q, int64_t G, const float* k, int64_t kStride, int64_t n, int64_t hd, float scale,
                 float* s, int64_t ls);
/// out_g += Σ_p s[g·ls + p] · v_p, out rows at stride hd, v_p = v + p·vStride, n <= 16.
void groupAccum(const float* s, int64_t ls, int64_t G, const float* v, int64_t vStride, int64_t n, int64_t hd,
                float* out);

}  // namespace wb::cpu
