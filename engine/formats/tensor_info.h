// A tensor as stored in a checkpoint file: name, element type, shape and where its bytes lie.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace wb {

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    /// Row-major, outermost first (PyTorch order): a Linear weight is {outFeatures, inFeatures}.
    /// GGUF's ne[] is reversed into this order when it is read.
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // points into a memory-mapped file
    int64_t numBytes = 0;
    std::string file;  // the file it comes from, for error messages
    /// false: `data` is a heap copy made by a reader (reordered rows, a joined kernel), not the file's pages, so
    /// it must never be released with MappedFile::releasePages (MADV_DONTNEED zeroes anonymous memory).
    bool mapped = true;

    int64_t numElements() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    std::string shapeString() const;
};

}  // namespace wb
