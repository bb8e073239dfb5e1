#include "backend/cuda/cuda_device.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "backend/attention_split.h"
#include "backend/int8_act_quant.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/embedding.cuh"
#include "backend/cuda/int8_matmul.cuh"
#include "backend/cuda/paged_attention.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/sampling.cuh"
#include "backend/cuda/silu_mul.cuh"
#include "core/dtype.h"

#ifndef WB_CUDA_MIN_ARCH
#define WB_CUDA_MIN_ARCH 0  // the oldest architecture in CMAKE_CUDA_ARCHITECTURES (cuda.cmake); 0: not checked
#endif

namespace wb::cuda {

namespace {

// Device and buffer objects alive per ordinal: a reset (cudaDeviceReset) with any still alive would pull the
// context from under them (another model of this process on the same GPU, say), so resetDevice refuses.
constexpr int kMaxOrdinals = 64;
std::atomic<int> g_liveObjects[kMaxOrdinals];

void countObject(int ordinal, int delta) {
    if (ordinal >= 0 && ordinal < kMaxOrdinals) g_liveObjects[ordinal] += delta;
}

class CudaBuffer final : public DeviceBuffer {
public:
    CudaBuffer(int device, void* p, int64_t n) : m_device(device), m_p(p), m_n(n) { countObject(device, 1); }
    ~CudaBuffer() override {
        countObject(m_device, -1);
        // A free after a fault can fail; there is nobody to tell from a destructor, and it must not abort.
        int prev = 0;
        cudaGetDevice(&prev);
        cudaSetDevice(m_device);
        cudaFree(m_p);
        cudaSetDevice(prev);
    }
    void* data() override { return m_p; }
    int64_t numBytes() const override { return m_n; }

private:
    int m_device;
    void* m_p;
    int64_t m_n;
};

class CudaWeight final : public DeviceWeight {
public:
    std::unique_ptr<DeviceBuffer> data, scales;  // scales: I8 only
};

const CudaWeight& cw(const DeviceWeight& w) { return static_cast<const CudaWeight&>(w); }

ElemType elemType(DType t) {
    switch (t) {
        case DType::F16: return ElemType::F16;
        case DType::BF16: return ElemType::BF16;
        case DType::I8: return ElemType::I8;
        default: return ElemType::F32;
    }
}

AttnBatch attnBatch(const AttentionBatch& b) {
    return {b.numTokens, b.tokenSeq, b.tokenPos, b.blockTables, b.maxBlocksPerSeq, b.maxContext};
}

AttnCache attnCache(const KvLayer& c) {
    return {static_cast<float*>(c.keys), static_cast<float*>(c.values), c.blockSize, c.numKvHeads, c.headDim};
}

// The CUDA kernels keep keys and values in f32 (the FP16 KV cache is the CPU backend's for now).
Result<void> kvF32Only(const KvLayer& c) {
    if (c.dtype != DType::F32)
        return makeError("the CUDA backend keeps its KV cache in f32; a " + std::string(dtypeName(c.dtype)) +
                         " cache is CPU-only (--kv-cache-dtype f32)");
    return {};
}

}  // namespace

std::string unsupportedDeviceReason(int index, const cudaDeviceProp& prop) {
    const int arch = prop.major * 10 + prop.minor;
    if (WB_CUDA_MIN_ARCH > 0 && arch < WB_CUDA_MIN_ARCH)
        return "cuda:" + std::to_string(index) + " " + prop.name + " is sm_" + std::to_string(arch) +
               "; this module was built for sm_" + std::to_string(WB_CUDA_MIN_ARCH) +
               " and newer (rebuild with CMAKE_CUDA_ARCHITECTURES including " + std::to_string(arch) + ")";
    return {};
}

Result<std::unique_ptr<CudaDevice>> CudaDevice::create(int index) {
    // The properties need no context: an unsupported GPU is refused before one is made on it.
    cudaDeviceProp prop{};
    WB_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    if (const std::string why = unsupportedDeviceReason(index, prop); !why.empty()) return makeError(why);
    std::unique_ptr<CudaDevice> d(new CudaDevice());
    d->m_index = index;
    countObject(index, 1);
    WB_CUDA_CHECK(cudaSetDevice(index));
    d->m_name = "cuda:" + std::to_string(index) + " " + prop.name + " (sm_" + std::to_string(prop.major) +
                std::to_string(prop.minor) + ")";
    WB_CUDA_CHECK(cudaStreamCreateWithFlags(&d->m_stream, cudaStreamNonBlocking));
    WB_CUBLAS_CHECK(cublasCreate(&d->m_cublas));
    WB_CUBLAS_CHECK(cublasSetStream(d->m_cublas, d->m_stream));
    // Pinned memory is a host resource the system may limit (a container's locked-memory limit): without it the
    // device still works, its copies going from pageable memory.
    if (cudaHostAlloc(&d->m_staging, size_t(kHostStagingBytes), cudaHostAllocDefault) == cudaSuccess) {
        d->m_stagingPlan = HostStagingPlan(kHostStagingBytes);
    } else {
        cudaGetLastError();
        d->m_staging = nullptr;
    }
    return d;
}

int liveObjectsOn(int ordinal) { return ordinal >= 0 && ordinal < kMaxOrdinals ? g_liveObjects[ordinal].load() : 0; }

CudaDevice::~CudaDevice() {
    countObject(m_index, -1);
    cudaSetDevice(m_index);
    if (m_stream) cudaStreamSynchronize(m_stream);
    if (m_workspace) cudaFree(m_workspace);
    if (m_staging) cudaFreeHost(m_staging);
    if (m_cublas) cublasDestroy(m_cublas);
    if (m_stream) cudaStreamDestroy(m_stream);
}

DeviceMemory CudaDevice::memory() const {
    size_t freeB = 0, totalB = 0;
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(m_index);
    cudaMemGetInfo(&freeB, &totalB);
    cudaSetDevice(prev);
    return {int64_t(totalB), int64_t(freeB)};
}

Result<void> CudaDevice::bindCurrentThread() {
    WB_CUDA_CHECK(cudaSetDevice(m_index));
    return {};
}

Result<std::unique_ptr<DeviceBuffer>> CudaDevice::allocate(int64_t numBytes) {
    WB_TRY(faultError());
    WB_CUDA_CHECK(cudaSetDevice(m_index));
    void* p = nullptr;
    const size_t n = size_t(std::max<int64_t>(numBytes, 1));
    const cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        cudaGetLastError();  // an allocation failure is not sticky: clear it, or the next launch would report it
        if (e == cudaErrorMemoryAllocation)
            return makeError(m_name + ": out of memory: cannot allocate " + std::to_string(numBytes) + " bytes");
        return tracked<std::unique_ptr<DeviceBuffer>>(cudaStatusError(e, "cudaMalloc", __FILE__, __LINE__));
    }
    // Owned from here on, so that a failure below frees it.
    std::unique_ptr<DeviceBuffer> buffer(new CudaBuffer(m_index, p, numBytes));
    if (const cudaError_t m = cudaMemsetAsync(p, 0, n, m_stream); m != cudaSuccess)
        return tracked<std::unique_ptr<DeviceBuffer>>(cudaStatusError(m, "cudaMemsetAsync", __FILE__, __LINE__));
    return buffer;
}

