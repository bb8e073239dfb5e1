// The CPU implementation of Device: host memory, the cpu:: kernels on the device's own thread pool. The hot ops
// (matmul, attention) are the same calls the model made before the Device interface existed, so a single CPU device
// costs nothing over calling the kernels directly.
#pragma once

#include <memory>
#include <vector>

#include "backend/device.h"
#include "core/thread_pool.h"

namespace wb {

class CpuDevice final : public Device {
public:
    /// numThreads <= 0: one per core. `index` only names the device ("cpu:1") when several share the host.
    explicit CpuDevice(int numThreads = 0, int index = -1);

    ThreadPool& threadPool() { return m_pool; }

    DeviceKind kind() const override { return DeviceKind::Cpu; }
    std::string name() const override;
    DeviceMemory memory() const override;

    Result<std::unique_ptr<DeviceBuffer>> allocate(int64_t numBytes) override;
    Result<std::unique_ptr<DeviceWeight>> uploadWeight(std::shared_ptr<const WeightMatrix> w) override;
    Result<void> copyToDevice(void* dst, const void* src, int64_t numBytes) override;
    Result<void> copyToHost(void* dst, const void* src, int64_t numBytes) override;
    Result<void> synchronize() override { return {}; }

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

    /// The host weight behind a DeviceWeight made by a CpuDevice.
    static const WeightMatrix& hostWeight(const DeviceWeight& w);

private:
    int m_index;
    ThreadPool m_pool;
};

}  // namespace wb
