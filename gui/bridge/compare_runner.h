// CompareRunner: runs one workload on a list of comparison targets, one after another, on a pool thread: this
// engine in process (a fresh wb::Engine per target, created and destroyed off the GUI thread) or a remote
// OpenAI-compatible server through a target plugin (plugins/). Each result arrives as the same JSON run record
// that `wb bench --append-to` writes, so the Compare view, the CLI and saved files share one format.
// Every signal is emitted on the GUI thread.
#pragma once

#include <QByteArray>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <memory>

namespace wbgui {

struct CompareTargetSpec {
    enum class Kind { Engine, Remote };
    Kind kind = Kind::Engine;
    QString label;  // empty: "workbench (PRECISION)" or "PLUGIN (MODEL)"
    // Kind::Engine
    QString modelPath;
    QString precision = QStringLiteral("fp16");
    int numThreads = 0;
    // Kind::Remote
    QString pluginId = QStringLiteral("openai");
    QString url;
    QString modelName;  // empty: the server's first model
    QString apiKey;
    /// Prompts are random token ids below this (the server's vocabulary size); 0: 32000, as wb bench. A small
    /// model behind the URL needs its own, or the server rejects the ids.
    int vocabSize = 0;
};

struct CompareWorkload {
    qint64 inputTokens = 128;  // the article's workload
    qint64 outputTokens = 64;
    QList<int> concurrency{1, 4, 8};
    int requestsPerLevel = 0;  // 0: max(4 x concurrency, 8), as wb bench
    double requestRate = 0;    // Poisson arrivals per second; 0: closed loop
    double p99LimitMs = 0;     // 0: max stable concurrency only needs no errors
    int warmupRequests = 1;
    quint64 seed = 1;
    /// A multimodal workload (the phone agent's): each request is one chat message of these PNG/JPEG files, then
    /// the prompt; each request's images get new pixels unless sameImages (wb bench --image / --same-image).
    QStringList images;
    bool sameImages = false;
    /// Requests one target runs over all levels (for progress).
    int requestsPerTarget() const;
};

struct TargetPluginEntry {
    QString id;
    QString name;
    QString version;
    QString defaultUrl;
    QString launchTemplate;
    QString memoryReport;
    QString kvReport;
};

class CompareRunner : public QObject {
    Q_OBJECT
public:
    explicit CompareRunner(QObject* parent = nullptr);
    /// Cancels a run; its pool thread finishes the requests in flight and frees its engine without posting back.
    ~CompareRunner() override;

    /// The plugins found on the plugin path, and "file: reason" for each one skipped.
    QList<TargetPluginEntry> plugins() const { return m_plugins; }
    QStringList pluginProblems() const { return m_problems; }
    /// Rescans (WB_PLUGIN_PATH, next to the executable, and `extraDir` when given).
    void reloadPlugins(const QString& extraDir = {});

    bool isRunning() const { return m_running; }
    /// Starts the run; false when one is running or the list is empty.
    bool start(const QList<CompareTargetSpec>& targets, const CompareWorkload& workload);
    /// Stops starting requests: the level in flight ends with what finished, the remaining targets do not run.
    void cancel();

Q_SIGNALS:
    void targetStarted(int index, const QString& label);
    /// Overall progress in requests.
    void progress(int done, int total, const QString& what);
    /// The run record so far (JSON), after each concurrency level and once more when the target is done.
    void targetUpdated(int index, const QByteArray& runJson, bool done);
    void finished(bool cancelled);

private:
    struct Shared;
    std::shared_ptr<Shared> m_shared;
    bool m_running = false;
    QList<TargetPluginEntry> m_plugins;
    QStringList m_problems;
    QString m_extraPluginDir;
};

}  // namespace wbgui