Result<std::unique_ptr<DeviceWeight>> CudaDevice::uploadWeight(std::shared_ptr<const WeightMatrix> w) {
    WB_TRY(faultError());
    auto r = uploadWeightImpl(std::move(w));
    if (!r) noteError();
    return r;
}

Result<std::unique_ptr<DeviceWeight>> CudaDevice::uploadWeightImpl(std::shared_ptr<const WeightMatrix> w) {
    if (!w) return makeError("cuda: no weight to upload");
    auto out = std::make_unique<CudaWeight>();
    out->rows = w->rows;
    out->cols = w->cols;
    std::vector<uint16_t> expanded;
    const void* src = w->data;
    int64_t bytes = w->rows * w->rowBytes();
    switch (w->dtype) {
        case DType::F32:
        case DType::F16:
        case DType::BF16:
        case DType::I8: out->dtype = w->dtype; break;
        default: {
            // Block formats have no kernel here: expand to FP16 once, at load.
            out->dtype = DType::F16;
            expanded.resize(size_t(w->rows * w->cols));
            std::vector<float> row(size_t(w->cols));
            for (int64_t r = 0; r < w->rows; ++r) {
                dequantizeRow(w->dtype, w->data + r * w->rowBytes(), row.data(), w->cols);
                quantizeRow(DType::F16, row.data(), reinterpret_cast<uint8_t*>(expanded.data() + r * w->cols),
                            w->cols);
            }
            src = expanded.data();
            bytes = int64_t(expanded.size()) * 2;
        }
    }
    auto data = allocate(bytes);
    if (!data) return data.error();
    WB_CUDA_CHECK(cudaMemcpyAsync((*data)->data(), src, size_t(bytes), cudaMemcpyHostToDevice, m_stream));
    out->data = std::move(*data);
    out->numBytes = bytes;
    if (w->dtype == DType::I8) {
        auto sc = allocate(w->rows * 4);
        if (!sc) return sc.error();
        WB_CUDA_CHECK(cudaMemcpyAsync((*sc)->data(), w->rowScales, size_t(w->rows) * 4, cudaMemcpyHostToDevice, m_stream));
        out->scales = std::move(*sc);
        out->numBytes += w->rows * 4;
    }
    // The host copy (expanded) dies at return: wait for the transfer.
    WB_TRY(drainStream("cudaStreamSynchronize"));
    return std::unique_ptr<DeviceWeight>(std::move(out));
}

