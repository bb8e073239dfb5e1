// The backend interface: a Device owns memory and runs the ops that the model's forward pass needs, on buffers
// that live in its own memory. The CPU device (backend/cpu/cpu_device.h) is the readable reference; the CUDA device
// (backend/cuda/, a module loaded at run time) is checked against it op by op.
//
// Every pointer an op takes is in the device's memory. Ops may run asynchronously (CUDA: on the worker's stream), so
// an error can surface from a later op or from synchronize(); nothing aborts. Not thread-safe: one thread drives a
// device (its worker), after bindCurrentThread().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "api/model_types.h"
#include "core/result.h"

namespace wb {


/// Bytes owned by one device, released with the object.
class DeviceBuffer {
public:
    virtual ~DeviceBuffer() = default;
    virtual void* data() = 0;
    virtual int64_t numBytes() const = 0;
    float* f32() { return static_cast<float*>(data()); }
    int32_t* i32() { return static_cast<int32_t*>(data()); }
};

/// A weight matrix [rows = out features, cols = in features] resident on a device, in the dtype its matmul reads.
class DeviceWeight {
public:
    virtual ~DeviceWeight() = default;
    int64_t rows = 0;
    int64_t cols = 0;
    DType dtype = DType::F32;
    int64_t numBytes = 0;
};

/// Where each token of a flattened mixed prefill/decode batch sits. All arrays are in device memory.
struct AttentionBatch {
    int64_t numTokens = 0;
    const int32_t* tokenSeq = nullptr;     // [numTokens] batch entry of each token
    const int32_t* tokenPos = nullptr;     // [numTokens] position of each token in its sequence
    const int32_t* blockTables = nullptr;  // [numSeqs, maxBlocksPerSeq] KV block ids of each entry
    int64_t maxBlocksPerSeq = 0;
    int64_t maxContext = 0;  // max over tokens of tokenPos + 1
};

/// One layer of a paged KV cache on a device: keys and values [numBlocks, blockSize, numKvHeads * headDim] of
/// `dtype` (F32, or F16: the FP16 KV cache; a device that keeps only F32 refuses F16 with an error).
struct KvLayer {
    void* keys = nullptr;
    void* values = nullptr;
    int64_t numBlocks = 0;
    int64_t blockSize = 0;
    int64_t numKvHeads = 0;
    int64_t headDim = 0;
    DType dtype = DType::F32;
};

enum class RopeStyle {
    RotateHalf,   // NeoX/HF: dims j and j + rotaryDim/2 rotate together
    Interleaved,  // GPT-J/GGUF llama: dims 2j and 2j+1 rotate together
};

struct DeviceMemory {
    int64_t totalBytes = 0;
    int64_t freeBytes = 0;
};

class Device {
public:
    virtual ~Device() = default;
    virtual DeviceKind kind() const = 0;
    /// "cpu (2 threads, avx2)", "cuda:0 NVIDIA H100 80GB HBM3".
    virtual std::string name() const = 0;
    virtual DeviceMemory memory() const = 0;
    /// The backend's number of this device (the CUDA ordinal), -1 for the CPU.
    virtual int ordinal() const { return -1; }
    /// Binds the calling thread to this device (cudaSetDevice); called once by the worker that drives it.
    virtual Result<void> bindCurrentThread() { return {}; }

    virtual Result<std::unique_ptr<DeviceBuffer>> allocate(int64_t numBytes) = 0;
    /// Copies a host weight into the device's own layout. `w` may be shared with other devices (a replicated
    /// weight): a device that reads host memory keeps the reference instead of copying.
    virtual Result<std::unique_ptr<DeviceWeight>> uploadWeight(std::shared_ptr<const WeightMatrix> w) = 0;
    virtual Result<void> copyToDevice(void* dst, const void* src, int64_t numBytes) = 0;
    virtual Result<void> copyToHost(void* dst, const void* src, int64_t numBytes) = 0;
    /// Waits for queued work; reports an asynchronous error of an earlier op.
    virtual Result<void> synchronize() = 0;

