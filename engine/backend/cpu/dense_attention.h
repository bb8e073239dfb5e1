// Non-causal attention over one span of tokens (a vision tower's frame), one head at a time, tiled so that each
// key and value is read once per tile of queries instead of once per query: scores and the weighted sum are two
// f32 GEMMs through the CPU matmul kernels (keys packed [n, d], values transposed [d, n]), with the softmax
// between them on a tile of rows. Memory: one tile of scores (tile × n floats) per call, never n × n.
#pragma once

#include <cstdint>
#include <functional>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace wb::cpu {

/// KV cache rows: stores n f32 values as `t` (F32 copies, F16 rounds to nearest even) and loads them back to f32.
/// F16C where the active ISA has it (AVX2 and up), else the scalar conversions of core/dtype.h: the same bits.
void storeKvRow(const float* src, void* dst, DType t, int64_t n);
void loadKvRow(const void* src, DType t, float* dst, int64_t n);
/// The address of element `index` of a row of `t` values.
inline const void* kvElement(const void* row, DType t, int64_t index) {
    return static_cast<const uint8_t*>(row) + index * (t == DType::F16 ? 2 : 4);
}

struct DenseAttentionArgs {
    const float* q = nullptr;  // row i of the queries at q + i * qStride (headDim floats)
    const float* k = nullptr;
    const float* v = nullptr;
    int64_t qStride = 0, kStride = 0, vStride = 0;
    float* out = nullptr;  // row i at out + i * outStride
    int64_t outStride = 0;
    int64_t n = 0;        // tokens in the span (queries = keys = values)
    int64_t headDim = 0;
    float scale = 1.0f;   // applied to q·k
    /// Keys, values and the softmax weights rounded to BF16 for both products when AMX tiles are available
    /// (amx_gemm.h; the queries then too): a reduced-precision model's vision tower. Else, or when the head width
    /// is not a multiple of 32, f32 as without it.
    bool bf16 = false;
};

void denseAttention(const DenseAttentionArgs& a, ThreadPool& pool);

/// The same, one query at a time (the plain definition): tests hold denseAttention to it.
void denseAttentionReference(const DenseAttentionArgs& a);

/// Causal attention for a run of consecutive query tokens of one sequence (a prefill chunk): token r sits at cache
/// position firstPos + r and sees positions [0, firstPos + r]. Keys and values are read through accessors (a
/// paged cache), packed once per KV head, and every query tile of every head in the KV head's group goes through
/// two f32 GEMMs, as denseAttention. For long prompts; decode steps go through pagedDecodeAttention.
struct CausalRunArgs {
    const float* q = nullptr;  // token r, head h at q + r * qStride + h * headDim
    int64_t qStride = 0;
    float* out = nullptr;  // likewise
    int64_t outStride = 0;
    int64_t numTokens = 0;
    int64_t firstPos = 0;
    int numHeads = 0, numKvHeads = 0;
    int64_t headDim = 0;
    float scale = 1.0f;
    /// The row of position p holding every KV head (KV head g at + g * headDim values of kvType).
    std::function<const void*(int64_t)> keyRow, valueRow;
    /// What the cache rows hold: F32, or F16 (widened to f32 when packed; BF16 tiles as before).
    DType kvType = DType::F32;
    /// As DenseAttentionArgs::bf16: both products on BF16 tiles (AMX), fused (amx::attendBf16), when available.
    bool bf16 = false;
};

void causalAttentionTiled(const CausalRunArgs& a, ThreadPool& pool);

/// Attention for single query tokens over a paged cache (decode steps, short chunks): token rows[k] (q and out
/// at rows[k] * stride) sees positions [0, length(k)) of its sequence. One work item is a (token, KV head, slice of
/// its query group): the group's heads read each key and value row once between them (GQA), up to 16 positions
/// per kernel call (cpu::groupScores / groupAccum). Groups split into slices when there are fewer (token, KV head)
/// pairs than threads.
struct PagedDecodeArgs {
    const float* q = nullptr;  // token i, head h at q + i * qStride + h * headDim
    int64_t qStride = 0;
    float* out = nullptr;  // likewise
    int64_t outStride = 0;
    const int64_t* rows = nullptr;  // the tokens to attend
    int64_t numRows = 0;
    int numHeads = 0, numKvHeads = 0;
    int64_t headDim = 0;
    float scale = 1.0f;
    /// Positions per KV block: rows of one block are consecutive, rowStride values apart.
    int64_t blockSize = 0;
    int64_t rowStride = 0;
    std::function<int64_t(int64_t k)> length;
    /// The row of position p (every KV head; KV head g at + g * headDim) for the k-th token's sequence.
    std::function<const void*(int64_t k, int64_t p)> keyRow, valueRow;
    /// What the cache rows hold: F32, or F16 (a run of <= 16 rows of one KV head is widened to f32 in a
    /// per-thread buffer before the kernels read it: the cache is streamed at half the bytes).
    DType kvType = DType::F32;
};

void pagedDecodeAttention(const PagedDecodeArgs& a, ThreadPool& pool);

}  // namespace wb::cpu