Result<void> CudaDevice::copyToDevice(void* dst, const void* src, int64_t numBytes) {
    if (numBytes <= 0) return {};
    WB_TRY(faultError());
    // Either way the caller may reuse `src` at once: the pinned path copies it before enqueuing the DMA, and the
    // runtime stages pageable memory before the call returns.
    std::lock_guard lock(m_stagingMutex);
    HostStagingPlan::Slot slot = m_stagingPlan.take(numBytes);  // Direct when there is no buffer (capacity 0)
    if (slot.route == HostStagingPlan::Route::DrainFirst) {
        // Earlier DMAs may still read the buffer: wait for them (the pageable path's wait, taken once per wrap).
        if (const cudaError_t e = cudaStreamSynchronize(m_stream); e != cudaSuccess)
            return tracked<void>(cudaStatusError(e, "copyToDevice: cudaStreamSynchronize", __FILE__, __LINE__));
        m_stagingPlan.drained();
        slot = m_stagingPlan.take(numBytes);
    }
    const void* from = src;
    if (slot.route != HostStagingPlan::Route::Direct) {
        char* staged = static_cast<char*>(m_staging) + slot.offset;
        std::memcpy(staged, src, size_t(numBytes));
        from = staged;
    }
    const cudaError_t e = cudaMemcpyAsync(dst, from, size_t(numBytes), cudaMemcpyHostToDevice, m_stream);
    if (e != cudaSuccess) return tracked<void>(cudaStatusError(e, "cudaMemcpyAsync", __FILE__, __LINE__));
    return {};
}

Result<void> CudaDevice::drainStream(const char* what) {
    std::lock_guard lock(m_stagingMutex);
    cudaError_t e = cudaStreamSynchronize(m_stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return tracked<void>(cudaStatusError(e, what, __FILE__, __LINE__));
    m_stagingPlan.drained();
    return {};
}

Result<void> CudaDevice::copyToHost(void* dst, const void* src, int64_t numBytes) {
    if (numBytes <= 0) return {};
    WB_TRY(faultError());
    // Into pageable memory (the caller's logits): the runtime bounces it through its own pinned buffers, which a
    // staging copy here would only repeat.
    const cudaError_t e = cudaMemcpyAsync(dst, src, size_t(numBytes), cudaMemcpyDeviceToHost, m_stream);
    if (e != cudaSuccess) return tracked<void>(cudaStatusError(e, "copyToHost", __FILE__, __LINE__));
    return drainStream("copyToHost");
}

Result<void> CudaDevice::synchronize() {
    WB_TRY(faultError());
    return drainStream("synchronize");
}

std::string CudaDevice::fault() const {
    std::lock_guard lock(m_faultMutex);
    return m_fault;
}

Result<void> CudaDevice::faultError() const {
    std::lock_guard lock(m_faultMutex);
    if (m_fault.empty()) return {};
    return makeError(m_fault);
}

void CudaDevice::noteError() {
    cudaError_t e = takeLastCudaError();
    if (!isStickyCudaError(e)) {
        // A cuBLAS or NCCL failure, or an error of an earlier launch that surfaced here: ask the stream, which
        // reports a sticky error once the context has one (and never blocks).
        const cudaError_t q = cudaStreamQuery(m_stream);
        if (!isStickyCudaError(q)) return;
        e = q;
    }
    std::lock_guard lock(m_faultMutex);
    if (m_fault.empty())
        m_fault = m_name + " faulted: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                  "); the device must be reset: reload the model";
}

