// The host's memory as /proc/meminfo reports it: one reader for the CPU device, the engine's KV sizing and the GUI.
#pragma once

#include <cstdint>

namespace wb {

/// A /proc/meminfo field in bytes ("MemTotal:", "MemAvailable:"); 0 when it cannot be read.
int64_t hostMemInfoBytes(const char* field);

}  // namespace wb
