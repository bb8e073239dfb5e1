#include "bridge/engine_bridge.h"

#include <QBuffer>
#include <QFile>
#include <QImage>

#include <QFileInfo>
#include <QRandomGenerator>
#include <QThreadPool>
#include <QtConcurrent/QtConcurrentRun>
#include <chrono>
#include <mutex>

#include "api/engine.h"
#include "api/model_types.h"
#include "api/image_format.h"
#include "bridge/model_info.h"

namespace wbgui {

/// Shared by the bridge and every engine callback. Callbacks post to `target` only while holding the mutex,
/// and the bridge clears `target` under the same mutex before it dies, so no callback ever posts to a
/// destroyed object (Qt drops events still queued for an object that is then deleted).
struct EngineBridge::Relay {
    std::mutex mutex;
    EngineBridge* target = nullptr;

    template <typename F>
    void post(F&& fn) {
        std::lock_guard lock(mutex);
        if (target) QMetaObject::invokeMethod(target, std::forward<F>(fn), Qt::QueuedConnection);
    }
};

EngineBridge::EngineBridge(QObject* parent) : QObject(parent), m_relay(std::make_shared<Relay>()) {
    qRegisterMetaType<GenerationResult>();
    qRegisterMetaType<StatsSample>();
    qRegisterMetaType<LoadedModelInfo>();
    m_relay->target = this;
    m_statsTimer.setInterval(125);  // 8 Hz: smooth charts without being pushed per token
    connect(&m_statsTimer, &QTimer::timeout, this, &EngineBridge::sampleStats);
    m_clock.start();
}

EngineBridge::~EngineBridge() {
    {
        std::lock_guard lock(m_relay->mutex);
        m_relay->target = nullptr;
    }
    if (m_engine)
        for (quint64 id : std::as_const(m_live)) m_engine->cancel(id);
    disposeEngine(std::move(m_engine));
}

void EngineBridge::disposeEngine(std::shared_ptr<wb::Engine> engine) {
    if (!engine) return;
    // ~Engine joins the loop thread, which may be in the middle of a step: never on the GUI thread. The global
    // pool is waited for when QCoreApplication goes, so the process does not exit under a running loop.
    QThreadPool::globalInstance()->start([e = std::move(engine)]() mutable { e.reset(); });
}

void EngineBridge::loadModel(const LoadRequest& request) {
    if (m_state != State::Empty) unloadModel();
    m_state = State::Loading;
    m_pendingLoad = request;
    const quint64 generation = ++m_loadGeneration;
    Q_EMIT loadStarted(request.path);

    wb::EngineOptions options;
    options.modelPath = request.path.toStdString();
    auto precision = wb::parsePrecision(request.precision.toStdString());
    options.load.precision = precision ? *precision : wb::Precision::Native;
    options.load.numThreads = request.numThreads;
    if (auto dk = wb::parseDeviceKind(request.device.toStdString())) options.load.device = *dk;
    options.load.parallelDegree = qMax(1, request.parallelDegree);
    options.maxModelLen = request.contextLength;
    options.maxNumSeqs = qMax(1, request.maxSequences);
    std::weak_ptr<Relay> relay = m_relay;
    (void)QtConcurrent::run([options, relay, generation] {
        const auto start = std::chrono::steady_clock::now();
        auto result = wb::Engine::create(options);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        std::shared_ptr<wb::Engine> engine;
        QString error;
        if (result) engine = std::move(result).value();
        else error = QString::fromStdString(result.error().message);
        auto r = relay.lock();
        if (r) {
            std::unique_lock lock(r->mutex);
            if (r->target) {
                EngineBridge* target = r->target;
                QMetaObject::invokeMethod(
                    target, [target, generation, engine, error, ms] { target->onLoadResult(generation, engine, error, ms); },
                    Qt::QueuedConnection);
                return;
            }
        }
        engine.reset();  // nobody wants it any more: already on a pool thread, free it here
    });
}

void EngineBridge::cancelLoad() {
    if (m_state != State::Loading) return;
    ++m_loadGeneration;
    m_state = State::Empty;
    Q_EMIT loadCancelled(m_pendingLoad.path);
}

void EngineBridge::onLoadResult(quint64 generation, std::shared_ptr<wb::Engine> engine, const QString& error,
                                double ms) {
    if (generation != m_loadGeneration) {  // cancelled, or superseded by a newer load
        disposeEngine(std::move(engine));
        return;
    }
    if (!engine) {
        m_state = State::Empty;
        QString message = error;
        const QString file = QFileInfo(m_pendingLoad.path).fileName();
        if (!message.contains(file)) message = m_pendingLoad.path + QStringLiteral(": ") + message;
        Q_EMIT loadFailed(m_pendingLoad.path, message);
        return;
    }
    m_engine = std::move(engine);
    m_state = State::Ready;
    const wb::StatsSnapshot s = m_engine->stats();
    m_loaded = LoadedModelInfo{};
    m_loaded.path = m_pendingLoad.path;
    m_loaded.precision = m_pendingLoad.precision;
    m_loaded.architecture = QString::fromStdString(m_engine->modelConfig().architecture);
    m_loaded.acceptsImages = m_engine->acceptsImages();
    m_loaded.device = QString::fromStdString(s.device);
    m_loaded.contextLength = m_engine->options().maxModelLen > 0
                                 ? qMin<qint64>(m_engine->options().maxModelLen, m_engine->modelConfig().maxContext)
                                 : m_engine->modelConfig().maxContext;
    m_loaded.weightBytes = s.weightBytes;
    m_loaded.kvCacheBytes = s.kvCacheBytes;
    m_loaded.loadMs = ms;
    m_lastGenerated = s.totalGeneratedTokens;
    m_lastStep = s.recentSteps.empty() ? 0 : s.recentSteps.back().step;
    m_lastSampleSec = m_clock.elapsed() / 1000.0;
    m_statsTimer.start();
    Q_EMIT loadFinished(m_loaded);
}

void EngineBridge::unloadModel() {
    if (m_state == State::Loading) cancelLoad();
    if (!m_engine) return;
    m_statsTimer.stop();
    for (quint64 id : std::as_const(m_live)) m_engine->cancel(id);
    m_live.clear();  // their Finished events, if any still arrive, are for a model that is gone
    disposeEngine(std::move(m_engine));
    ++m_engineEpoch;
    m_state = State::Empty;
    m_loaded = LoadedModelInfo{};
    Q_EMIT unloaded();
}

quint64 EngineBridge::submitChat(const QList<ChatTurn>& turns, const SamplingSettings& sampling) {
    if (!m_engine) {
        Q_EMIT requestFailed(0, tr("No model is loaded: load one in the Models view first."));
        return 0;
    }
    wb::Request request;
    for (const ChatTurn& t : turns) {
        wb::ChatMessage m{t.role.toStdString(), t.content.toStdString(), {}};
        if (!t.images.isEmpty() && m_loaded.acceptsImages) {
            // Images first, then the text (the layout of the model's own examples). PNG and JPEG files are not read
            // here: the engine reads each on its preparation thread (a phone screenshot is megabytes, and every
            // turn of the history goes again with every send); only their first bytes are sniffed. The input panel
            // converts other formats to PNG when they are attached; a chat saved by an older version may still
            // name a BMP/GIF/WebP file, which is converted here, as before (rare, and only for such chats).
            for (const QString& path : t.images) {
                QFile f(path);
                QByteArray head;
                if (f.open(QIODevice::ReadOnly)) head = f.read(16);
                const auto* raw = reinterpret_cast<const uint8_t*>(head.constData());
                if (head.isEmpty() ||
                    wb::detectImageFormat(std::span<const uint8_t>(raw, size_t(head.size()))) != wb::ImageFormat::Unknown) {
                    // Unreadable files go too: the engine's error names the path and the reason.
                    m.parts.push_back(wb::ContentPart::makeImageFile(QFile::encodeName(path).toStdString()));
                    continue;
                }
                QImage img;
                QBuffer out;
                if (!img.loadFromData(head + f.readAll()) || !out.open(QIODevice::WriteOnly) || !img.save(&out, "PNG")) {
                    Q_EMIT requestFailed(0, tr("The attached file %1 is not an image this build can read").arg(path));
                    return 0;
                }
                const QByteArray png = out.data();
                m.parts.push_back(wb::ContentPart::makeImage(std::vector<uint8_t>(png.begin(), png.end())));
            }
            if (!m.content.empty()) m.parts.push_back(wb::ContentPart::makeText(m.content));
        }
        request.messages.push_back(std::move(m));
    }
    request.sampling.temperature = float(sampling.temperature);
    request.sampling.topP = float(sampling.topP);
    request.sampling.topK = sampling.topK;
    request.sampling.repetitionPenalty = float(sampling.repetitionPenalty);
    request.sampling.seed = sampling.seed ? sampling.seed : QRandomGenerator::global()->generate64();
    request.maxTokens = sampling.maxTokens;
    request.enableThinking = sampling.enableThinking;

    std::weak_ptr<Relay> weakRelay = m_relay;
    const quint64 epoch = m_engineEpoch;
    // Runs on the engine's loop thread: copy the event into Qt types and post it, nothing more.
    auto sink = [weakRelay, epoch](const wb::Event& ev) {
        auto relay = weakRelay.lock();
        if (!relay) return;
        const quint64 id = ev.id;
        switch (ev.type) {
            case wb::EventType::TextDelta: {
                QString text = QString::fromStdString(ev.text);
                relay->post([r = relay.get(), epoch, id, text] {
                    if (r->target->m_engineEpoch == epoch) Q_EMIT r->target->textDelta(id, text);
                });
                break;
            }
            case wb::EventType::ReasoningDelta: {
                QString text = QString::fromStdString(ev.text);
                relay->post([r = relay.get(), epoch, id, text] {
                    if (r->target->m_engineEpoch == epoch) Q_EMIT r->target->reasoningDelta(id, text);
                });
                break;
            }
            case wb::EventType::Finished:
            case wb::EventType::Error: {
                GenerationResult res;
                res.id = id;
                res.stopReason = QString::fromLatin1(wb::stopReasonName(ev.reason));
                res.promptTokens = ev.usage.promptTokens;
                res.completionTokens = ev.usage.completionTokens;
                res.queueMs = ev.timings.queueMs;
                res.ttftMs = ev.timings.ttftMs;
                res.e2eMs = ev.timings.e2eMs;
                double sum = 0;
                for (double x : ev.timings.interTokenMs) sum += x;
                res.meanInterTokenMs = ev.timings.interTokenMs.empty() ? 0 : sum / ev.timings.interTokenMs.size();
                const bool isError = ev.type == wb::EventType::Error;
                QString message = QString::fromStdString(ev.text);
                relay->post([r = relay.get(), epoch, id, res, isError, message] {
                    EngineBridge* b = r->target;
                    if (b->m_engineEpoch != epoch) return;
                    b->m_live.remove(id);
                    if (isError) Q_EMIT b->requestFailed(id, message);
                    Q_EMIT b->finished(id, res);
                });
                break;
            }
        }
    };
    // Registered before the engine can call back, so a very fast Finished still finds the id live.
    const wb::RequestId id = m_engine->submit(std::move(request), sink);
    m_live.insert(id);
    return id;
}

bool EngineBridge::stop(quint64 id) { return m_engine && m_engine->cancel(id); }

void EngineBridge::reloadEngine() {
    if (!m_engine || m_reloading) return;
    m_reloading = true;
    std::shared_ptr<wb::Engine> engine = m_engine;
    std::weak_ptr<Relay> weakRelay = m_relay;
    const quint64 epoch = m_engineEpoch;
    (void)QtConcurrent::run([engine, weakRelay, epoch] {
        auto r = engine->reload();  // joins the engine's threads: never on the GUI thread
        const QString error = r ? QString() : QString::fromStdString(r.error().message);
        if (auto relay = weakRelay.lock())
            relay->post([rl = relay.get(), epoch, error] {
                EngineBridge* b = rl->target;
                b->m_reloading = false;
                if (epoch != b->m_engineEpoch) return;  // unloaded meanwhile
                if (error.isEmpty()) b->m_faultReason.clear();
                Q_EMIT b->reloadFinished(error.isEmpty(), error);
            });
    });
}

void EngineBridge::sampleStats() {
    if (!m_engine) return;
    const wb::StatsSnapshot s = m_engine->stats();
    StatsSample out;
    out.engineState = QString::fromLatin1(wb::engineStateName(s.state));
    out.faultReason = QString::fromStdString(s.faultReason);
    if (s.state == wb::EngineState::Faulted && m_faultReason.isEmpty() && !m_reloading) {
        m_faultReason = out.faultReason.isEmpty() ? tr("the device faulted") : out.faultReason;
        Q_EMIT engineFaulted(m_faultReason);
    }
    out.atSec = m_clock.elapsed() / 1000.0;
    const double dt = out.atSec - m_lastSampleSec;
    out.tokensPerSecond = dt > 0 ? double(s.totalGeneratedTokens - m_lastGenerated) / dt : 0;
    double stepSum = 0;
    int steps = 0;
    for (const wb::StepStats& st : s.recentSteps) {
        if (st.step <= m_lastStep) continue;
        out.batchSize = qMax(out.batchSize, st.batchSize);
        if (st.decodeTokens > 0) {
            stepSum += st.stepMs;
            ++steps;
        }
    }
    out.interTokenMs = steps ? stepSum / steps : 0;
    if (!s.recentSteps.empty()) m_lastStep = s.recentSteps.back().step;
    m_lastGenerated = s.totalGeneratedTokens;
    m_lastSampleSec = out.atSec;
    out.kvBlocksUsed = s.kvBlocksUsed;
    out.kvBlocksTotal = s.kvBlocksTotal;
    out.kvUsePercent = s.kvBlocksTotal ? 100.0 * double(s.kvBlocksUsed) / double(s.kvBlocksTotal) : 0;
    out.weightBytes = s.weightBytes;
    out.kvCacheBytes = s.kvCacheBytes;
    out.processRssBytes = processRssBytes();
    out.numRunning = s.numRunning;
    out.numWaiting = s.numWaiting;
    out.numPreparing = s.numPreparing;
    out.totalGeneratedTokens = s.totalGeneratedTokens;
    out.device = QString::fromStdString(s.device);
    for (const wb::RequestStats& r : s.requests) {
        out.requestStates.insert(r.id, QString::fromStdString(r.state));
        out.requestStages.insert(r.id, QString::fromStdString(r.stage));
        out.requestAgeMs.insert(r.id, r.ageMs);
    }
    for (const wb::DeviceStats& d : s.devices)
        out.devices.append(tr("%1: weights %2, KV %3, free %4 of %5")
                                   .arg(QString::fromStdString(d.name), humanBytes(d.weightBytes),
                                        humanBytes(d.kvCacheBytes), humanBytes(d.freeBytes), humanBytes(d.totalBytes)));
    Q_EMIT statsSampled(out);
}

}  // namespace wbgui
