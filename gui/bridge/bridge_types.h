// Qt value types that cross from the engine's threads into the GUI. They are copied through queued
// connections, so they hold plain data only and never point back into the engine.
#pragma once

#include <QList>
#include <QMap>
#include <QMetaType>
#include <QHash>
#include <QString>
#include <QStringList>

namespace wbgui {

/// Sampling and length settings of one chat, as the GUI edits them.
struct SamplingSettings {
    double temperature = 0.8;
    double topP = 0.95;
    int topK = 40;
    double repetitionPenalty = 1.0;
    int maxTokens = 256;
    bool enableThinking = true;
    quint64 seed = 0;  // 0: a fresh seed per request
};

struct ChatTurn {
    QString role;  // system | user | assistant
    QString content;
    QStringList images{};  // image files shown to a vision model before the text (user turns)
};

/// What a finished request reports under its answer.
struct GenerationResult {
    quint64 id = 0;
    QString stopReason;  // stop | length | cancelled | error
    qint64 promptTokens = 0;
    qint64 completionTokens = 0;
    double queueMs = 0;
    double ttftMs = 0;
    double e2eMs = 0;
    double meanInterTokenMs = 0;
    /// Decode rate: tokens after the first over the time after the first.
    double tokensPerSecond() const;
    QString statsLine() const;
};

/// One stats snapshot reduced to the numbers the charts and the status bar draw.
struct StatsSample {
    double atSec = 0;  // since the bridge started sampling
    double tokensPerSecond = 0;
    double interTokenMs = 0;  // mean decode step time since the previous sample; 0 when none ran
    int batchSize = 0;
    qint64 kvBlocksUsed = 0;
    qint64 kvBlocksTotal = 0;
    double kvUsePercent = 0;
    qint64 weightBytes = 0;
    qint64 kvCacheBytes = 0;
    qint64 processRssBytes = 0;
    int numRunning = 0;
    int numWaiting = 0;
    int numPreparing = 0;  // requests whose images are being decoded and encoded
    QString engineState;   // serving | faulted | reloading
    QString faultReason;   // faulted: the device's first sticky error
    quint64 totalGeneratedTokens = 0;
    QString device;
    /// Each live request's state: preparing (images being encoded), waiting, prefill, decode.
    QHash<quint64, QString> requestStates;
    /// Each live request's stage within its state ("vision tower 7/24", "512/3136 prompt tokens") and its age.
    QHash<quint64, QString> requestStages;
    QHash<quint64, double> requestAgeMs;
    /// One line per device (a GPU or a tensor-parallel rank; the host with one device): name, weights, KV, memory.
    QStringList devices;
};

/// A model card: what summarizeModel reads from headers (summarizeGlmFolder: config.json), without loading.
struct ModelCard {
    QString path;
    QString format;
    QString architecture;
    QString name;
    qint64 numParameters = 0;
    qint64 numLayers = 0;
    qint64 hiddenSize = 0;
    qint64 ffnSize = 0;
    qint64 numHeads = 0;
    qint64 numKvHeads = 0;
    qint64 vocabSize = 0;
    qint64 contextLength = 0;
    QString tokenizer;
    QMap<QString, qint64> tensorDtypes;
    QMap<QString, qint64> weightBytesByPrecision;
    qint64 kvBytesPerToken = 0;
    qint64 sizeOnDiskBytes = 0;
    /// GLM-4.1V: the vision tower's share of numParameters; hasVision lets the GUI offer image input.
    bool hasVision = false;
    qint64 visionParameters = 0;
    /// One GPU's share at tensor-parallel degree 2 (GLM cards, planned from config.json); empty when not planned.
    QMap<QString, qint64> weightBytesPerGpuTp2;
    qint64 kvBytesPerTokenPerGpuTp2 = 0;
    QString error;  // non-empty: the file could not be read; names the file and the cause
    bool ok() const { return error.isEmpty(); }
    QString displayName() const;
};

/// Bytes one load will need on the CPU device, before loading.
struct MemoryPlan {
    QString precision;
    qint64 contextLength = 0;
    int numSequences = 1;
    qint64 weightBytes = 0;
    qint64 kvCacheBytes = 0;
    /// What the engine will keep keys and values in on the CPU: "f16" from a long context on (its auto rule,
    /// wb::KvCacheType), else "f32". The per-GPU figures stay f32 (the CUDA kernels' cache).
    QString kvCacheType = QStringLiteral("f32");
    qint64 workspaceBytes = 0;
    qint64 availableBytes = 0;
    /// One GPU at tensor-parallel degree 2: its weights, its KV heads' cache and the same workspace; 0 when the
    /// card has no per-GPU plan (Llama-family cards).
    qint64 perGpuTp2WeightBytes = 0;
    qint64 perGpuTp2KvCacheBytes = 0;
    qint64 perGpuTp2Bytes() const {
        return perGpuTp2WeightBytes > 0 ? perGpuTp2WeightBytes + perGpuTp2KvCacheBytes + workspaceBytes : 0;
    }
    qint64 totalBytes() const { return weightBytes + kvCacheBytes + workspaceBytes; }
    qint64 shortfallBytes() const { return qMax<qint64>(0, totalBytes() - availableBytes); }
    bool fits() const { return shortfallBytes() == 0; }
};

QString humanBytes(qint64 bytes);

}  // namespace wbgui

Q_DECLARE_METATYPE(wbgui::GenerationResult)
Q_DECLARE_METATYPE(wbgui::StatsSample)
Q_DECLARE_METATYPE(wbgui::ModelCard)
