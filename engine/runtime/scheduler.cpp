#include "runtime/scheduler.h"

#include "core/host_memory.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "runtime/detokenizer.h"
#include "runtime/kv_block_pool.h"
#include "runtime/prefix_cache.h"
#include "runtime/reasoning_splitter.h"

namespace wb {

namespace {

std::string faultMessage(const std::string& reason) {
    return "engine faulted: " + reason + " (reload the model: Engine::reload)";
}

int64_t availableMemoryBytes() {
    const int64_t b = hostMemInfoBytes("MemAvailable:");
    return b > 0 ? b : int64_t(4) << 30;
}

}  // namespace

void Scheduler::emit(Sequence& s, Event e) {
    e.id = s.id;
    if (!s.sink) return;
    try {
        s.sink(e);
    } catch (...) {
        // A sink must not take the engine down.
    }
}

void Scheduler::emitText(Sequence& s, const std::string& text) {
    if (text.empty()) return;
    auto d = s.splitter->push(text);
    if (!d.reasoning.empty()) emit(s, Event{0, EventType::ReasoningDelta, d.reasoning});
    if (!d.content.empty()) emit(s, Event{0, EventType::TextDelta, d.content});
}

void Scheduler::freeBlocks(Sequence& s) {
    for (int32_t b : s.table.blocks) pool->release(b);
    s.table.blocks.clear();
}

bool Scheduler::ensureBlocks(Sequence& s, int64_t numTokens) {
    const int64_t need = BlockTable::blocksFor(numTokens, pool->blockSize());
    while (int64_t(s.table.blocks.size()) < need) {
        auto b = pool->allocate();
        if (!b) return false;
        s.table.blocks.push_back(*b);
    }
    return true;
}

void Scheduler::preempt(size_t i) {
    // Recompute later: drop the cache, keep prompt + generated tokens and the streaming state, so nothing
    // already emitted is emitted twice.
    std::unique_ptr<Sequence> s = std::move(running[i]);
    running.erase(running.begin() + long(i));
    freeBlocks(*s);
    s->numComputed = 0;
    s->blockHashes.clear();
    ++totalPreemptions;
    // Back to the waiting queue in arrival order, ahead of younger requests.
    auto it = waiting.begin();
    while (it != waiting.end() && (*it)->arrival < s->arrival) ++it;
    waiting.insert(it, std::move(s));
}

void Scheduler::finish(std::unique_ptr<Sequence>& s, StopReason reason, const std::string& error) {
    const auto now = Clock::now();
    if (reason != StopReason::Error) {
        // Release whatever the streaming stages still hold.
        std::string tail = s->utf8.flush();
        if (s->stops && !s->stops->stopped()) tail = s->stops->push(tail) + s->stops->flush();
        if (s->stops && s->stops->stopped()) tail.clear();
        emitText(*s, tail);
        if (s->splitter) {
            auto d = s->splitter->flush();
            if (!d.reasoning.empty()) emit(*s, Event{0, EventType::ReasoningDelta, d.reasoning});
            if (!d.content.empty()) emit(*s, Event{0, EventType::TextDelta, d.content});
        }
    }
    Event e;
    e.type = reason == StopReason::Error ? EventType::Error : EventType::Finished;
    e.reason = reason;
    e.text = error;
    e.usage.promptTokens = s->promptLen;
    e.usage.completionTokens = std::max<int64_t>(0, s->generated());
    e.usage.cachedPromptTokens = std::max<int64_t>(0, s->cachedTokens);
    e.timings.queueMs = s->scheduled ? msBetween(s->submitted, s->scheduledAt) : msBetween(s->submitted, now);
    e.timings.ttftMs = s->ttftMs;
    e.timings.e2eMs = msBetween(s->submitted, now);
    e.timings.interTokenMs = std::move(s->interTokenMs);
    e.tokens.assign(s->tokens.begin() + std::min<int64_t>(s->promptLen, int64_t(s->tokens.size())), s->tokens.end());
    freeBlocks(*s);
    ++totalFinished;
    emit(*s, std::move(e));
    std::lock_guard lock(mutex);
    live.erase(s->id);
    cancelRequests.erase(s->id);
    // waitIdle() may already be waiting: a request that ends outside a normal step (cancelled, failed before
    // scheduling) must wake it too.
    if (live.empty()) idleCv.notify_all();
}

void Scheduler::prepLoop() {
    for (;;) {
        std::unique_ptr<Sequence> s;
        {
            std::unique_lock lock(mutex);
            prepCv.wait(lock, [&] { return prepStopping || !toPrepare.empty(); });
            if (toPrepare.empty()) return;  // stopping, nothing left: the loop cancels what never got here
            s = std::move(toPrepare.front());
            toPrepare.pop_front();
            if (prepStopping || cancelRequests.count(s->id)) {
                // Not worth preparing: the loop ends it (as cancelled) when it takes it in.
                inPreparation.erase(s->id);
                incoming.push_back(std::move(s));
                cv.notify_all();
                continue;
            }
        }
        // Its stage for stats(), and a cancel noticed between vision blocks rather than after the whole tower.
        const RequestId id = s->id;
        PrepareObserver observer;
        observer.onStage = [this, id](const std::string& stage) {
            std::lock_guard lock(mutex);
            prepStage[id] = stage;
        };
        observer.cancelled = [this, id] {
            std::lock_guard lock(mutex);
            return prepStopping || cancelRequests.count(id) > 0;
        };
        auto p = model->prepare(s->request, true, &observer);
        if (p)
            s->prompt = std::move(*p);
        else
            s->prepError = p.error().message;
        s->prepared = true;
        {
            std::lock_guard lock(mutex);
            inPreparation.erase(s->id);
            prepStage.erase(s->id);
            incoming.push_back(std::move(s));
        }
        cv.notify_all();
    }
}

void Scheduler::publishStats() {
    StatsSnapshot s;
    const auto now = Clock::now();
    auto add = [&](const Sequence& q, const char* state) {
        RequestStats r;
        r.id = q.id;
        r.state = state;
        r.promptTokens = q.promptLen;
        r.generatedTokens = std::max<int64_t>(0, q.generated());
        r.kvBlocks = int64_t(q.table.blocks.size());
        r.ageMs = msBetween(q.submitted, now);
        r.ttftMs = q.ttftMs;
        if (q.numComputed < q.promptLen)  // prefill in chunks: how far it is
            r.stage = std::to_string(q.numComputed) + "/" + std::to_string(q.promptLen) + " prompt tokens";
        s.requests.push_back(r);
    };
    for (const auto& q : running) add(*q, q->pending() > 1 ? "prefill" : "decode");
    for (const auto& q : waiting) add(*q, "waiting");
    s.recentSteps.assign(recentSteps.begin(), recentSteps.end());
    s.kvBlocksTotal = pool->numBlocks();
    s.kvBlocksUsed = pool->numUsed();
    s.kvBlockSize = pool->blockSize();
    s.weightBytes = model->weightBytes();
    s.kvCacheBytes = KvBlockPool::bytesPerBlock(model->config().numLayers,
                                                model->config().numKvHeads * model->config().headDim,
                                                pool->blockSize(), pool->dtype()) *
                     pool->numBlocks();
    s.kvCacheType = pool->dtype() == DType::F16 ? "f16" : "f32";
    s.numRunning = int(running.size());
    s.totalFinished = totalFinished;
    s.totalPreemptions = totalPreemptions;
    s.totalGeneratedTokens = totalGenerated;
    s.totalCachedPromptTokens = totalCachedTokens;
    s.totalImagesEncoded = uint64_t(model->imagesEncoded());
    s.totalImagesDecoded = uint64_t(model->imagesDecoded());
    s.device = deviceName;
    // Device memory is a system call (or a driver call) away: refreshed at most 4 times a second.
    if (devicesAt == Clock::time_point{} || msBetween(devicesAt, now) > 250) {
        devicesAt = now;
        deviceStats.clear();
        const auto shares = model->devices();
        if (shares.empty()) {
            DeviceStats d;
            d.name = deviceName;
            d.weightBytes = s.weightBytes;
            d.kvCacheBytes = s.kvCacheBytes;
            d.totalBytes = hostMemInfoBytes("MemTotal:");
            d.freeBytes = hostMemInfoBytes("MemAvailable:");
            deviceStats.push_back(d);
        }
        // A share's KV bytes per token are the f32 figure; an f16 pool holds half.
        for (const auto& sh : shares)
            deviceStats.push_back({sh.name, sh.weightBytes,
                                   sh.kvBytesPerToken * pool->elementBytes() / 4 * pool->blockSize() * pool->numBlocks(),
                                   sh.memory.totalBytes, sh.memory.freeBytes, sh.workspaceBytes});
    }
    s.devices = deviceStats;
    std::lock_guard lock(mutex);
    s.numWaiting = int(waiting.size() + incoming.size() + inPreparation.size());
    s.totalRequests = totalRequests;
    s.state = faulted.empty() ? EngineState::Serving : EngineState::Faulted;
    s.faultReason = faulted;
    snapshot = std::move(s);
}

void Scheduler::run() {
    const ModelConfig& c = model->config();
    logits.resize(size_t(options.maxNumSeqs) * size_t(c.vocabSize));
    for (;;) {
        // Take in new requests and cancellations.
        std::vector<std::unique_ptr<Sequence>> fresh;
        std::set<RequestId> cancels;
        bool holding = false;  // holdScheduling, as it was when this pass began
        {
            std::unique_lock lock(mutex);
            cv.wait(lock, [&] {
                return stopping || !incoming.empty() || newCancels ||
                       (!held && (!running.empty() || !waiting.empty()));
            });
            if (stopping) break;
            holding = held;
            while (!incoming.empty()) {
                fresh.push_back(std::move(incoming.front()));
                incoming.pop_front();
            }
            cancels = cancelRequests;
            newCancels = false;
        }
        const std::string fault = faultReason();
        for (auto& s : fresh) {
            std::string error;
            if (cancels.count(s->id)) {  // cancelled before it was prepared: nothing to tokenize or encode
                finish(s, StopReason::Cancelled);
                continue;
            }
            if (!fault.empty()) {  // faulted: nothing runs until the Engine reloads the model
                finish(s, StopReason::Error, faultMessage(fault));
                continue;
            }
            if (!prepareSequence(*s, *model, *pool, maxModelLen, error)) {
                finish(s, StopReason::Error, error);
                continue;
            }
            s->arrival = arrivals++;
            waiting.push_back(std::move(s));
        }
        if (!cancels.empty()) {
            for (size_t i = 0; i < running.size();) {
                if (cancels.count(running[i]->id)) {
                    finish(running[i], StopReason::Cancelled);
                    running.erase(running.begin() + long(i));
                } else {
                    ++i;
                }
            }
            for (auto it = waiting.begin(); it != waiting.end();) {
                if (cancels.count((*it)->id)) {
                    finish(*it, StopReason::Cancelled);
                    it = waiting.erase(it);
                } else {
                    ++it;
                }
            }
            // finish() dropped the cancels it served; the others (requests still being prepared, or prepared after
            // this pass took its snapshot) stay until their requests reach the loop.
        }
        if (holding) {  // holdScheduling(true): requests are taken in and wait, no step runs
            publishStats();
            continue;
        }

        // Schedule: decodes first (oldest first), then prefill chunks under the token budget.
        struct Item {
            Sequence* seq;
            int64_t count;
            bool wantLogits;
        };
        std::vector<Item> items;
        int64_t budget = options.maxBatchTokens;
        int64_t prefillTokens = 0, decodeTokens = 0;
        for (size_t i = 0; i < running.size() && budget > 0;) {
            Sequence& s = *running[i];
            if (s.pending() != 1) {
                ++i;
                continue;
            }
            if (!ensureBlocks(s, s.numComputed + 1)) {
                // Out of blocks: preempt the youngest running sequence (maybe this one) and retry.
                size_t youngest = 0;
                for (size_t j = 1; j < running.size(); ++j)
                    if (running[j]->arrival > running[youngest]->arrival) youngest = j;
                const bool self = youngest == i;
                // Items already picked point at sequences that stay (the youngest was not picked yet unless
                // it is older than i, which it cannot be).
                items.erase(std::remove_if(items.begin(), items.end(),
                                           [&](const Item& it) { return it.seq == running[youngest].get(); }),
                            items.end());
                preempt(youngest);
                if (self) continue;
                if (youngest < i) --i;
                continue;
            }
            items.push_back({&s, 1, true});
            --budget;
            ++decodeTokens;
            ++i;
        }
        for (auto& sp : running) {
            Sequence& s = *sp;
            if (budget <= 0) break;
            if (s.pending() <= 1) continue;
            const int64_t n = std::min(s.pending(), budget);
            if (!ensureBlocks(s, s.numComputed + n)) break;
            items.push_back({&s, n, s.numComputed + n == int64_t(s.tokens.size())});
            budget -= n;
            prefillTokens += n;
        }
        while (!waiting.empty() && budget > 0 && int(running.size()) < options.maxNumSeqs) {
            Sequence& s = *waiting.front();
            if (options.prefixCaching && s.table.blocks.empty()) matchPrefix(*pool, s);
            const int64_t n = std::min(s.pending(), budget);
            if (!ensureBlocks(s, s.numComputed + n)) {
                freeBlocks(s);
                s.numComputed = 0;
                s.blockHashes.clear();
                break;
            }
            if (s.cachedTokens < 0) {
                s.cachedTokens = std::min(s.numComputed, s.promptLen);
                totalCachedTokens += uint64_t(s.cachedTokens);
            }
            if (!s.scheduled) {
                s.scheduled = true;
                s.scheduledAt = Clock::now();
            }
            items.push_back({&s, n, s.numComputed + n == int64_t(s.tokens.size())});
            budget -= n;
            prefillTokens += n;
            running.push_back(std::move(waiting.front()));
            waiting.pop_front();
        }
        if (items.empty()) {
            if (!running.empty()) {
                // Every running sequence is stuck on blocks: free the youngest so the others can move.
                size_t youngest = 0;
                for (size_t j = 1; j < running.size(); ++j)
                    if (running[j]->arrival > running[youngest]->arrival) youngest = j;
                preempt(youngest);
            } else if (!waiting.empty()) {
                // Cannot happen: an empty pool fits any admitted request. Fail it rather than spin.
                finish(waiting.front(), StopReason::Error, "internal: no KV blocks for a lone request");
                waiting.pop_front();
            }
            publishStats();
            continue;
        }

        std::vector<ModelStep> batch;
        batch.reserve(items.size());
        for (const Item& it : items)
            batch.push_back({std::span<const int32_t>(it.seq->tokens.data() + it.seq->numComputed, size_t(it.count)),
                             it.seq->numComputed, &it.seq->table, it.wantLogits, &it.seq->prompt});
        const auto t0 = Clock::now();
        auto r = model->forward(batch, *pool, logits.data());
        const auto t1 = Clock::now();
        if (!r) {
            // A failed step fails the sequences in it, not the engine, unless the model can run no more steps (a
            // device faulted): then everything live fails and the engine is Faulted until it is reloaded.
            const std::string why = model->needsReload();
            if (!why.empty()) {  // before any sink hears of it: whoever reads the state after an event sees Faulted
                std::lock_guard lock(mutex);
                if (faulted.empty()) faulted = why;
            }
            for (const Item& it : items)
                for (size_t i = 0; i < running.size(); ++i)
                    if (running[i].get() == it.seq) {
                        finish(running[i], StopReason::Error,
                               why.empty() ? r.error().message : faultMessage(why) + ": " + r.error().message);
                        running.erase(running.begin() + long(i));
                        break;
                    }
            if (!why.empty()) enterFaulted(why);
            publishStats();
            continue;
        }
        int64_t row = 0;
        std::set<Sequence*> done;
        std::map<Sequence*, StopReason> reasons;
        for (const Item& it : items) {
            Sequence& s = *it.seq;
            s.numComputed += it.count;
            if (options.prefixCaching) registerComputedBlocks(*pool, s);
            if (!it.wantLogits) continue;
            float* lg = logits.data() + row++ * c.vocabSize;
            const int32_t next = s.sampler->sample(lg, int32_t(c.vocabSize), s.tokens, size_t(s.promptLen));
            const auto now = Clock::now();
            if (s.ttftMs < 0)
                s.ttftMs = msBetween(s.submitted, now);
            else
                s.interTokenMs.push_back(msBetween(s.lastTokenAt, now));
            s.lastTokenAt = now;
            if (std::find(s.stopIds.begin(), s.stopIds.end(), next) != s.stopIds.end()) {
                done.insert(&s);
                reasons[&s] = StopReason::Stop;
                continue;
            }
            s.tokens.push_back(next);
            ++totalGenerated;
            const std::string text = s.stops->push(s.utf8.push(model->tokenizer().tokenBytes(next)));
            emitText(s, text);
            if (s.stops->stopped()) {
                done.insert(&s);
                reasons[&s] = StopReason::Stop;
            } else if (s.generated() >= s.request.maxTokens) {
                done.insert(&s);
                reasons[&s] = StopReason::Length;
            }
        }
        for (size_t i = 0; i < running.size();) {
            if (done.count(running[i].get())) {
                const StopReason why = reasons[running[i].get()];
                finish(running[i], why);
                running.erase(running.begin() + long(i));
            } else {
                ++i;
            }
        }
        StepStats st;
        st.step = ++step;
        st.batchSize = int(items.size());
        st.prefillTokens = prefillTokens;
        st.decodeTokens = decodeTokens;
        st.stepMs = msBetween(t0, t1);
        st.atMs = msBetween(startedAt, t1);
        recentSteps.push_back(st);
        if (recentSteps.size() > 256) recentSteps.pop_front();
        publishStats();
        if (running.empty() && waiting.empty()) idleCv.notify_all();
    }
    // Shutting down: everything still live ends as cancelled.
    for (auto& s : running) finish(s, StopReason::Cancelled);
    for (auto& s : waiting) finish(s, StopReason::Cancelled);
    running.clear();
    waiting.clear();
    std::deque<std::unique_ptr<Sequence>> rest;
    {
        std::lock_guard lock(mutex);
        rest.swap(incoming);
        for (auto& s : toPrepare) rest.push_back(std::move(s));
        toPrepare.clear();
    }
    for (auto& s : rest) finish(s, StopReason::Cancelled);
    idleCv.notify_all();
}

void Scheduler::enterFaulted(const std::string& reason) {
    {
        std::lock_guard lock(mutex);
        if (faulted.empty()) faulted = reason;
    }
    for (auto& s : running) finish(s, StopReason::Error, faultMessage(reason));
    running.clear();
    for (auto& s : waiting) finish(s, StopReason::Error, faultMessage(reason));
    waiting.clear();
    // incoming (and what the preparation thread hands over later) fails when the loop takes it in.
}

std::string Scheduler::faultReason() const {
    std::lock_guard lock(mutex);
    return faulted;
}

RequestId Scheduler::nextRequestId() const {
    std::lock_guard lock(mutex);
    return nextId;
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const EngineOptions& options, EngineModel* model,
                                                     RequestId firstId) {
    std::unique_ptr<Scheduler> e(new Scheduler());
    Scheduler& m = *e;
    m.options = options;
    m.model = model;
    m.nextId = firstId;
    const ModelConfig& c = m.model->config();
    m.maxModelLen = options.maxModelLen > 0 ? std::min(options.maxModelLen, c.maxContext) : c.maxContext;
    // The largest step's workspace and scratch first (the scheduler never plans more than maxBatchTokens tokens of
    // maxNumSeqs sequences): reserved inside the memory plan, before the KV cache takes what is left, and never
    // grown in the middle of a step.
    if (auto r = m.model->reserveStepMemory(options.maxBatchTokens, options.maxNumSeqs, m.maxModelLen,
                                            options.blockSize);
        !r)
        return makeError("engine: cannot reserve the memory of a " + std::to_string(options.maxBatchTokens) +
                         "-token step: " + r.error().message);
    // The cache's type: F16 where asked, or on the CPU when the context is long (KvCacheType).
    const KvCacheType kvType = resolveKvCacheType(options.kvCacheType, m.maxModelLen, m.model->onGpus());
    if (kvType == KvCacheType::F16 && m.model->onGpus())
        return makeError("engine: an f16 KV cache is CPU-only for now; the CUDA kernels keep it in f32 "
                         "(--kv-cache-dtype f32 or auto)");
    const DType kvDType = kvType == KvCacheType::F16 ? DType::F16 : DType::F32;
    const int64_t perBlock = KvBlockPool::bytesPerBlock(c.numLayers, c.numKvHeads * c.headDim, options.blockSize,
                                                        kvDType);
    int64_t blocks = options.numKvBlocks;
    if (blocks <= 0 && m.model->onGpus()) {
        // Each GPU holds its ranks' share of every block: the pool is what the tightest GPU can hold.
        blocks = std::numeric_limits<int64_t>::max();
        std::string tightest;
        for (const auto& d : m.model->devices()) {
            const int64_t budget = options.kvCacheBytes > 0
                                           ? options.kvCacheBytes
                                           : int64_t(double(d.memory.freeBytes) * options.gpuKvMemoryFraction);
            const int64_t fit = d.kvBytesPerToken > 0 ? budget / (d.kvBytesPerToken * options.blockSize) : blocks;
            if (fit < blocks) {
                blocks = fit;
                tightest = d.name;
            }
        }
        blocks = std::min(blocks, int64_t(options.maxNumSeqs) * BlockTable::blocksFor(m.maxModelLen, options.blockSize));
        if (blocks < 1)
            return makeError("engine: " + tightest + " has no memory left for a KV cache block after the weights");
    }
    if (blocks <= 0) {
        const int64_t budget = options.kvCacheBytes > 0 ? options.kvCacheBytes
                                                        : int64_t(double(availableMemoryBytes()) * options.kvMemoryFraction);
        blocks = budget / perBlock;
        // No point in more than every sequence at full length.
        blocks = std::min(blocks, int64_t(options.maxNumSeqs) * BlockTable::blocksFor(m.maxModelLen, options.blockSize));
    }
    if (blocks < 1)
        return makeError("engine: the KV cache budget holds no block of " + std::to_string(perBlock) + " bytes");
    // A model on devices (or split across ranks) keeps the keys and values itself: the pool only allocates blocks.
    m.pool = std::make_unique<KvBlockPool>(c.numLayers, c.numKvHeads * c.headDim, options.blockSize, blocks,
                                           m.model->kvOnHost() ? KvStorage::Host : KvStorage::External, kvDType);
    if (m.model->kvOnHost() && !m.pool->hasHostStorage())
        return makeError("engine: cannot allocate the KV cache (" + std::to_string(blocks) + " blocks of " +
                         std::to_string(perBlock) + " bytes)");
    m.deviceName = m.model->deviceSummary();
    m.publishStats();
    m.loop = std::thread([&m] { m.run(); });
    m.prepThread = std::thread([&m] { m.prepLoop(); });
    return e;
}

Scheduler::~Scheduler() {
    // The preparation thread first: what it is encoding reaches incoming before the loop stops and cancels it.
    {
        std::lock_guard lock(mutex);
        prepStopping = true;
    }
    prepCv.notify_all();
    if (prepThread.joinable()) prepThread.join();
    {
        std::lock_guard lock(mutex);
        stopping = true;
    }
    cv.notify_all();
    if (loop.joinable()) loop.join();
}

RequestId Scheduler::submit(Request request, EventSink sink) {
    auto s = std::make_unique<Sequence>();
    s->request = std::move(request);
    s->sink = std::move(sink);
    s->submitted = Clock::now();
    RequestId id;
    {
        std::lock_guard lock(mutex);
        id = nextId++;
        s->id = id;
        live.insert(id);
        ++totalRequests;
        if (model->prepareOffLoop(s->request)) {
            inPreparation[id] = s->submitted;
            toPrepare.push_back(std::move(s));
        }
        else
            incoming.push_back(std::move(s));
    }
    cv.notify_all();
    prepCv.notify_all();
    return id;
}

void Scheduler::holdScheduling(bool hold) {
    {
        std::lock_guard lock(mutex);
        held = hold;
    }
    cv.notify_all();
}

bool Scheduler::cancel(RequestId id) {
    {
        std::lock_guard lock(mutex);
        if (!live.count(id)) return false;
        cancelRequests.insert(id);
        newCancels = true;
    }
    cv.notify_all();
    return true;
}

StatsSnapshot Scheduler::stats() const {
    std::lock_guard lock(mutex);
    StatsSnapshot s = snapshot;
    // Requests being prepared (images through the vision tower) change while the loop may sleep: read them live.
    const auto now = Clock::now();
    for (const auto& [id, at] : inPreparation) {
        RequestStats r;
        r.id = id;
        r.state = "preparing";
        if (auto it = prepStage.find(id); it != prepStage.end()) r.stage = it->second;
        r.ageMs = msBetween(at, now);
        s.requests.push_back(r);
    }
    s.numPreparing = int(inPreparation.size());
    // Live too: the loop may fault between snapshots, and a caller who has seen the Error event must see it here.
    s.state = faulted.empty() ? EngineState::Serving : EngineState::Faulted;
    s.faultReason = faulted;
    return s;
}

void Scheduler::waitIdle() const {
    std::unique_lock lock(mutex);
    idleCv.wait(lock, [&] { return live.empty() || stopping; });
}

}  // namespace wb