int64_t CudaDevice::matmulWorkspaceBytes(const DeviceWeight& w, int64_t m) const {
    switch (w.dtype) {
        case DType::F16:
        case DType::BF16: return m * w.cols * 2;
        // W8A8 at every m: the int8 activations and their block scales, never the weight (int8_matmul.cu).
        case DType::I8: return w8a8WorkspaceBytes(m, w.cols);
        default: return 0;
    }
}

int64_t CudaDevice::attentionWorkspaceBytes(int64_t numTokens, int numHeads, int64_t headDim,
                                            int64_t maxContext) const {
    return attentionWorkspaceBound(numTokens, numHeads, headDim, maxContext);
}

Result<void> CudaDevice::allocateWorkspace(int64_t numBytes) {
    WB_TRY(faultError());
    WB_CUDA_CHECK(cudaStreamSynchronize(m_stream));  // the old workspace may still be in use
    if (m_workspace) WB_CUDA_CHECK(cudaFree(m_workspace));
    m_workspace = nullptr;
    m_workspaceBytes = 0;
    const cudaError_t e = cudaMalloc(&m_workspace, size_t(numBytes));
    if (e != cudaSuccess) {
        m_workspace = nullptr;
        cudaGetLastError();  // not sticky: clear it, or the next, unrelated launch would report it
        return makeError(m_name + ": out of memory: cannot allocate a workspace of " + std::to_string(numBytes) +
                         " bytes (" + cudaGetErrorName(e) + ")");
    }
    m_workspaceBytes = numBytes;
    return {};
}

Result<void> CudaDevice::reserveWorkspace(int64_t numBytes) {
    if (numBytes > m_workspaceBytes) WB_TRY(tracked(allocateWorkspace(numBytes)));
    m_workspaceReserved = true;
    return {};
}

Result<void*> CudaDevice::workspace(int64_t numBytes) {
    if (numBytes <= m_workspaceBytes) return m_workspace;
    if (m_workspaceReserved)
        return makeError(m_name + ": an op needs " + std::to_string(numBytes) + " bytes of workspace, " +
                         std::to_string(m_workspaceBytes) +
                         " were reserved for the largest planned step (the step is larger than planned)");
    // No plan (ops called one by one): grow to what is asked.
    WB_TRY(tracked(allocateWorkspace(numBytes)));
    return m_workspace;
}

Result<void> CudaDevice::matmul(const DeviceWeight& dw, const float* x, int64_t m, float* y) {
    if (m == 0) return {};
    return tracked(matmulImpl(dw, x, m, y));
}

Result<void> CudaDevice::matmulImpl(const DeviceWeight& dw, const float* x, int64_t m, float* y) {
    const CudaWeight& w = cw(dw);
    NvtxRange r("matmul");
    const int N = int(w.rows), K = int(w.cols), M = int(m);
    const float one = 1.0f, zero = 0.0f;
    // Row-major y[m, N] = x[m, K] · Wᵀ is column-major yᵀ[N, m] = W[K, N]ᵀ · xᵀ[K, m].
    switch (w.dtype) {
        case DType::F32:
            WB_CUBLAS_CHECK(cublasSgemm(m_cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one,
                                        static_cast<const float*>(w.data->data()), K, x, K, &zero, y, N));
            return {};
        case DType::I8: {
            // W8A8 at every token count, the CPU backend's int8 activations bit for bit (backend/int8_act_quant.h).
            const int64_t need = w8a8WorkspaceBytes(m, w.cols);
            auto ws = workspace(need);
            if (!ws) return ws.error();
            return w8a8Matmul(static_cast<const int8_t*>(w.data->data()), w.scales->f32(), w.rows, w.cols, x, m, y,
                              *ws, need, m_stream);
        }
        case DType::F16:
        case DType::BF16: {
            const bool bf16 = w.dtype == DType::BF16;
            auto ws = workspace(m * w.cols * 2);
            if (!ws) return ws.error();
            void* xh = *ws;
            WB_TRY(convertF32(x, xh, m * w.cols, bf16, m_stream));
            const void* wp = w.data->data();
            const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
            WB_CUBLAS_CHECK(cublasGemmEx(m_cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, wp, t, K, xh, t, K, &zero,
                                         y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            return {};
        }
        default: return makeError("cuda matmul: unsupported weight dtype " + std::string(dtypeName(w.dtype)));
    }
}

Result<void> CudaDevice::rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out) {
    return tracked(cuda::rmsNorm(x, weight, eps, m, n, out, m_stream));
}

Result<void> CudaDevice::addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m, int64_t n,
                                    float* out) {
    return tracked(cuda::addRmsNorm(x, delta, weight, eps, m, n, out, m_stream));
}

