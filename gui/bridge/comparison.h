// Comparison files in the GUI: the JSON that `wb bench --append-to` writes ({"format":"wb-bench-comparison",
// "version":1,"runs":[...]}), read, written and exported through engine/bench/report.h so the CLI and the GUI can
// never disagree about the format or the table's rules.
#pragma once

#include <QJsonArray>
#include <QJsonObject>
#include <QString>
#include <QVector>
#include <optional>

namespace wbgui {

/// One row of the article's table for a run, by the rules comparisonMarkdown prints under its table: TTFT and
/// P99 (end to end) at the lowest concurrency that served requests, tokens/s the best level, max concurrency the
/// highest stable level, memory only where measured.
struct ComparisonRow {
    QString label;
    QString error;         // unreachable, failed to load, ...: no numbers at all
    bool hasNumbers = false;
    double ttftMeanMs = 0, ttftSdMs = 0, tokensPerSecond = 0, p99Ms = 0;
    int maxConcurrency = 0;
    bool concurrencyLimitFound = false;  // a tried level above maxConcurrency failed; else the limit is untested
    std::optional<double> peakBytes;
    QString memorySource;
    std::optional<double> kvPeak;  // 0..1, remote targets that report it
    QString kvSource;
    int failedRequests = 0;
    QString firstError;
};
ComparisonRow comparisonRow(const QJsonObject& run);

/// One (concurrency, tokens/s) point per level that served requests.
QVector<QPair<int, double>> throughputByConcurrency(const QJsonObject& run);
/// The per-request end-to-end latencies at a level (empty when the file predates raw samples).
QVector<double> latencySamples(const QJsonObject& run, int concurrency);

QJsonObject emptyComparison();
/// Reads and checks a comparison file (as wb bench --report does).
bool loadComparison(const QString& path, QJsonObject* doc, QString* error);
bool saveComparison(const QString& path, const QJsonObject& doc, QString* error);
QString comparisonMarkdown(const QJsonObject& doc);
QString comparisonCsv(const QJsonObject& doc);

}  // namespace wbgui
