#include "bridge/model_info.h"

#include <QObject>


#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonArray>
#include <QSet>
#include <unistd.h>

#include "api/devices.h"
#include "api/engine.h"
#include "api/model_info.h"

namespace wbgui {

double GenerationResult::tokensPerSecond() const {
    const double decodeMs = e2eMs - ttftMs;
    if (completionTokens > 1 && decodeMs > 0) return double(completionTokens - 1) * 1000.0 / decodeMs;
    return e2eMs > 0 ? double(completionTokens) * 1000.0 / e2eMs : 0;
}

QString GenerationResult::statsLine() const {
    // Ended before its first token (cancelled, the model unloaded, an error): the reason is the whole line.
    if (completionTokens == 0 && stopReason != QLatin1String("stop") && stopReason != QLatin1String("length"))
        return QObject::tr("no answer: %1").arg(stopReason.isEmpty() ? QObject::tr("ended") : stopReason);
    QString line = QStringLiteral("TTFT %1 ms · %2 tok/s · %3 tokens")
                       .arg(ttftMs, 0, 'f', 1)
                       .arg(tokensPerSecond(), 0, 'f', 1)
                       .arg(completionTokens);
    if (stopReason != QLatin1String("stop")) line += QStringLiteral(" · ") + stopReason;
    return line;
}

QString ModelCard::displayName() const {
    const QFileInfo fi(path);
    return name.isEmpty() ? fi.fileName() : name + QStringLiteral(" (") + fi.fileName() + QLatin1Char(')');
}

QString humanBytes(qint64 bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double b = double(bytes);
    int u = 0;
    while (std::abs(b) >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return QString::number(b, 'f', u == 0 ? 0 : (b < 10 ? 2 : 1)) + QLatin1Char(' ') + QLatin1String(units[u]);
}

static qint64 sizeOnDisk(const QString& path) {
    const QFileInfo fi(path);
    if (fi.isFile()) return fi.size();
    qint64 total = 0;
    QDirIterator it(path, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) total += QFileInfo(it.next()).size();
    return total;
}

// Cards come from headers alone (wb::inspectModel): a GLM-4.1V folder is planned from config.json, no safetensors
// file is opened, so a 20 GB checkpoint is planned before any of it is read. The engine's registry decides what
// the model is; the card only turns its answer into Qt types.
ModelCard readModelCard(const QString& path) {
    ModelCard card;
    card.path = path;
    if (!QFileInfo::exists(path)) {
        card.error = path + QStringLiteral(": no such file or folder");
        return card;
    }
    auto s = wb::inspectModel(path.toStdString());
    if (!s) {
        card.error = QString::fromStdString(s.error().message);
        // The engine's message usually names the file already; make sure it always does.
        if (!card.error.contains(QFileInfo(path).fileName())) card.error = path + QStringLiteral(": ") + card.error;
        return card;
    }
    const wb::ModelConfig& c = s->config;
    card.format = QString::fromStdString(s->format);
    card.architecture = QString::fromStdString(s->architecture);
    if (s->family != "glm") card.name = QString::fromStdString(s->name);  // GLM cards are named by their folder
    card.numParameters = s->numParameters;
    card.visionParameters = s->visionParameters;
    card.hasVision = s->hasVision;
    card.numLayers = c.numLayers;
    card.hiddenSize = c.dim;
    card.ffnSize = c.ffnDim;
    card.numHeads = c.numHeads;
    card.numKvHeads = c.numKvHeads;
    card.vocabSize = c.vocabSize;
    card.contextLength = c.maxContext;
    card.tokenizer = QString::fromStdString(s->tokenizerKind);
    for (const auto& [k, v] : s->tensorCountByDtype) card.tensorDtypes.insert(QString::fromStdString(k), v);
    for (const auto& [k, v] : s->weightBytesByPrecision)
        card.weightBytesByPrecision.insert(QString::fromStdString(k), v);
    // Planned from config.json without torch_dtype, "native" is the files' size (matrices are kept as stored).
    if (!card.weightBytesByPrecision.contains(QStringLiteral("native"))) {
        qint64 files = 0;
        const QDir dir(path);
        for (const QFileInfo& fi : dir.entryInfoList({QStringLiteral("*.safetensors")}, QDir::Files)) files += fi.size();
        card.weightBytesByPrecision.insert(QStringLiteral("native"), files);
    }
    card.kvBytesPerToken = s->kvBytesPerToken;
    if (const wb::ModelShardPlan* two = s->shardPlan(2)) {
        for (const auto& [k, v] : two->weightBytesByPrecision)
            card.weightBytesPerGpuTp2.insert(QString::fromStdString(k), v);
        card.kvBytesPerTokenPerGpuTp2 = two->kvBytesPerToken;
    }
    card.sizeOnDiskBytes = sizeOnDisk(path);
    return card;
}

MemoryPlan planMemory(const ModelCard& card, const QString& precision, qint64 contextLength, int numSequences,
                      qint64 availableBytes) {
    MemoryPlan plan;
    plan.precision = precision;
    plan.contextLength = contextLength > 0 ? qMin(contextLength, card.contextLength) : card.contextLength;
    plan.numSequences = qMax(1, numSequences);
    plan.weightBytes = card.weightBytesByPrecision.value(precision, card.weightBytesByPrecision.value("native"));
    // The engine's auto rule on the CPU: an f16 cache (half the bytes of the card's f32 figure) for long contexts.
    const bool f16Kv =
            wb::resolveKvCacheType(wb::KvCacheType::Auto, plan.contextLength, false) == wb::KvCacheType::F16;
    plan.kvCacheType = f16Kv ? QStringLiteral("f16") : QStringLiteral("f32");
    plan.kvCacheBytes = card.kvBytesPerToken / (f16Kv ? 2 : 1) * plan.contextLength * plan.numSequences;
    // The step scratch the model grows to (activations of a full 512-token step, f32) plus one row of logits
    // per sequence: the engine's default per-step token budget bounds it.
    const qint64 stepTokens = 512;
    const qint64 ffn = card.ffnSize > 0 ? card.ffnSize : card.hiddenSize * 4;
    plan.workspaceBytes = stepTokens * (6 * card.hiddenSize + 3 * ffn) * 4 + plan.numSequences * card.vocabSize * 4;
    plan.availableBytes = availableBytes;
    if (!card.weightBytesPerGpuTp2.isEmpty()) {
        plan.perGpuTp2WeightBytes =
                card.weightBytesPerGpuTp2.value(precision, card.weightBytesPerGpuTp2.value(QStringLiteral("native")));
        plan.perGpuTp2KvCacheBytes = card.kvBytesPerTokenPerGpuTp2 * plan.contextLength * plan.numSequences;
    }
    return plan;
}

ContextChoice suggestContextLength(const ModelCard& card, const QString& precision, int numSequences,
                                   qint64 availableBytes) {
    ContextChoice c;
    if (card.contextLength <= 0) return c;
    const bool phoneAgent = card.architecture == QLatin1String("glm4v");
    c.tokens = phoneAgent ? qMin<qint64>(25'480, card.contextLength) : card.contextLength;
    const QString base = phoneAgent ? QObject::tr("the phone agent's deployment setting (vLLM --max-model-len 25480)")
                                    : QObject::tr("the model's own context");
    if (planMemory(card, precision, c.tokens, numSequences, availableBytes).fits()) {
        c.why = QObject::tr("%1 tokens: %2.").arg(c.tokens).arg(base);
        return c;
    }
    qint64 t = c.tokens;
    while (t > 2048) {
        t = qMax<qint64>(2048, (t / 2) / 256 * 256);
        if (planMemory(card, precision, t, numSequences, availableBytes).fits()) {
            c.why = QObject::tr("%1 tokens: the largest that fits %2 available at %3 with %4 sequences (%5 would be "
                                "%6 tokens).")
                            .arg(t)
                            .arg(humanBytes(availableBytes), precision)
                            .arg(numSequences)
                            .arg(base)
                            .arg(c.tokens);
            c.tokens = t;
            return c;
        }
    }
    c.why = QObject::tr("%1 tokens (%2): the weights alone do not fit %3 available at %4.")
                    .arg(c.tokens)
                    .arg(base, humanBytes(availableBytes), precision);
    return c;
}

qint64 availableMemoryBytes() {
    const qint64 b = wb::hostAvailableMemoryBytes();
    return b > 0 ? b : qint64(4) << 30;
}

qint64 processRssBytes() {
    QFile f(QStringLiteral("/proc/self/statm"));
    if (!f.open(QIODevice::ReadOnly)) return 0;
    const QList<QByteArray> parts = f.readAll().split(' ');
    return parts.size() > 1 ? parts[1].toLongLong() * sysconf(_SC_PAGESIZE) : 0;
}

static bool isHfFolder(const QDir& d) {
    return d.exists(QStringLiteral("config.json")) &&
           !d.entryList({QStringLiteral("*.safetensors")}, QDir::Files).isEmpty();
}

QStringList scanForModels(const QStringList& libraryEntries) {
    QSet<QString> found;
    for (const QString& entry : libraryEntries) {
        const QFileInfo fi(entry);
        if (fi.isFile()) {
            found.insert(fi.absoluteFilePath());
            continue;
        }
        if (!fi.isDir()) continue;
        if (isHfFolder(QDir(entry))) {
            found.insert(fi.absoluteFilePath());
            continue;
        }
        QDirIterator it(entry, QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDirIterator::Subdirectories);
        while (it.hasNext()) {
            const QString p = it.next();
            const QFileInfo sub(p);
            if (QDir(entry).relativeFilePath(p).count(QLatin1Char('/')) > 3) continue;
            // An mmproj*.gguf is the vision half of the text GGUF beside it (llama.cpp's pair): the engine pairs it
            // with that file, whose card counts its vision tower, so it is not a model of its own here.
            const bool mmproj = sub.fileName().startsWith(QLatin1String("mmproj"), Qt::CaseInsensitive);
            if (sub.isFile() && p.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive) && !mmproj) found.insert(p);
            else if (sub.isDir() && isHfFolder(QDir(p))) found.insert(p);
        }
    }
    QStringList out(found.begin(), found.end());
    out.sort();
    return out;
}

QStringList precisionNames() {
    return {QStringLiteral("native"), QStringLiteral("fp32"), QStringLiteral("fp16"), QStringLiteral("bf16"),
            QStringLiteral("int8")};
}

}  // namespace wbgui
