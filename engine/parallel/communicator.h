// Collectives between the ranks of a tensor-parallel group, one Communicator per rank, each used only by the worker
// thread that drives that rank's device. NCCL implements it on GPUs (backend/cuda); InProcessCommunicator lets CPU
// "devices" in one process stand in for GPUs, so tensor parallelism is tested without any.
//
// Recovery contract, when a rank's step fails (its own op, or a collective):
//  1. Abort: the failing rank calls abort(why) on every rank's communicator (WorkerGroup::run's onError). abort is
//     idempotent, thread-safe, and never overlaps a collective being issued on the same communicator (NCCL forbids
//     concurrent use of a communicator): it waits for one in progress to be issued, then marks the communicator
//     aborted and releases every rank blocked in a collective (in-process: the barrier; NCCL: ncclCommAbort,
//     which also ends kernels that wait on the GPU for a peer that will never arrive).
//  2. Stop: from then on every collective on it fails at once, so each rank's step ends with an error and no rank
//     waits for ever. An aborted communicator is never used again, nor reset in place.
//  3. Re-create: once every rank has left its step (WorkerGroup::run has returned), the owner destroys the group
//     and makes a new one with the same factory (createCommunicators: a new in-process group; NCCL:
//     ncclCommInitAll again) before the next step. If that fails, or a device has faulted (Device::fault), the
//     model cannot run another step and reports that it needs a reload (LlamaModel::needsReload).
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
    /// the same count, in the same order. The sum is the same on every rank (bitwise). Fails at once once aborted.
    virtual Result<void> allReduceSum(float* data, int64_t count) = 0;
    /// Step 1 of the recovery contract above: wakes ranks blocked in a collective with an error (a peer failed and
    /// will never arrive) and makes every later collective fail. Thread-safe, idempotent.
    virtual void abort(const std::string& why) = 0;
    /// Whether abort() was called: the group must be re-created before the next step. Thread-safe.
    virtual bool aborted() const = 0;
};

}  // namespace wb
