// What this machine offers a model: the devices the engine can run on (CPU, and GPUs when the CUDA module and a
// driver load), and the memory figures that model cards and memory plans are made against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/model_types.h"

namespace wb {

struct DeviceInfo {
    DeviceKind kind = DeviceKind::Cpu;
    int index = 0;
    std::string name;
    int64_t totalBytes = 0;
    /// -1 when not measured: probing makes no context on a GPU, and free memory needs one.
    int64_t freeBytes = 0;
};

struct DeviceReport {
    std::vector<DeviceInfo> devices;
    /// Why a backend is absent or where it came from ("cuda: loaded /usr/lib/wb/libwb_cuda.so",
    /// "cuda: libwb_cuda.so not found (searched ...)", "cuda: no device (CUDA driver version is insufficient)").
    std::vector<std::string> notes;
};

/// Loads backend modules once (thread-safe) and lists their devices.
DeviceReport probeDevices();

/// The SIMD kernels the CPU backend picked on this machine ("avx512", "avx2", "scalar").
const char* cpuIsaName();
/// The host's available memory (MemAvailable), 0 when it cannot be read.
int64_t hostAvailableMemoryBytes();
/// This process's peak and current resident set (VmHWM, VmRSS), -1 when they cannot be read.
int64_t processPeakRssBytes();
int64_t processRssBytes();

}  // namespace wb
