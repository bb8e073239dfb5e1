// The public face of the engine: it loads the model and owns it, and forwards requests, cancellations and stats to
// the scheduler (runtime/scheduler.h), which owns the loop, the KV pool and the preparation thread.
#include "api/engine.h"

#include <atomic>
#include <mutex>
#include <shared_mutex>

#include "backend/backend_registry.h"
#include "runtime/engine_model.h"
#include "runtime/scheduler.h"

namespace wb {

const char* stopReasonName(StopReason r) {
    switch (r) {
        case StopReason::Stop: return "stop";
        case StopReason::Length: return "length";
        case StopReason::Cancelled: return "cancelled";
        case StopReason::Error: return "error";
    }
    return "?";
}

const char* kvCacheTypeName(KvCacheType t) {
    switch (t) {
        case KvCacheType::Auto: return "auto";
        case KvCacheType::F32: return "f32";
        case KvCacheType::F16: return "f16";
    }
    return "?";
}

Result<KvCacheType> parseKvCacheType(const std::string& s) {
    if (s == "auto") return KvCacheType::Auto;
    if (s == "f32" || s == "fp32" || s == "float32") return KvCacheType::F32;
    if (s == "f16" || s == "fp16" || s == "float16") return KvCacheType::F16;
    return makeError("unknown KV cache type '" + s + "' (auto, f32, f16)");
}

KvCacheType resolveKvCacheType(KvCacheType t, int64_t contextTokens, bool onGpus) {
    if (t != KvCacheType::Auto) return t;
    return !onGpus && contextTokens >= kLongContextTokens ? KvCacheType::F16 : KvCacheType::F32;
}

const char* engineStateName(EngineState s) {
    switch (s) {
        case EngineState::Serving: return "serving";
        case EngineState::Faulted: return "faulted";
        case EngineState::Reloading: return "reloading";
    }
    return "?";
}

struct Engine::Impl {
    EngineOptions options;
    ModelConfig config;  // a copy, valid whatever happens to the model
    std::unique_ptr<EngineModel> model;
    std::unique_ptr<Scheduler> scheduler;  // declared after the model: stopped and joined before it goes
    // Shared by every call that uses model or scheduler; exclusive while reload() replaces them.
    mutable std::shared_mutex life;
    std::atomic<bool> reloading{false};
    std::string loadError;       // under life: why the last reload left no model
    std::atomic<RequestId> nextId{1};  // the first id of the next scheduler; ids while no model is loaded
    mutable std::mutex statsMutex;
    mutable StatsSnapshot lastStats;  // under statsMutex: answered while reloading

    Result<void> load() {
        auto m = loadEngineModel(options.modelPath, options.load, options.maxImagePixels);
        if (!m) return m.error();
        model = std::move(*m);
        config = model->config();
        auto s = Scheduler::create(options, model.get(), nextId.load());
        if (!s) {
            model.reset();
            return s.error();
        }
        scheduler = std::move(*s);
        return {};
    }
};

Result<std::unique_ptr<Engine>> Engine::create(const EngineOptions& options) {
    std::unique_ptr<Engine> e(new Engine());
    e->m = std::make_unique<Impl>();
    Impl& m = *e->m;
    m.options = options;
    if (options.blockSize <= 0) return makeError("engine: block size must be positive");
    if (options.maxNumSeqs <= 0) return makeError("engine: max_num_seqs must be positive");
    if (options.maxBatchTokens <= 0) return makeError("engine: the per-step token budget must be positive");
    WB_TRY(m.load());
    return e;
}

Engine::~Engine() = default;

RequestId Engine::submit(Request request, EventSink sink) {
    std::shared_lock lock(m->life);
    if (m->scheduler) return m->scheduler->submit(std::move(request), std::move(sink));
    // A reload failed and left no model: the request ends here.
    const RequestId id = m->nextId++;
    Event e;
    e.id = id;
    e.type = EventType::Error;
    e.reason = StopReason::Error;
    e.text = "engine faulted: " + m->loadError + " (reload the model: Engine::reload)";
    if (sink) {
        try {
            sink(e);
        } catch (...) {
        }
    }
    return id;
}
void Engine::holdScheduling(bool hold) {
    std::shared_lock lock(m->life);
    if (m->scheduler) m->scheduler->holdScheduling(hold);
}
bool Engine::cancel(RequestId id) {
    std::shared_lock lock(m->life);
    return m->scheduler && m->scheduler->cancel(id);
}
StatsSnapshot Engine::stats() const {
    std::shared_lock lock(m->life, std::try_to_lock);
    std::lock_guard statsLock(m->statsMutex);
    if (!lock.owns_lock() || m->reloading) {
        StatsSnapshot s = m->lastStats;
        s.state = EngineState::Reloading;
        s.faultReason.clear();
        return s;
    }
    if (!m->scheduler) {
        StatsSnapshot s;
        s.state = EngineState::Faulted;
        s.faultReason = m->loadError;
        return s;
    }
    m->lastStats = m->scheduler->stats();
    return m->lastStats;
}
void Engine::waitIdle() const {
    std::shared_lock lock(m->life);
    if (m->scheduler) m->scheduler->waitIdle();
}

EngineState Engine::state() const {
    if (m->reloading) return EngineState::Reloading;
    std::shared_lock lock(m->life, std::try_to_lock);
    if (!lock.owns_lock()) return EngineState::Reloading;
    if (!m->scheduler || !m->scheduler->faultReason().empty()) return EngineState::Faulted;
    return EngineState::Serving;
}

std::string Engine::faultReason() const {
    std::shared_lock lock(m->life, std::try_to_lock);
    if (!lock.owns_lock()) return {};
    if (!m->scheduler) return m->loadError;
    return m->scheduler->faultReason();
}

Result<void> Engine::reload() {
    m->reloading = true;
    std::unique_lock lock(m->life);
    std::vector<int> ordinals;
    if (m->model) ordinals = m->model->deviceOrdinals();
    if (m->scheduler) m->nextId = m->scheduler->nextRequestId();
    // The scheduler first (it cancels what is live and joins its threads), then the model: every weight, buffer,
    // communicator and device object on the GPUs is gone before their contexts are reset.
    m->scheduler.reset();
    m->model.reset();
    Result<void> r = resetDevices(m->options.load.device, ordinals);
    if (r) r = m->load();
    m->loadError = r ? std::string() : "reload failed: " + r.error().message;
    m->reloading = false;
    return r;
}

const ModelConfig& Engine::modelConfig() const { return m->config; }
const Tokenizer& Engine::tokenizer() const { return m->model->tokenizer(); }
bool Engine::acceptsImages() const {
    std::shared_lock lock(m->life);
    return m->model && m->model->acceptsImages();
}
Result<std::vector<int32_t>> Engine::promptTokens(const Request& request) const {
    std::shared_lock lock(m->life);
    if (!m->model) return makeError("engine faulted: " + m->loadError);
    auto p = m->model->prepare(request, false);
    if (!p) return p.error();
    return std::move(p->ids);
}
const EngineOptions& Engine::options() const { return m->options; }

}  // namespace wb