Result<void> CudaDevice::add(float* y, const float* x, int64_t n) { return tracked(cuda::add(y, x, n, m_stream)); }

Result<void> CudaDevice::addBias(float* y, const float* bias, int64_t m, int64_t n) {
    return tracked(cuda::addBias(y, bias, m, n, m_stream));
}

Result<void> CudaDevice::rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                              const float* invFreq, RopeStyle style) {
    if (rotaryDim > headDim || rotaryDim % 2 != 0) return makeError("rope: rotary dims must be even and <= headDim");
    return tracked(cuda::rope(x, m, numHeads, headDim, rotaryDim, positions, invFreq,
                              style == RopeStyle::RotateHalf ? 0 : 1, m_stream));
}

Result<void> CudaDevice::siluMul(const float* gate, const float* up, int64_t n, float* out) {
    return tracked(cuda::siluMul(gate, up, n, out, m_stream));
}

Result<void> CudaDevice::embed(const DeviceWeight& table, const int32_t* ids, int64_t m, float* out) {
    const CudaWeight& w = cw(table);
    return tracked(cuda::embed(w.data->data(), w.scales ? w.scales->f32() : nullptr, elemType(w.dtype), w.rows,
                               w.cols, ids, m, out, m_stream));
}

Result<void> CudaDevice::gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst) {
    return tracked(cuda::gatherRows(src, rows, m, n, dst, m_stream));
}

Result<void> CudaDevice::writeKv(const float* k, const float* v, const AttentionBatch& b, const KvLayer& c) {
    WB_TRY(kvF32Only(c));
    return tracked(cuda::writeKv(k, v, attnBatch(b), attnCache(c), m_stream));
}

Result<void> CudaDevice::pagedAttention(const float* q, int numHeads, float scale, const AttentionBatch& b,
                                        const KvLayer& c, float* out) {
    WB_TRY(kvF32Only(c));
    const AttnBatch ab = attnBatch(b);
    const int64_t need = pagedAttentionWorkspaceBytes(ab, numHeads, c.headDim);
    void* ws = nullptr;
    if (need > 0) {
        auto w = workspace(need);
        if (!w) return w.error();
        ws = *w;
    }
    return tracked(cuda::pagedAttention(q, numHeads, scale, ab, attnCache(c), out, ws, need, m_stream));
}

Result<void> CudaDevice::sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK, float temperature,
                                    const float* uniforms, int32_t* tokens) {
    if (m == 0) return {};
    // Tiny staging: m uniforms in, m ids out.
    auto ws = workspace(m * 8);
    if (!ws) return ws.error();
    float* du = static_cast<float*>(*ws);
    int32_t* dt = reinterpret_cast<int32_t*>(du + m);
    std::vector<float> zeros;
    if (!uniforms) {
        zeros.assign(size_t(m), 0.0f);
        uniforms = zeros.data();
    }
    WB_TRY(copyToDevice(du, uniforms, m * 4));
    WB_TRY(tracked(cuda::sampleTopK(logits, m, vocab, topK, temperature, du, dt, m_stream)));
    return copyToHost(tokens, dt, m * 4);
}

}  // namespace wb::cuda
