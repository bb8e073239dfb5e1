// The public face of the engine: it loads the model and owns it, and forwards requests, cancellations and stats to
// the scheduler (runtime/scheduler.h), which owns the loop, the KV pool and the preparation thread.
#include "api/engine.h"

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

struct Engine::Impl {
    EngineOptions options;
    std::unique_ptr<EngineModel> model;
    std::unique_ptr<Scheduler> scheduler;  // declared after the model: stopped and joined before it goes
};

Result<std::unique_ptr<Engine>> Engine::create(const EngineOptions& options) {
    std::unique_ptr<Engine> e(new Engine());
    e->m = std::make_unique<Impl>();
    Impl& m = *e->m;
    m.options = options;
    if (options.blockSize <= 0) return makeError("engine: block size must be positive");
    if (options.maxNumSeqs <= 0) return makeError("engine: max_num_seqs must be positive");
    if (options.maxBatchTokens <= 0) return makeError("engine: the per-step token budget must be positive");
    auto model = loadEngineModel(options.modelPath, options.load, options.maxImagePixels);
    if (!model) return model.error();
    m.model = std::move(*model);
    auto scheduler = Scheduler::create(options, m.model.get());
    if (!scheduler) return scheduler.error();
    m.scheduler = std::move(*scheduler);
    return e;
}

Engine::~Engine() = default;

RequestId Engine::submit(Request request, EventSink sink) {
    return m->scheduler->submit(std::move(request), std::move(sink));
}
void Engine::holdScheduling(bool hold) { m->scheduler->holdScheduling(hold); }
bool Engine::cancel(RequestId id) { return m->scheduler->cancel(id); }
StatsSnapshot Engine::stats() const { return m->scheduler->stats(); }
void Engine::waitIdle() const { m->scheduler->waitIdle(); }

const ModelConfig& Engine::modelConfig() const { return m->model->config(); }
const Tokenizer& Engine::tokenizer() const { return m->model->tokenizer(); }
bool Engine::acceptsImages() const { return m->model->acceptsImages(); }
Result<std::vector<int32_t>> Engine::promptTokens(const Request& request) const {
    auto p = m->model->prepare(request, false);
    if (!p) return p.error();
    return std::move(p->ids);
}
const EngineOptions& Engine::options() const { return m->options; }

}  // namespace wb
