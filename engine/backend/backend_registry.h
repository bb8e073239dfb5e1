// Finds the devices this process can use: the CPU always, CUDA GPUs when the CUDA module (libwb_cuda.so) loads and
// its driver answers. Everything missing is a note, never an error: a machine without NVIDIA runs on the CPU.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/device.h"
#include "core/result.h"
#include "parallel/communicator.h"

namespace wb {

struct DeviceInfo {
    DeviceKind kind = DeviceKind::Cpu;
    int index = 0;
    std::string name;
    int64_t totalBytes = 0;
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

/// `count` devices of `kind` (CPU: `cpuThreadsEach` threads each; <= 0 splits the cores evenly).
Result<std::vector<std::unique_ptr<Device>>> createDevices(DeviceKind kind, int count, int cpuThreadsEach = 0);

/// One communicator per device, rank i driving devices[i]: in-process for CPU devices, NCCL for CUDA ones.
Result<std::vector<std::unique_ptr<Communicator>>> createCommunicators(DeviceKind kind,
                                                                        const std::vector<Device*>& devices);

}  // namespace wb
