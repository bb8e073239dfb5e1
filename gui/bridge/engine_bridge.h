// EngineBridge: the GUI's one handle on a wb::Engine. It loads and unloads models on pool threads (Engine::create
// blocks; destroying an Engine joins its loop), relays each request's events from the engine's loop thread as
// queued signals, and samples Engine::stats() on a timer for the charts. Every signal is emitted on the GUI
// thread; nothing it does from the GUI thread waits on the engine.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QSet>
#include <QTimer>
#include <memory>

#include "bridge/bridge_types.h"

namespace wb {
class Engine;
}

namespace wbgui {

struct LoadRequest {
    QString path;
    QString precision = QStringLiteral("native");
    int numThreads = 0;          // 0: one per core
    qint64 contextLength = 0;    // 0: the model's own
    int maxSequences = 4;        // the KV pool holds this many full-length sequences
    QString device = QStringLiteral("cpu");  // cpu | cuda
    int parallelDegree = 1;      // tensor parallel over this many devices (GPUs, or CPU ranks)
};

struct LoadedModelInfo {
    QString path;
    QString precision;
    QString architecture;
    QString device;
    qint64 contextLength = 0;
    qint64 weightBytes = 0;
    qint64 kvCacheBytes = 0;
    double loadMs = 0;
    bool acceptsImages = false;  // a vision model (GLM-4.1V) is loaded
    bool acceptsAudio = false;
};

class EngineBridge : public QObject {
    Q_OBJECT
public:
    explicit EngineBridge(QObject* parent = nullptr);
    /// Cancels live requests and hands the engine to a pool thread to be destroyed; does not wait for it.
    ~EngineBridge() override;

    enum class State { Empty, Loading, Ready };
    State state() const { return m_state; }
    bool isLoaded() const { return m_state == State::Ready; }
    const LoadedModelInfo& loadedModel() const { return m_loaded; }
    /// The loaded engine (null when none), for a consumer that drives it on its own thread (the Agent tab): the
    /// reference keeps it alive past an unload until that consumer lets go.
    std::shared_ptr<wb::Engine> engine() const { return isLoaded() ? m_engine : nullptr; }

    /// Starts loading on a pool thread (an already loaded model is unloaded first). Emits loadFinished or
    /// loadFailed, or loadCancelled when cancelLoad() came first.
    void loadModel(const LoadRequest& request);
    /// The load is one blocking engine call that cannot be interrupted: its result is discarded (and freed off
    /// the GUI thread) when it arrives.
    void cancelLoad();
    /// Cancels what is running and frees the engine on a pool thread; emits unloaded at once.
    void unloadModel();

    /// Queues a chat request; returns its id (0 and an error signal when no model is loaded).
    quint64 submitChat(const QList<ChatTurn>& turns, const SamplingSettings& sampling);
    /// Stops a request; its finished signal follows with stop reason "cancelled".
    bool stop(quint64 id);
    /// After a device fault (statsSampled's faultReason set): destroys the model and its device contexts and
    /// loads it again, on a pool thread; reloadFinished says how it went.
    void reloadEngine();
    bool isFaulted() const { return !m_faultReason.isEmpty(); }
    QString faultReason() const { return m_faultReason; }
    bool isBusy() const { return !m_live.isEmpty(); }

    void setSampleIntervalMs(int ms) { m_statsTimer.setInterval(ms); }
    int sampleIntervalMs() const { return m_statsTimer.interval(); }

Q_SIGNALS:
    void loadStarted(const QString& path);
    void loadFinished(const wbgui::LoadedModelInfo& info);
    void loadFailed(const QString& path, const QString& message);
    void loadCancelled(const QString& path);
    void unloaded();
    void textDelta(quint64 id, const QString& text);
    void reasoningDelta(quint64 id, const QString& text);
    void finished(quint64 id, const wbgui::GenerationResult& result);
    void requestFailed(quint64 id, const QString& message);
    void statsSampled(const wbgui::StatsSample& sample);
    /// The engine faulted (a GPU's sticky error): every request fails until reloadEngine().
    void engineFaulted(const QString& reason);
    void reloadFinished(bool ok, const QString& error);

private:
    struct Relay;
    void onLoadResult(quint64 generation, std::shared_ptr<wb::Engine> engine, const QString& error, double ms);
    void sampleStats();
    static void disposeEngine(std::shared_ptr<wb::Engine> engine);

    State m_state = State::Empty;
    std::shared_ptr<wb::Engine> m_engine;
    std::shared_ptr<Relay> m_relay;  // the engine threads' only way back to this object
    quint64 m_loadGeneration = 0;    // bumps on each load and cancel: a stale result is dropped
    LoadRequest m_pendingLoad;
    LoadedModelInfo m_loaded;
    QSet<quint64> m_live;
    QTimer m_statsTimer;
    QElapsedTimer m_clock;
    double m_lastSampleSec = 0;
    quint64 m_lastGenerated = 0;
    quint64 m_lastStep = 0;
    QString m_faultReason;  // set while the engine reports Faulted
    bool m_reloading = false;
    quint64 m_engineEpoch = 0;  // bumps on unload: late events of a freed engine are dropped
};

}  // namespace wbgui

Q_DECLARE_METATYPE(wbgui::LoadedModelInfo)
