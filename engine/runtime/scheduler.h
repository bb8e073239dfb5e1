// The engine's scheduler: one loop thread takes in requests and cancellations, plans each step (decodes first,
// oldest first, then prefill chunks under the per-step token budget), preempts the youngest sequence when KV blocks
// run out, reuses cached prompt prefixes (prefix_cache.h) and publishes stats snapshots; a preparation thread
// prepares requests that are slow to prepare (images through a vision tower) off the loop. engine/api/engine.cpp
// is its public face: Engine loads the model, owns it, and forwards submit, cancel, stats and the rest to here.
//
// Dependency direction: scheduling lives in runtime/ by concern but is compiled into wb_api, not wb_runtime (see
// engine/CMakeLists.txt). It drives models through EngineModel (api/engine_model.h) and speaks the public Request,
// Event and Stats types of api/engine.h, which themselves need models/; wb_runtime stays the leaf below models and
// api (sampler, KV block pool, detokenizer, reasoning splitter), and none of its files includes these headers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/engine.h"
#include "runtime/engine_model.h"
#include "core/result.h"
#include "runtime/kv_block_pool.h"
#include "runtime/sequence.h"

namespace wb {

class Scheduler {
public:
    /// Sizes the KV pool for `model` (owned by the caller, outliving the scheduler) and starts the loop and the
    /// preparation thread.
    /// Request ids start at firstId (they keep counting up across an Engine's reloads). Before sizing the KV pool it
    /// reserves the largest step's memory on the model's devices (EngineModel::reserveStepMemory).
    static Result<std::unique_ptr<Scheduler>> create(const EngineOptions& options, EngineModel* model,
                                                     RequestId firstId = 1);
    ~Scheduler();  // cancels what is live, joins the threads
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// The Engine calls of the same names (engine.h), with the same thread-safety.
    RequestId submit(Request request, EventSink sink);
    bool cancel(RequestId id);
    StatsSnapshot stats() const;
    void holdScheduling(bool hold);
    void waitIdle() const;
    /// Non-empty once the model reported that it cannot run another step (EngineModel::needsReload): every
    /// request since ends with an error naming it. Thread-safe.
    std::string faultReason() const;
    /// The id the next request would get. Thread-safe.
    RequestId nextRequestId() const;

private:
    Scheduler() = default;

    EngineOptions options;
    EngineModel* model = nullptr;  // owned by the Engine
    std::unique_ptr<KvBlockPool> pool;
    int64_t maxModelLen = 0;
    Clock::time_point startedAt = Clock::now();
    std::string deviceName;
    std::vector<DeviceStats> deviceStats;  // loop thread: the last device reading
    Clock::time_point devicesAt{};

    // Shared with other threads, under mutex.
    mutable std::mutex mutex;
    mutable std::condition_variable cv;
    mutable std::condition_variable idleCv;
    std::deque<std::unique_ptr<Sequence>> incoming;
    // Requests whose preparation is slow (images) wait here for the preparation thread, then go to incoming.
    std::deque<std::unique_ptr<Sequence>> toPrepare;
    bool prepStopping = false;
    bool held = false;     // under mutex: holdScheduling
    // Under mutex: every request routed to preparation and not yet handed to the loop (queued or being prepared).
    std::map<RequestId, Clock::time_point> inPreparation;
    std::map<RequestId, std::string> prepStage;  // under mutex: what prepare() last reported for each
    std::condition_variable prepCv;
    std::thread prepThread;
    void prepLoop();
    // Under mutex: cancelled requests not yet ended. An id leaves only when its request ends (finish), so a cancel
    // for a request still on the preparation thread waits for it however the threads interleave.
    std::set<RequestId> cancelRequests;
    bool newCancels = false;  // under mutex: a cancel arrived since the loop last looked (wakes it once, no spinning)
    std::set<RequestId> live;  // submitted and not yet finished
    StatsSnapshot snapshot;
    bool stopping = false;
    std::string faulted;  // under mutex: faultReason()
    RequestId nextId = 1;
    uint64_t totalRequests = 0;

    // Owned by the loop thread.
    std::list<std::unique_ptr<Sequence>> waiting;  // FIFO; preempted sequences go back to the front
    std::vector<std::unique_ptr<Sequence>> running;  // admission order
    uint64_t step = 0, arrivals = 0, totalFinished = 0, totalPreemptions = 0, totalGenerated = 0;
    std::deque<StepStats> recentSteps;
    std::vector<float> logits;
    std::thread loop;

    void run();
    void finish(std::unique_ptr<Sequence>& s, StopReason reason, const std::string& error = {});
    void freeBlocks(Sequence& s);
    bool ensureBlocks(Sequence& s, int64_t numTokens);
    void preempt(size_t runningIndex);
    uint64_t totalCachedTokens = 0;
    void emit(Sequence& s, Event e);
    void emitText(Sequence& s, const std::string& text);
    void publishStats();
    /// Fails every live sequence with the fault and marks the scheduler faulted (loop thread).
    void enterFaulted(const std::string& reason);
};

}  // namespace wb
