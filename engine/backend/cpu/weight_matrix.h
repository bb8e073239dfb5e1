// A 2-D weight as the CPU kernels consume it: W is [rows = out features, cols = in features], each row stored
// contiguously in `dtype` (block-quantized rows for Q8_0/Q4_0/Q5_0/Q4_K/Q6_K; int8 with one f32 scale per row for I8).
// The bytes either point into a memory-mapped file (used in place) or are owned after a load-time conversion.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"
#include "formats/tensor_info.h"

namespace wb {

struct WeightMatrix {
    std::string name;
    DType dtype = DType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    const uint8_t* data = nullptr;      // rows * rowBytes() bytes
    const float* rowScales = nullptr;   // I8 only: rows scales
    std::shared_ptr<void> keepAlive;    // keeps mapped file or owned buffer alive
    std::vector<uint8_t> owned;         // set when converted at load time
    std::vector<float> ownedScales;
    /// Block types only (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K): the rows are interleaved in groups of 16 for the AVX-512 VNNI
    /// kernels (see interleaveBlocks), not stored one after another. Group g still occupies the bytes of rows
    /// 16g..16g+15, so numBytes() holds, but a row is no longer a contiguous run: read one through dequantizeMatrixRow.
    bool interleaved = false;

    int64_t rowBytes() const { return dtypeRowBytes(dtype, cols); }
    int64_t numBytes() const { return rows * rowBytes() + (dtype == DType::I8 ? rows * 4 : 0); }
};

/// Wraps a file tensor of shape {rows, cols} (or {n} treated as one row) without copying.
Result<WeightMatrix> weightFromTensor(const TensorInfo& t, std::shared_ptr<void> keepAlive);

/// Converts to `target` (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K or I8) into owned memory; a no-op copy-free view
/// when equal. I8 is per-output-row symmetric: scale = max|w| / 127.
Result<WeightMatrix> convertWeight(const WeightMatrix& src, DType target);

/// Decodes `n` values of one row (n a multiple of the block size) into f32.
void dequantizeRow(DType dtype, const uint8_t* src, float* dst, int64_t n);
/// Encodes `n` f32 values into one row of `dtype` (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K; the K-quants
/// with a plain min/max fit, not llama.cpp's search). Used by converters and writers.
void quantizeRow(DType dtype, const float* src, uint8_t* dst, int64_t n);

/// Copies the weight's bytes (and row scales) into anonymous memory backed by transparent huge pages, so that
/// streaming it costs few TLB misses; the file mapping or previous buffer is released. Keeps the old storage
/// when the memory cannot be had.
void moveToHugePages(WeightMatrix& w);

/// Whether interleaveBlocks applies: Q8_0, Q4_0, Q5_0, Q4_K or Q6_K, not interleaved yet, rows a multiple of 16, an
/// even number of 32-blocks per row (the K-quants: whole super-blocks, as they always are).
bool canInterleave(const WeightMatrix& w);

/// Bytes of one group of 16 rows × one pair of 32-blocks in the interleaved layout: 1,088 for Q8_0, 576 for Q4_0,
/// 704 for Q5_0.
constexpr int64_t interleavedPairBytes(DType t) { return t == DType::Q4_0 ? 576 : t == DType::Q5_0 ? 704 : 1088; }
/// Bytes of one group of 16 rows × one 256-value super-block of interleaved Q4_K and Q6_K.
constexpr int64_t kInterleavedQ4KBytes = 2304;
constexpr int64_t kInterleavedQ6KBytes = 3360;

/// Rewrites a Q8_0, Q4_0, Q5_0, Q4_K or Q6_K matrix (canInterleave) in the layout of the AVX-512 generation kernels, in
/// new memory (huge pages when `hugePages`, like moveToHugePages; the old storage is released). Per group of 16
/// rows and per pair of 32-blocks (64 values; the K-quants per super-block): the 16 rows' scales, then the quants
/// in 64-byte lines, each holding 4 values of every one of the 16 rows (row i at bytes 4i..4i+3):
///  - Q8_0 (1,088 bytes): the 16 rows' f16 scales of the first block, then of the second (64 bytes), then 16
///    lines, line j = values 4j..4j+3 of the pair, each quant stored + 128 as an unsigned byte;
///  - Q4_0 (576 bytes): the scales as Q8_0's, then per block 4 lines, line j = the block's bytes 4j..4j+3 as the
///    file has them, so its low nibbles are values 4j..4j+3 and its high nibbles values 16+4j..16+4j+3 (unsigned,
///    value = q - 8): an AND and a shift make the 8 lines of the Q8_0 form;
///  - Q5_0 (704 bytes): the scales as Q8_0's, then per block the 16 rows' 4 bytes of fifth bits (64 bytes) and 4
///    nibble lines as Q4_0's (unsigned, value = q - 16: the fifth bits are spread over the lines' bytes by a
///    shift, a byte shuffle and a bit test);
///  - Q4_K (per 256-value super-block, 2,304 bytes): the 16 rows' d, then dmin (64 bytes), their 12 scale bytes
///    transposed (byte b of row i at 64 + 16·b + i: 192 bytes), then per 32-byte chunk j of nibbles 8 lines (line
///    l = row bytes 4l..4l+3 of the chunk), whose low nibbles are sub-block 2j's values 4l..4l+3 and high nibbles
///    sub-block 2j + 1's (unsigned, value = d·sc·q - dmin·mn);
///  - Q6_K (per super-block, 3,360 bytes): the 16 rows' d (32 bytes), their 16 int8 scales transposed (scale s of
///    row i at 32 + 16·s + i: 256 bytes), then per 128-value half n 8 lines of each of its two 32-byte chunks of
///    low 4 bits and 8 lines of its 32 bytes of high bit pairs (1,536 bytes): sub-block 4n + k takes the low
///    (k < 2) or high nibbles of chunk k % 2 and bits 2k..2k+1 of the high pairs (unsigned, value = d·sc·(q - 32),
///    a scale per 16 values).
/// One 64-byte load and one vpdpbusd against a broadcast activation dword then serve 16 rows, where the
/// row-at-a-time kernels spend about 20 instructions per 64 values of one row, and the lines are the B operand of
/// an AMX-INT8 product as they lie. Same bytes as the plain layout; a matrix that only the CPU's matmul reads
/// (never an embedding table: rows are gathered by token). sliceWeight refuses the result.
void interleaveBlocks(WeightMatrix& w, bool hugePages);

/// Row r of any weight (plain or interleaved) decoded into w.cols f32 values (I8 rows times their scale).
void dequantizeMatrixRow(const WeightMatrix& w, int64_t r, float* dst);

/// Reorders whole rows: out row i = in row perm[i]. Used to turn GGUF's interleaved rotary Q/K rows into the
/// rotate-half order (works for every dtype since rows move whole). The plain layout only: loaders permute before
/// they interleave.
void permuteRows(WeightMatrix& w, const std::vector<int64_t>& perm);

/// Copies rows [rowBegin, rowEnd) × columns [colBegin, colEnd) into owned memory: a tensor-parallel rank's shard.
/// Column bounds must fall on the dtype's block boundaries (I8 rows keep their full-row scale). An interleaved
/// matrix is refused (interleaving is for one CPU device, after any split).
Result<WeightMatrix> sliceWeight(const WeightMatrix& w, int64_t rowBegin, int64_t rowEnd, int64_t colBegin,
                                 int64_t colEnd);

}  // namespace wb
