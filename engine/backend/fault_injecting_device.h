// A Device in front of another that fails on demand, so that what the engine does when a device fails is tested
// without a GPU: an ordinary error (the op fails, the device stays usable, as after an out-of-memory) or a fault
// (the op fails, so does every later one, and fault() names it, as a CUDA device does after an illegal address).
// Tests put it in front of the devices a model makes through setDeviceWrapperForTesting (backend_registry.h).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "backend/device.h"

namespace wb {

class FaultInjectingDevice final : public Device {
public:
    enum class Failure { Error, Fault };
    explicit FaultInjectingDevice(std::unique_ptr<Device> inner);

    /// Arms one failure: the op `afterOps` ops from now (0: the next) fails with `why`. Thread-safe.
    void failAfter(int64_t afterOps, Failure kind, std::string why);
    /// Ops run (or failed) so far: allocations, copies, synchronizations and compute ops. Thread-safe.
    int64_t opsRun() const { return m_ops.load(); }
    Device& inner() { return *m_inner; }

    DeviceKind kind() const override { return m_inner->kind(); }
    std::string name() const override { return m_inner->name(); }
    DeviceMemory memory() const override { return m_inner->memory(); }
    int ordinal() const override { return m_inner->ordinal(); }
    Result<void> bindCurrentThread() override { return m_inner->bindCurrentThread(); }
    std::string fault() const override;
    int64_t matmulWorkspaceBytes(const DeviceWeight& w, int64_t m) const override;
    int64_t attentionWorkspaceBytes(int64_t numTokens, int numHeads, int64_t headDim,
                                    int64_t maxContext) const override;
    int64_t sampleWorkspaceBytes(int64_t m) const override { return m_inner->sampleWorkspaceBytes(m); }
    Result<void> reserveWorkspace(int64_t numBytes) override { return m_inner->reserveWorkspace(numBytes); }

    Result<std::unique_ptr<DeviceBuffer>> allocate(int64_t numBytes) override;
    Result<std::unique_ptr<DeviceWeight>> uploadWeight(std::shared_ptr<const WeightMatrix> w) override;
    Result<void> copyToDevice(void* dst, const void* src, int64_t numBytes) override;
    Result<void> copyToHost(void* dst, const void* src, int64_t numBytes) override;
    Result<void> synchronize() override;

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
    /// Counts the op; an error when it is the armed one or the device has faulted.
    Result<void> check();

    std::unique_ptr<Device> m_inner;
    std::atomic<int64_t> m_ops{0};
    mutable std::mutex m_mutex;
    int64_t m_failAt = -1;  // under m_mutex: the op number that fails, -1 none
    Failure m_failKind = Failure::Error;
    std::string m_why;
    std::string m_fault;  // under m_mutex: set by a Fault, for good
};

}  // namespace wb
