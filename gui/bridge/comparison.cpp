#include "bridge/comparison.h"

#include <QFile>
#include <QJsonDocument>
#include <QSaveFile>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "api/bench_report.h"

namespace wbgui {

namespace {
nlohmann::json toJson(const QJsonObject& o) {
    return nlohmann::json::parse(QJsonDocument(o).toJson(QJsonDocument::Compact).toStdString(), nullptr, false);
}
bool served(const QJsonObject& level) { return level.value("requests").toInt() > level.value("errors").toInt(); }
}  // namespace

ComparisonRow comparisonRow(const QJsonObject& run) {
    ComparisonRow row;
    row.label = run.value("label").toString();
    if (row.label.isEmpty()) row.label = run.value("engine").toString(run.value("target").toString("?"));
    row.error = run.value("error").toString();
    const QJsonObject mem = run.value("memory").toObject();
    if (mem.value("peak_bytes").isDouble()) row.peakBytes = mem.value("peak_bytes").toDouble();
    row.memorySource = mem.value("source").toString();
    if (mem.value("kv_usage_peak").isDouble()) row.kvPeak = mem.value("kv_usage_peak").toDouble();
    row.kvSource = mem.value("kv_source").toString();
    if (!row.error.isEmpty()) return row;
    const QJsonArray results = run.value("results").toArray();
    QJsonObject low;
    for (const auto& v : results) {
        const QJsonObject r = v.toObject();
        row.failedRequests += r.value("errors").toInt();
        if (row.firstError.isEmpty()) row.firstError = r.value("first_error").toString();
        if (!served(r)) continue;
        row.tokensPerSecond = std::max(row.tokensPerSecond, r.value("output_tokens_per_s").toDouble());
        if (low.isEmpty() || r.value("concurrency").toInt() < low.value("concurrency").toInt()) low = r;
    }
    if (low.isEmpty()) return row;
    row.hasNumbers = true;
    row.ttftMeanMs = low.value("ttft_ms").toObject().value("mean").toDouble();
    row.ttftSdMs = low.value("ttft_ms").toObject().value("stddev").toDouble();
    row.p99Ms = low.value("e2e_ms").toObject().value("p99").toDouble();
    row.maxConcurrency = run.value("max_stable_concurrency").toInt();
    for (const QJsonValue& r : run.value("results").toArray())
        if (r.toObject().value("concurrency").toInt() > row.maxConcurrency) row.concurrencyLimitFound = true;
    return row;
}

QVector<QPair<int, double>> throughputByConcurrency(const QJsonObject& run) {
    QVector<QPair<int, double>> out;
    for (const auto& v : run.value("results").toArray()) {
        const QJsonObject r = v.toObject();
        if (served(r)) out.append({r.value("concurrency").toInt(), r.value("output_tokens_per_s").toDouble()});
    }
    std::sort(out.begin(), out.end());
    return out;
}

QVector<double> latencySamples(const QJsonObject& run, int concurrency) {
    QVector<double> out;
    for (const auto& v : run.value("results").toArray()) {
        const QJsonObject r = v.toObject();
        if (r.value("concurrency").toInt() != concurrency) continue;
        for (const auto& s : r.value("e2e_samples_ms").toArray()) out.append(s.toDouble());
    }
    std::sort(out.begin(), out.end());
    return out;
}

QJsonObject emptyComparison() {
    return QJsonObject{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", QJsonArray()}};
}

bool loadComparison(const QString& path, QJsonObject* doc, QString* error) {
    auto r = wb::loadComparison(path.toStdString());
    if (!r) {
        if (error) *error = QString::fromStdString(r.error().message);
        return false;
    }
    *doc = QJsonDocument::fromJson(QByteArray::fromStdString(r->dump())).object();
    return true;
}

bool saveComparison(const QString& path, const QJsonObject& doc, QString* error) {
    // QSaveFile renames into place: an interrupted save never leaves half a comparison file (as appendRun).
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly) || f.write(QJsonDocument(doc).toJson(QJsonDocument::Indented)) < 0 ||
        !f.commit()) {
        if (error) *error = f.errorString();
        return false;
    }
    return true;
}

QString comparisonMarkdown(const QJsonObject& doc) {
    return QString::fromStdString(wb::comparisonMarkdown(toJson(doc)));
}

QString comparisonCsv(const QJsonObject& doc) { return QString::fromStdString(wb::comparisonCsv(toJson(doc))); }

}  // namespace wbgui
