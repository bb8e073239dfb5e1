// Where a copy to a GPU is staged: a plain rule, used by the CUDA module and held by tests on the CPU.
//
// Every step copies its small integer arrays (token ids, each token's sequence and position, block tables, the rows
// that want logits, M-RoPE positions) and an image's feature rows to the device. From pageable memory the CUDA
// runtime may wait for the stream to drain and copy through its own bounce buffer ("might be synchronous with
// respect to host"): the host stalls behind the GPU, and the next launches wait for it. From page-locked ("pinned")
// memory the copy is a plain DMA enqueued on the stream and the call returns at once. So the CUDA device owns one
// pinned buffer and copies each source into it before enqueuing the DMA (the caller may reuse its source as soon as
// the call returns, as with pageable memory).
//
// The buffer is handed out front to back and given back whole when the stream has drained (a synchronize, a copy to
// the host: every step ends with one): a region is never written while a DMA that reads it may still be pending.
// A copy that no longer fits the rest waits for the stream (the same wait the pageable path takes) and starts again
// at the front; one larger than the whole buffer goes straight from its pageable source.
#pragma once

#include <cstdint>

namespace wb {

/// The pinned staging buffer of each CUDA device: a step of 2,048 tokens needs ~60 KB of integer arrays plus its
/// block tables (64 sequences x 8,192 blocks of a 128k context = 2 MiB); an image's feature rows take 16 KB each
/// (GLM-4's 4,096 floats), so about 370 rows fit beside them before the stream is drained once.
constexpr int64_t kHostStagingBytes = int64_t(8) << 20;
/// Each staged copy starts on this boundary (what cudaMalloc guarantees, and what DMA engines like).
constexpr int64_t kHostStagingAlign = 256;

class HostStagingPlan {
public:
    enum class Route {
        Staged,      // copy the source to `offset`, then enqueue the DMA from there
        DrainFirst,  // the rest is too small: wait for the stream, call drained(), then take() again
        Direct,      // larger than the buffer (or no buffer): copy from the pageable source
    };
    struct Slot {
        Route route = Route::Direct;
        int64_t offset = 0;
    };

    explicit HostStagingPlan(int64_t capacity = 0) : m_capacity(capacity > 0 ? capacity : 0) {}

    /// The slot of a copy of `bytes`: Staged reserves it until the next drained(); DrainFirst and Direct reserve
    /// nothing (after a drain the same take() is Staged at offset 0).
    Slot take(int64_t bytes) {
        if (bytes <= 0 || bytes > m_capacity) return {Route::Direct, 0};
        const int64_t start = (m_used + kHostStagingAlign - 1) / kHostStagingAlign * kHostStagingAlign;
        if (start > m_capacity - bytes) {
            ++m_drains;
            return {Route::DrainFirst, 0};
        }
        m_used = start + bytes;
        return {Route::Staged, start};
    }

    /// The stream has finished every copy enqueued so far: the whole buffer is free.
    void drained() { m_used = 0; }

    int64_t capacity() const { return m_capacity; }
    int64_t used() const { return m_used; }
    /// How many copies had to wait for the stream (a step that stages more than the buffer holds).
    int64_t drains() const { return m_drains; }

private:
    int64_t m_capacity = 0;
    int64_t m_used = 0;
    int64_t m_drains = 0;
};

}  // namespace wb
