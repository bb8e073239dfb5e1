// Collectives between the ranks of a tensor-parallel group, one Communicator per rank, each used only by the worker
// thread that drives that rank's device. NCCL implements it on GPUs (backend/cuda); InProcessCommunicator lets CPU
// "devices" in one process stand in for GPUs, so tensor parallelism is tested without any.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace wb {

class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int worldSize() const = 0;
    /// Sums `count` floats across all ranks, in place, in this rank's device memory. Every rank must call it with
    /// the same count, in the same order. The sum is the same on every rank (bitwise).
    virtual Result<void> allReduceSum(float* data, int64_t count) = 0;
    /// Wakes ranks blocked in a collective with an error (a peer failed and will never arrive). Thread-safe.
    virtual void abort(const std::string& /*why*/) {}
    /// Makes the group usable again after an abort, once every rank has left its collective. Thread-safe.
    virtual void reset() {}
};

}  // namespace wb
