// The callback through which checkpoint writers pull one tensor's bytes at a time, so that a multi-gigabyte
// checkpoint never has to sit in memory whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/result.h"

namespace wb {

/// Fills `dst` (exactly `numBytes`, the tensor's encoded size) with one tensor's data.
using TensorProducer = std::function<Result<void>(uint8_t* dst, size_t numBytes)>;

}  // namespace wb
