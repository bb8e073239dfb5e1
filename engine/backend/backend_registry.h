// Finds the devices this process can use: the CPU always, CUDA GPUs when the CUDA module (libwb_cuda.so) loads and
// its driver answers. Everything missing is a note, never an error: a machine without NVIDIA runs on the CPU.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/devices.h"
#include "backend/device.h"
#include "core/result.h"
#include "parallel/communicator.h"

namespace wb {


/// `count` devices of `kind` (CPU: `cpuThreadsEach` threads each; <= 0 splits the cores evenly). CUDA: the first
/// `count` GPUs this module supports (an older architecture than it was built for is skipped, and named in the
/// error when too few remain).
Result<std::vector<std::unique_ptr<Device>>> createDevices(DeviceKind kind, int count, int cpuThreadsEach = 0);

/// After a fault: destroys the process's context on each CUDA ordinal (cudaDeviceReset), so that the next
/// createDevices makes fresh ones. Call it only once every device object, buffer and communicator on those GPUs
/// has been deleted. Nothing to do for the CPU (ordinals < 0 are skipped).
Result<void> resetDevices(DeviceKind kind, const std::vector<int>& ordinals);

/// Tests only: every device createDevices makes afterwards passes through `wrap(rank, device)`, which returns
/// the device the model gets (a FaultInjectingDevice in front of it, backend/fault_injecting_device.h). An empty
/// function stops it. Not to be called while another thread creates devices.
using DeviceWrapper = std::function<std::unique_ptr<Device>(int rank, std::unique_ptr<Device> device)>;
void setDeviceWrapperForTesting(DeviceWrapper wrap);

/// One communicator per device, rank i driving devices[i]: in-process for CPU devices, NCCL for CUDA ones.
Result<std::vector<std::unique_ptr<Communicator>>> createCommunicators(DeviceKind kind,
                                                                        const std::vector<Device*>& devices);

}  // namespace wb