    /// Non-empty once the device can run nothing more: a sticky error (CUDA: an illegal address, a kernel that
    /// trapped, an uncorrectable ECC error) left its context unusable, and every later op fails. The message
    /// names the first such error. Only destroying everything on the device and resetting it (the Engine's
    /// reload) brings it back. An ordinary error (out of memory, a bad argument) does not set it. Thread-safe.
    virtual std::string fault() const { return {}; }

    // ---- workspace: scratch that some ops need beyond their inputs and outputs (CUDA: a converted activation,
    // an INT8 weight expanded for cuBLAS, split-K attention partials; the CPU needs none) ----

    /// Workspace bytes matmul(w, x, m, y) needs.
    virtual int64_t matmulWorkspaceBytes(const DeviceWeight& /*w*/, int64_t /*m*/) const { return 0; }
    /// The most workspace pagedAttention needs for any step of up to numTokens tokens with contexts up to
    /// maxContext positions (CUDA: backend/attention_split.h).
    virtual int64_t attentionWorkspaceBytes(int64_t /*numTokens*/, int /*numHeads*/, int64_t /*headDim*/,
                                            int64_t /*maxContext*/) const {
        return 0;
    }
    /// Workspace bytes sampleTopK needs for m rows.
    virtual int64_t sampleWorkspaceBytes(int64_t /*m*/) const { return 0; }
    /// Allocates the workspace once, for the largest step the caller plans (a model does it at load, before the
    /// KV cache takes what is left). From then on an op that would need more fails with an error rather than
    /// allocating in the middle of a step. Without a reservation the workspace grows on demand (ops called one
    /// by one, as wb-gpu-check does). An allocation failure is an out-of-memory error, never a fault.
    virtual Result<void> reserveWorkspace(int64_t /*numBytes*/) { return {}; }

    // ---- ops (f32 activations; weights in their own dtype) ----

    /// y[m, w.rows] = x[m, w.cols] · Wᵀ.
    virtual Result<void> matmul(const DeviceWeight& w, const float* x, int64_t m, float* y) = 0;
    /// out[m, n] = x / rms(x) * weight; out may alias x.
    virtual Result<void> rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out) = 0;
    /// x += delta (the residual add), then out = rmsNorm(x); out may alias delta.
    virtual Result<void> addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m, int64_t n,
                                    float* out) = 0;
    /// y[n] += x[n].
    virtual Result<void> add(float* y, const float* x, int64_t n) = 0;
    /// y[m, n] += bias[n].
    virtual Result<void> addBias(float* y, const float* bias, int64_t m, int64_t n) = 0;
    /// Rotary embedding of x[m, numHeads * headDim] at positions[m]; the first rotaryDim dims of each head rotate
    /// (partial rotary), invFreq has rotaryDim / 2 entries.
    virtual Result<void> rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                              const float* invFreq, RopeStyle style) = 0;
    /// out[n] = silu(gate) * up; out may alias gate.
    virtual Result<void> siluMul(const float* gate, const float* up, int64_t n, float* out) = 0;
    /// out[m, table.cols] = rows ids[m] of the table, dequantized.
    virtual Result<void> embed(const DeviceWeight& table, const int32_t* ids, int64_t m, float* out) = 0;
    /// dst[m, n] = src[rows[m], n].
    virtual Result<void> gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst) = 0;
    /// Stores k, v [numTokens, numKvHeads * headDim] at each token's slot of the paged cache.
    virtual Result<void> writeKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayer& cache) = 0;
    /// Causal attention of q [numTokens, numHeads * headDim] over each token's own sequence in the cache (positions
    /// 0..tokenPos): query head h reads KV head h / (numHeads / cache.numKvHeads). Decode and prefill tokens mix
    /// freely. out has q's shape.
    virtual Result<void> pagedAttention(const float* q, int numHeads, float scale, const AttentionBatch& batch,
                                        const KvLayer& cache, float* out) = 0;
    /// One token per row of logits [m, vocab] into tokens [m] (host memory): the argmax (lowest id on ties) when
    /// topK <= 1 or temperature <= 0, else a draw among the topK largest, softmax(logit / temperature), using
    /// uniforms[m] (host, in [0, 1)) so that both devices draw the same token from the same numbers.
    virtual Result<void> sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK, float temperature,
                                    const float* uniforms, int32_t* tokens) = 0;
};

}  // namespace wb
