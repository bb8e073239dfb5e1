#include "backend/cpu/cpu_device.h"

#include "core/host_memory.h"

#include "backend/cpu/dense_attention.h"

#include "core/huge_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "backend/cpu/cpu_ops.h"

namespace wb {

namespace {

// Anonymous mapped memory: zero pages cost nothing until written, so a KV cache sized for the worst case only
// takes the RAM its sequences actually fill; 2 MiB pages where the kernel grants them.
class HostBuffer final : public DeviceBuffer {
public:
    HostBuffer(std::shared_ptr<HugeBuffer> b, int64_t n) : m_buf(std::move(b)), m_numBytes(n) {}
    void* data() override { return m_buf->data(); }
    int64_t numBytes() const override { return m_numBytes; }

private:
    std::shared_ptr<HugeBuffer> m_buf;
    int64_t m_numBytes = 0;
};

class HostWeight final : public DeviceWeight {
public:
    explicit HostWeight(std::shared_ptr<const WeightMatrix> w) : m_w(std::move(w)) {
        rows = m_w->rows;
        cols = m_w->cols;
        dtype = m_w->dtype;
        numBytes = m_w->numBytes();
    }
    const WeightMatrix& weight() const { return *m_w; }

private:
    std::shared_ptr<const WeightMatrix> m_w;
};

}  // namespace

CpuDevice::CpuDevice(int numThreads, int index) : m_index(index), m_pool(numThreads) {}

std::string CpuDevice::name() const {
    std::string n = m_index >= 0 ? "cpu:" + std::to_string(m_index) : "cpu";
    return n + " (" + std::to_string(m_pool.size()) + " threads, " + cpu::isaName(cpu::activeIsa()) + ")";
}

DeviceMemory CpuDevice::memory() const { return {hostMemInfoBytes("MemTotal:"), hostMemInfoBytes("MemAvailable:")}; }

const WeightMatrix& CpuDevice::hostWeight(const DeviceWeight& w) { return static_cast<const HostWeight&>(w).weight(); }

Result<std::unique_ptr<DeviceBuffer>> CpuDevice::allocate(int64_t numBytes) {
    if (numBytes < 0) return makeError("cpu: negative allocation");
    auto b = HugeBuffer::allocate(size_t(std::max<int64_t>(numBytes, 1)));
    if (!b) return makeError("cpu: cannot allocate " + std::to_string(numBytes) + " bytes");
    return std::unique_ptr<DeviceBuffer>(new HostBuffer(std::move(b), numBytes));
}

Result<std::unique_ptr<DeviceWeight>> CpuDevice::uploadWeight(std::shared_ptr<const WeightMatrix> w) {
    if (!w) return makeError("cpu: no weight to upload");
    return std::unique_ptr<DeviceWeight>(new HostWeight(std::move(w)));
}

Result<void> CpuDevice::copyToDevice(void* dst, const void* src, int64_t numBytes) {
    if (numBytes > 0) std::memcpy(dst, src, size_t(numBytes));
    return {};
}

Result<void> CpuDevice::copyToHost(void* dst, const void* src, int64_t numBytes) {
    if (numBytes > 0) std::memcpy(dst, src, size_t(numBytes));
    return {};
}

Result<void> CpuDevice::matmul(const DeviceWeight& w, const float* x, int64_t m, float* y) {
    cpu::matmul(hostWeight(w), x, m, y, m_pool);
    return {};
}

Result<void> CpuDevice::rmsNorm(const float* x, const float* weight, float eps, int64_t m, int64_t n, float* out) {
    cpu::rmsNorm(x, weight, eps, m, n, out);
    return {};
}

Result<void> CpuDevice::addRmsNorm(float* x, const float* delta, const float* weight, float eps, int64_t m, int64_t n,
                                   float* out) {
    // Two passes on the CPU: the add is memory-bound either way, and the unfused calls keep the reference simple.
    cpu::addInPlace(x, delta, m * n);
    cpu::rmsNorm(x, weight, eps, m, n, out);
    return {};
}

Result<void> CpuDevice::add(float* y, const float* x, int64_t n) {
    cpu::addInPlace(y, x, n);
    return {};
}

Result<void> CpuDevice::addBias(float* y, const float* bias, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; ++i) cpu::addInPlace(y + i * n, bias, n);
    return {};
}

