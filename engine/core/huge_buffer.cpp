#include "core/huge_buffer.h"

#include <sys/mman.h>

namespace wb {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

std::shared_ptr<HugeBuffer> HugeBuffer::allocate(size_t numBytes) {
    const size_t size = (numBytes + kHugePage - 1) / kHugePage * kHugePage;
    // Over-allocate by one huge page so the usable part can start on a 2 MiB boundary.
    const size_t mapped = size + kHugePage;
    void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    std::shared_ptr<HugeBuffer> b(new HugeBuffer());
    b->m_base = static_cast<uint8_t*>(p);
    b->m_mapped = mapped;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
    b->m_data = reinterpret_cast<uint8_t*>(aligned);
    b->m_size = numBytes;
    // Huge pages for the whole 2 MiB pages of the data only: a huge page for the tail would hold up to 2 MiB of
    // nothing in the process's memory (a hundred such matrices made a 9B model's RSS 0.2 GiB over its weights).
    const size_t hugePart = numBytes / kHugePage * kHugePage;
#ifdef MADV_HUGEPAGE
    if (hugePart) ::madvise(b->m_data, hugePart, MADV_HUGEPAGE);  // advice only: without THP the buffer still works
#endif
#ifdef MADV_NOHUGEPAGE
    if (size > hugePart) ::madvise(b->m_data + hugePart, size - hugePart, MADV_NOHUGEPAGE);
#endif
    return b;
}

HugeBuffer::~HugeBuffer() {
    if (m_base) ::munmap(m_base, m_mapped);
}

}  // namespace wb
