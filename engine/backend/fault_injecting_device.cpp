#include "backend/fault_injecting_device.h"

#include <algorithm>

namespace wb {

FaultInjectingDevice::FaultInjectingDevice(std::unique_ptr<Device> inner) : m_inner(std::move(inner)) {}

void FaultInjectingDevice::failAfter(int64_t afterOps, Failure kind, std::string why) {
    std::lock_guard lock(m_mutex);
    m_failAt = m_ops.load() + std::max<int64_t>(afterOps, 0);
    m_failKind = kind;
    m_why = std::move(why);
}

std::string FaultInjectingDevice::fault() const {
    std::lock_guard lock(m_mutex);
    return m_fault;
}

Result<void> FaultInjectingDevice::check() {
    const int64_t op = m_ops++;
    std::lock_guard lock(m_mutex);
    if (!m_fault.empty()) return makeError(m_fault);
    if (op != m_failAt) return {};
    m_failAt = -1;
    if (m_failKind == Failure::Fault) {
        m_fault = name() + " faulted: " + m_why + " (injected)";
        return makeError(m_fault);
    }
    return makeError(name() + ": " + m_why + " (injected)");
}

int64_t FaultInjectingDevice::matmulWorkspaceBytes(const DeviceWeight& w, int64_t m) const {
    return m_inner->matmulWorkspaceBytes(w, m);
}

int64_t FaultInjectingDevice::attentionWorkspaceBytes(int64_t numTokens, int numHeads, int64_t headDim,
                                                      int64_t maxContext) const {
    return m_inner->attentionWorkspaceBytes(numTokens, numHeads, headDim, maxContext);
}

Result<std::unique_ptr<DeviceBuffer>> FaultInjectingDevice::allocate(int64_t numBytes) {
    WB_TRY(check());
    return m_inner->allocate(numBytes);
}

Result<std::unique_ptr<DeviceWeight>> FaultInjectingDevice::uploadWeight(std::shared_ptr<const WeightMatrix> w) {
    WB_TRY(check());
    return m_inner->uploadWeight(std::move(w));
}

Result<void> FaultInjectingDevice::copyToDevice(void* dst, const void* src, int64_t numBytes) {
    WB_TRY(check());
    return m_inner->copyToDevice(dst, src, numBytes);
}

Result<void> FaultInjectingDevice::copyToHost(void* dst, const void* src, int64_t numBytes) {
    WB_TRY(check());
    return m_inner->copyToHost(dst, src, numBytes);
}

Result<void> FaultInjectingDevice::synchronize() {
    WB_TRY(check());
    return m_inner->synchronize();
}

Result<void> FaultInjectingDevice::matmul(const DeviceWeight& w, const float* x, int64_t m, float* y) {
    WB_TRY(check());
    return m_inner->matmul(w, x, m, y);
}

Result<void> FaultInjectingDevice::rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n,
                                           float* out) {
    WB_TRY(check());
    return m_inner->rmsNorm(x, weight, eps, m, n, out);
}

Result<void> FaultInjectingDevice::addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m,
                                              int64_t n, float* out) {
    WB_TRY(check());
    return m_inner->addRmsNorm(x, delta, weight, eps, m, n, out);
}

Result<void> FaultInjectingDevice::add(float* y, const float* x, int64_t n) {
    WB_TRY(check());
    return m_inner->add(y, x, n);
}

Result<void> FaultInjectingDevice::addBias(float* y, const float* bias, int64_t m, int64_t n) {
    WB_TRY(check());
    return m_inner->addBias(y, bias, m, n);
}

Result<void> FaultInjectingDevice::rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim,
                                        const int32_t* positions, const float* invFreq, RopeStyle style) {
    WB_TRY(check());
    return m_inner->rope(x, m, numHeads, headDim, rotaryDim, positions, invFreq, style);
}

Result<void> FaultInjectingDevice::siluMul(const float* gate, const float* up, int64_t n, float* out) {
    WB_TRY(check());
    return m_inner->siluMul(gate, up, n, out);
}

Result<void> FaultInjectingDevice::embed(const DeviceWeight& table, const int32_t* ids, int64_t m, float* out) {
    WB_TRY(check());
    return m_inner->embed(table, ids, m, out);
}

Result<void> FaultInjectingDevice::gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst) {
    WB_TRY(check());
    return m_inner->gatherRows(src, rows, m, n, dst);
}

Result<void> FaultInjectingDevice::writeKv(const float* k, const float* v, const AttentionBatch& batch,
                                           const KvLayer& cache) {
    WB_TRY(check());
    return m_inner->writeKv(k, v, batch, cache);
}

Result<void> FaultInjectingDevice::pagedAttention(const float* q, int numHeads, float scale,
                                                  const AttentionBatch& batch, const KvLayer& cache, float* out) {
    WB_TRY(check());
    return m_inner->pagedAttention(q, numHeads, scale, batch, cache, out);
}

Result<void> FaultInjectingDevice::sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK,
                                              float temperature, const float* uniforms, int32_t* tokens) {
    WB_TRY(check());
    return m_inner->sampleTopK(logits, m, vocab, topK, temperature, uniforms, tokens);
}

}  // namespace wb
