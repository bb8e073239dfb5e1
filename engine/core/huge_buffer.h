// Anonymous memory in 2 MiB-aligned regions with transparent huge pages requested. Decoding streams every weight
// once per token; with 4 KiB pages that is one TLB miss per 4 KiB, with 2 MiB pages almost none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace wb {

class HugeBuffer {
public:
    /// Zero-filled; nullptr if the memory cannot be had.
    static std::shared_ptr<HugeBuffer> allocate(size_t numBytes);
    ~HugeBuffer();
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;

    uint8_t* data() const { return m_data; }
    size_t size() const { return m_size; }

private:
    HugeBuffer() = default;
    uint8_t* m_base = nullptr;
    size_t m_mapped = 0;
    uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

}  // namespace wb
