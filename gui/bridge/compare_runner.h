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
    /// A server the run starts itself (Kind::Remote): its command line, "{port}" replaced by a free port; the URL
    /// then is http://127.0.0.1:PORT/v1. The run waits for the plugin's probe to answer (up to launchTimeoutS),
    /// runs the levels, and stops the server (SIGTERM to its process group) before the next target starts.
    /// Empty: `url` names a server someone else runs.
    QStringList launchCommand;
    /// Kind::Remote: a model (GGUF or HF folder) whose tokenizer turns an image workload's prompt ids into the
    /// chat text the engine target gets, sent through the plugin's startChat (API version 2). Empty: ids only.
    QString tokenizerPath;
    QStringList launchEnv;  // KEY=VALUE on top of the workbench's environment
    QString launchWorkDir;
    int launchTimeoutS = 900;
};

/// The article's inputs (issue #18): one model as an HF folder (Transformers) and as GGUF files of the same weights
/// (this engine; llama.cpp at F16 and Q8_0).
struct ArticleModels {
    QString hfDir;       // empty: no Transformers rows
    QString engineGguf;  // this engine at FP32, BF16, INT8 (converted at load)
    QString llamaF16;    // llama.cpp's F16 row; empty: none
    QString llamaQ8;     // llama.cpp's Q8_0 row; empty: none
    /// Neither F16 nor Q8_0 file: one llama.cpp row on engineGguf as it is (a small fixture).
    bool llamaOnEngineFile = false;
    int threads = 2;
    int vocabSize = 0;  // of the HF config; the remote targets' prompt ids stay below it
};

/// Finds the article's inputs at `path`: a folder laid out as tools/article-table's (hf/, f32.gguf, f16.gguf,
/// q8_0.gguf), or a GGUF file with an hf/ folder beside it (one llama.cpp row on that file). False with *error
/// when neither.
bool findArticleModels(const QString& path, ArticleModels* out, QString* error);

/// The article's targets: this engine at FP32, BF16 and INT8; HF Transformers at FP32 and BF16
/// (tools/hf-serve/hf_serve.py, launched); llama.cpp at F16 and Q8_0 (tools/llamacpp-yardstick/serve.mjs,
/// launched). Servers come from toolsDir (WB_TOOLS_DIR, else the source tree's tools/); Python from WB_HF_PYTHON
/// (else /usr/bin/python3) with WB_HF_PYTHONPATH (else ~/.cache/hf-reference/site when present) and, for FP32,
/// WB_HF_BLAS_DIR on LD_LIBRARY_PATH (tools/hf-serve/README.md: Debian's torch and the reference BLAS).
/// `notes` gets one line per row left out and why.
QList<CompareTargetSpec> articlePresetTargets(const ArticleModels& models, int maxConcurrency, qint64 maxContext,
                                              QStringList* notes = nullptr);
/// Where the launched servers' scripts are: WB_TOOLS_DIR, else the source tree's tools/ when it exists.
QString toolsDir();

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
