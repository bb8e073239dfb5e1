// The CUDA implementation of Device: one GPU, one stream, one cuBLAS handle, owned by the worker thread that
// binds it. Weights live on the GPU as F32, F16, BF16 or INT8 weight-only (per-row scales); GGUF block formats
// (Q8_0, Q4_0, Q4_K, Q6_K) are expanded to FP16 at upload. Activations and the KV cache are f32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>
#include <mutex>

#include "backend/device.h"
#include "backend/host_staging.h"

namespace wb::cuda {

/// Why this module cannot run on GPU `index` (an architecture older than the ones it was built for), or empty.
/// Needs no context on the GPU.
std::string unsupportedDeviceReason(int index, const cudaDeviceProp& prop);

/// CudaDevice and buffer objects of this process alive on GPU `ordinal`: a reset must wait for 0.
int liveObjectsOn(int ordinal);

class CudaDevice final : public Device {
public:
    static Result<std::unique_ptr<CudaDevice>> create(int index);
    ~CudaDevice() override;

    int index() const { return m_index; }
    int ordinal() const override { return m_index; }
    cudaStream_t stream() const { return m_stream; }

    DeviceKind kind() const override { return DeviceKind::Cuda; }
    std::string name() const override { return m_name; }
    DeviceMemory memory() const override;
    Result<void> bindCurrentThread() override;

    Result<std::unique_ptr<DeviceBuffer>> allocate(int64_t numBytes) override;
    Result<std::unique_ptr<DeviceWeight>> uploadWeight(std::shared_ptr<const WeightMatrix> w) override;
    Result<void> copyToDevice(void* dst, const void* src, int64_t numBytes) override;
    Result<void> copyToHost(void* dst, const void* src, int64_t numBytes) override;
    Result<void> synchronize() override;
    std::string fault() const override;
    int64_t matmulWorkspaceBytes(const DeviceWeight& w, int64_t m) const override;
    int64_t attentionWorkspaceBytes(int64_t numTokens, int numHeads, int64_t headDim,
                                    int64_t maxContext) const override;
    int64_t sampleWorkspaceBytes(int64_t m) const override { return m * 8; }
    Result<void> reserveWorkspace(int64_t numBytes) override;

    Result<void> matmul(const DeviceWeight& w, const float* x, int64_t m, float* y) override;
    Result<void> rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out) override;
    Result<void> addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m, int64_t n,
                            float* out) override;
    Result<void> add(float* y, const float* x, int64_t n) override;
    Result<void> addBias(float* y, const float* bias, int64_t m, int64_t n) override;
    Result<void> rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                      const float* invFreq, RopeStyle style) override;
    Result<void> siluMul(const float* gate, const float* up, int64_t n, float* out) override;
    Result<void> embed(const DeviceWeight& table, const int32_t* ids, int64_t m, float* out) override;
    Result<void> gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst) override;
    Result<void> writeKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayer& cache) override;
    Result<void> pagedAttention(const float* q, int numHeads, float scale, const AttentionBatch& batch,
                                const KvLayer& cache, float* out) override;
    Result<void> sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK, float temperature,
                            const float* uniforms, int32_t* tokens) override;

private:
    CudaDevice() = default;
    Result<void*> workspace(int64_t numBytes);
    Result<void> matmulImpl(const DeviceWeight& w, const float* x, int64_t m, float* y);
    Result<std::unique_ptr<DeviceWeight>> uploadWeightImpl(std::shared_ptr<const WeightMatrix> w);
    Result<void> allocateWorkspace(int64_t numBytes);
    /// Waits for the stream; on success every staged copy has left the pinned buffer, which is free again.
    Result<void> drainStream(const char* what);
    /// Every op's result passes through here: a failure that left the context unusable marks the device faulted.
    template <class T>
    Result<T> tracked(Result<T> r) {
        if (!r) noteError();
        return r;
    }
    void noteError();
    /// The fault as an error, for ops called after it (they would fail anyway, with a less helpful message).
    Result<void> faultError() const;

    int m_index = 0;
    std::string m_name;
    cudaStream_t m_stream = nullptr;
    cublasHandle_t m_cublas = nullptr;
    void* m_workspace = nullptr;  // activations converted for cuBLAS, INT8 expansions, attention partials
    int64_t m_workspaceBytes = 0;
    bool m_workspaceReserved = false;  // reserveWorkspace() was called: the workspace no longer grows
    // Copies to the device go through this page-locked buffer (backend/host_staging.h); null when the pinned
    // allocation failed, and then every copy goes from its pageable source as before.
    std::mutex m_stagingMutex;
    void* m_staging = nullptr;
    HostStagingPlan m_stagingPlan;  // under m_stagingMutex
    mutable std::mutex m_faultMutex;
    std::string m_fault;  // under m_faultMutex: the first sticky error
};

}  // namespace wb::cuda