Result<void> CpuDevice::rope(float* x, int64_t m, int numHeads, int headDim, int rotaryDim, const int32_t* positions,
                             const float* invFreq, RopeStyle style) {
    if (rotaryDim > headDim || rotaryDim % 2 != 0) return makeError("rope: rotary dims must be even and <= headDim");
    for (int64_t i = 0; i < m; ++i) {
        float* row = x + i * int64_t(numHeads) * headDim;
        if (style == RopeStyle::RotateHalf) {
            cpu::ropeRotateHalf(row, numHeads, headDim, rotaryDim, float(positions[i]), invFreq);
            continue;
        }
        for (int h = 0; h < numHeads; ++h) {
            float* v = row + int64_t(h) * headDim;
            for (int j = 0; j < rotaryDim / 2; ++j) {
                const float a = float(positions[i]) * invFreq[j];
                const float c = std::cos(a), s = std::sin(a);
                const float x0 = v[2 * j], x1 = v[2 * j + 1];
                v[2 * j] = x0 * c - x1 * s;
                v[2 * j + 1] = x0 * s + x1 * c;
            }
        }
    }
    return {};
}

Result<void> CpuDevice::siluMul(const float* gate, const float* up, int64_t n, float* out) {
    cpu::siluMul(gate, up, n, out);
    return {};
}

Result<void> CpuDevice::embed(const DeviceWeight& table, const int32_t* ids, int64_t m, float* out) {
    const WeightMatrix& e = hostWeight(table);
    for (int64_t i = 0; i < m; ++i) {
        const int32_t token = ids[i];
        if (token < 0 || token >= e.rows) return makeError("embed: token id " + std::to_string(token) + " out of range");
        float* o = out + i * e.cols;
        dequantizeRow(e.dtype, e.data + int64_t(token) * e.rowBytes(), o, e.cols);
        if (e.dtype == DType::I8) {
            const float s = e.rowScales[token];
            for (int64_t j = 0; j < e.cols; ++j) o[j] *= s;
        }
    }
    return {};
}

Result<void> CpuDevice::gatherRows(const float* src, const int32_t* rows, int64_t m, int64_t n, float* dst) {
    for (int64_t i = 0; i < m; ++i) std::memcpy(dst + i * n, src + int64_t(rows[i]) * n, size_t(n) * 4);
    return {};
}

Result<void> CpuDevice::writeKv(const float* k, const float* v, const AttentionBatch& b, const KvLayer& c) {
    const int64_t kvDim = c.numKvHeads * c.headDim;
    for (int64_t i = 0; i < b.numTokens; ++i) {
        const int64_t pos = b.tokenPos[i];
        const int32_t block = b.blockTables[int64_t(b.tokenSeq[i]) * b.maxBlocksPerSeq + pos / c.blockSize];
        const int64_t slot = (int64_t(block) * c.blockSize + pos % c.blockSize) * kvDim;
        cpu::storeKvRow(k + i * kvDim, const_cast<void*>(cpu::kvElement(c.keys, c.dtype, slot)), c.dtype, kvDim);
        cpu::storeKvRow(v + i * kvDim, const_cast<void*>(cpu::kvElement(c.values, c.dtype, slot)), c.dtype, kvDim);
    }
    return {};
}

namespace {
// Below this many consecutive query tokens the per-query loop is as fast as packing keys for GEMMs.
constexpr int64_t kTiledAttentionMinTokens = 32;
}  // namespace

