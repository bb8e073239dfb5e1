// BF16 GEMM on Intel AMX tiles (Sapphire Rapids and later): y[m, w.rows] = x[m, w.cols] · Wᵀ for BF16 (and
// per-row int8) weights and many tokens (prefill, the vision tower, attention's two products). The activations are
// rounded to BF16 once per call (round to nearest even, as Transformers' bfloat16 path does to every activation),
// products accumulate in f32 inside the tile unit. Decode steps (few tokens) stay on the AVX-512 kernels, which are
// memory bound anyway and keep activations in f32.
//
// Layout: the weight matrix is used as it is stored (row-major BF16, k contiguous), as the tiles' A operand: a
// tile is 16 weight rows × 32 k values. The activations are packed per call into the B operand's pair-interleaved
// ("VNNI") layout, 16 tokens a tile. C tiles therefore hold 16 output features × 16 tokens and are written
// transposed into y. Threads split the weight rows; tokens go in blocks whose packed copy stays in L2.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/weight_matrix.h"
#include "core/thread_pool.h"

namespace wb::cpu::amx {

/// The CPU has AMX-TILE and AMX-BF16 and the kernel granted this process the tile state (arch_prctl).
bool available();
/// available(), not switched off by WB_CPU_AMX=0 or setEnabled(false), and the active ISA is AVX-512.
bool enabled();
/// For tests and benchmarks that compare paths within one process; not while kernels run. Returns enabled().
bool setEnabled(bool on);

/// Fewest tokens for which the tile path pays (below it the GEMV kernels are bound by reading the weights).
constexpr int64_t kMinTokens = 16;

/// AMX-INT8 is present too (and enabled()).
bool int8Enabled();
/// Most tokens for which interleaved matrices take the int8 tiles (matmulQ8_0x16Tiles). Q8_0 against decoding the
/// quants for the BF16 tiles (4-layer Llama at 4,096 x 13,696, 2 threads): +37-48 % at 16 tokens, +27 % at
/// 24-32, +19 % at 48, +4-10 % at 64, behind from 80 (every tile product's int32 result is scaled into f32 on the
/// vector units, 4 operations per token and row group, where the BF16 tiles' conversion is shared by all the
/// token groups).
/// The same for Q4_0 and Q4_K (4-layer files, int8 against BF16 tiles in one build: Q4_0 even at 64, Q4_K_M
/// +14 % at 64, even at 96).
constexpr int64_t kInt8TileMaxTokens = 64;
/// Q6_K pays twice the scaling (a scale per 16 values): 309 against 234 tokens/s at 32 tokens (BF16 tiles on the
/// plain rows), 4 % behind the BF16 tiles at 48.
constexpr int64_t kInt8TileMaxTokensQ6K = 40;
/// Whether the int8-tile kernels (below) take this matrix and token count: interleaved (weight_matrix.h),
/// kMinTokens <= m <= kInt8TileMaxTokens (Q6_K: kInt8TileMaxTokensQ6K), int8Enabled().
bool suitsInt8Tiles(const WeightMatrix& w, int64_t m);
/// Output rows [r0, r1) (multiples of 16) of an interleaved Q8_0 matrix against job.qa, cpu_ops' int8
/// activations per 32-block in tile order (QuantizedActs::tiles, tileD, tileBias), on AMX-INT8 tiles: the
/// same result as the VNNI kernel's, bit for bit. Each calling thread configures its tiles.
void matmulQ8_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1);
/// The same for interleaved Q4_0, Q5_0 and Q4_K (each block's nibbles split into the 8 lines of the Q8_0 form; Q4_K's
/// sub-block scales and mins applied per 32 values, its mins against QuantizedActs::tileXsum).
void matmulQ4_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1);
void matmulQ5_0x16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1);
void matmulQ4_Kx16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1);
/// Interleaved Q6_K: two K = 16 products per 32-value sub-block (a scale per 16 values), against
/// QuantizedActs::tileBias16 for its -32 offset.
void matmulQ6_Kx16Tiles(const detail::MatmulJob& job, int64_t r0, int64_t r1);

/// Whether matmulBf16 takes this matrix and token count: BF16, I8 (per-row int8), F16 or a block type (Q8_0,
/// Q4_0, Q5_0, Q4_K, Q6_K), rows a multiple of 16, cols of 32, m >= kMinTokens, and enabled().
bool suits(const WeightMatrix& w, int64_t m);

/// y[m, w.rows] = x[m, w.cols] · Wᵀ (row-major f32 x and y). Requires suits(w, m). I8 weights go into the tiles
/// as BF16 exactly (|q| <= 127), their row scales applied to the output: the same weights as the int8 vector
/// kernels, with BF16 activations instead of int8 ones per 32-block. F16 weights stay exact: weights and
/// activations are split into two BF16 parts each (v = hi + lo) and the tiles sum three of the four products
/// (activations to about 2^-16 relative; three times BF16's tile work). Block-quantized weights are decoded
/// (scale × quant, K-quant mins subtracted) and rounded to BF16 per 32-row × 512-column panel as the panel is
/// used, never stored whole: BF16 weights (2^-9 relative) and BF16 activations against the block kernels'
/// f32 weights and int8 activations per 32.
void matmulBf16(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool);

/// Non-causal attention over one span of n tokens, one head (the vision tower's frames), fused on AMX tiles as
/// FlashAttention does: per group of 16 queries, keys in blocks of 256 — scores Q·Kᵀ into a 16 KB buffer, an
/// online softmax across the block (running max and sum per query), then P·V accumulated into the group's output
/// — so no n-wide row of scores is ever written. q, k, v and the softmax weights are rounded to BF16; products and
/// the softmax in f32. Requires enabled(), headDim a multiple of 32 and at most 256.
void attentionBf16(const float* q, int64_t qStride, const float* k, int64_t kStride, const float* v, int64_t vStride,
                   int64_t n, int64_t headDim, float scale, float* out, int64_t outStride, ThreadPool& pool);

/// One KV head's keys and values in BF16 tile layouts, packed once and attended by every query head of its group.
struct PackedKv {
    std::vector<uint16_t> k, vt;
    int64_t n = 0, np = 0, d = 0;
};
/// Packs positions [0, n) read through the accessors (each returns headDim floats). headDim as attentionBf16.
void packKv(int64_t n, int64_t headDim, const std::function<const float*(int64_t)>& keyRow,
            const std::function<const float*(int64_t)>& valueRow, PackedKv& kv, ThreadPool& pool);
/// numQ queries (row i at q + i·qStride) over kv; causal when firstPos >= 0: query i sits at position
/// firstPos + i and sees keys [0, firstPos + i]. Output row i at out + i·outStride.
void attendBf16(const float* q, int64_t qStride, int64_t numQ, float scale, const PackedKv& kv, int64_t firstPos,
                float* out, int64_t outStride, ThreadPool& pool);

}  // namespace wb::cpu::amx
