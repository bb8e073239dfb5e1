// Finds the devices this process can use: the CPU always, CUDA GPUs when the CUDA module (libwb_cuda.so) loads and
// its driver answers. Everything missing is a note, never an error: a machine without NVIDIA runs on the CPU.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/devices.h"
#include "backend/device.h"
#include "core/result.h"
#include "parallel/communicator.h"

namespace wb {


/// `count` devices of `kind` (CPU: `cpuThreadsEach` threads each; <= 0 splits the cores evenly).
Result<std::vector<std::unique_ptr<Device>>> createDevices(DeviceKind kind, int count, int cpuThreadsEach = 0);

/// One communicator per device, rank i driving devices[i]: in-process for CPU devices, NCCL for CUDA ones.
Result<std::vector<std::unique_ptr<Communicator>>> createCommunicators(DeviceKind kind,
                                                                        const std::vector<Device*>& devices);

}  // namespace wb