Result<void> CpuDevice::pagedAttention(const float* qAll, int numHeads, float scale, const AttentionBatch& b,
                                       const KvLayer& c, float* outAll) {
    const int64_t hd = c.headDim, bs = c.blockSize, kvDim = c.numKvHeads * hd, qDim = int64_t(numHeads) * hd;
    // Long runs of consecutive tokens of one sequence (prefill chunks) go through query tiles and GEMMs; the rest
    // (decodes, short chunks) one token and KV head at a time.
    std::vector<int64_t> single;
    for (int64_t i = 0; i < b.numTokens;) {
        int64_t j = i + 1;
        while (j < b.numTokens && b.tokenSeq[j] == b.tokenSeq[i] && b.tokenPos[j] == b.tokenPos[j - 1] + 1) ++j;
        if (j - i >= kTiledAttentionMinTokens) {
            const int32_t* table = b.blockTables + int64_t(b.tokenSeq[i]) * b.maxBlocksPerSeq;
            cpu::CausalRunArgs r;
            r.q = qAll + i * qDim;
            r.qStride = qDim;
            r.out = outAll + i * qDim;
            r.outStride = qDim;
            r.numTokens = j - i;
            r.firstPos = b.tokenPos[i];
            r.numHeads = numHeads;
            r.numKvHeads = int(c.numKvHeads);
            r.headDim = hd;
            r.scale = scale;
            r.keyRow = [&](int64_t p) { return cpu::kvElement(c.keys, c.dtype, (int64_t(table[p / bs]) * bs + p % bs) * kvDim); };
            r.valueRow = [&](int64_t p) {
                return cpu::kvElement(c.values, c.dtype, (int64_t(table[p / bs]) * bs + p % bs) * kvDim);
            };
            r.kvType = c.dtype;
            cpu::causalAttentionTiled(r, m_pool);
        } else {
            for (int64_t k = i; k < j; ++k) single.push_back(k);
        }
        i = j;
    }
    cpu::PagedDecodeArgs d;
    d.q = qAll;
    d.qStride = qDim;
    d.out = outAll;
    d.outStride = qDim;
    d.rows = single.data();
    d.numRows = int64_t(single.size());
    d.numHeads = numHeads;
    d.numKvHeads = int(c.numKvHeads);
    d.headDim = hd;
    d.scale = scale;
    d.blockSize = bs;
    d.rowStride = kvDim;
    auto row = [&](const void* base, int64_t k, int64_t p) {
        const int32_t* table = b.blockTables + int64_t(b.tokenSeq[single[size_t(k)]]) * b.maxBlocksPerSeq;
        return cpu::kvElement(base, c.dtype, (int64_t(table[p / bs]) * bs + p % bs) * kvDim);
    };
    d.kvType = c.dtype;
    d.length = [&](int64_t k) { return int64_t(b.tokenPos[single[size_t(k)]]) + 1; };
    d.keyRow = [&](int64_t k, int64_t p) { return row(c.keys, k, p); };
    d.valueRow = [&](int64_t k, int64_t p) { return row(c.values, k, p); };
    cpu::pagedDecodeAttention(d, m_pool);
    return {};
}

Result<void> CpuDevice::sampleTopK(const float* logits, int64_t m, int64_t vocab, int topK, float temperature,
                                   const float* uniforms, int32_t* tokens) {
    if (temperature <= 0.0f) topK = 1;
    topK = int(std::min<int64_t>(std::max(topK, 1), vocab));
    std::vector<int32_t> ids(static_cast<size_t>(vocab));
    for (int64_t r = 0; r < m; ++r) {
        const float* row = logits + r * vocab;
        for (int64_t i = 0; i < vocab; ++i) ids[size_t(i)] = int32_t(i);
        std::partial_sort(ids.begin(), ids.begin() + topK, ids.end(), [row](int32_t a, int32_t b) {
            return row[a] > row[b] || (row[a] == row[b] && a < b);
        });
        if (topK == 1) {
            tokens[r] = ids[0];
            continue;
        }
        const float top = row[ids[0]];
        float sum = 0;
        for (int k = 0; k < topK; ++k) sum += std::exp((row[ids[size_t(k)]] - top) / temperature);
        const float target = uniforms[r] * sum;
        float c = 0;
        tokens[r] = ids[size_t(topK - 1)];
        for (int k = 0; k < topK; ++k) {
            c += std::exp((row[ids[size_t(k)]] - top) / temperature);
            if (target < c) {
                tokens[r] = ids[size_t(k)];
                break;
            }
        }
    }
    return {};
}

}  // namespace wb
