// Read-only memory-mapped file. Weights are used in place where their layout allows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"

namespace wb {

class MappedFile {
public:
    static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return m_data; }
    size_t size() const { return m_size; }
    const std::string& path() const { return m_path; }

    /// Drops this process's pages of [data, data + numBytes) (whole pages inside the range only). The bytes stay
    /// readable (they fault back in from the file); used once a tensor has been copied elsewhere so that the
    /// copy and the mapping are not both resident.
    static void releasePages(const void* data, size_t numBytes);

private:
    MappedFile() = default;
    std::string m_path;
    const uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

}  // namespace wb
