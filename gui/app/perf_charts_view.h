// The Performance view: QCustomPlot charts fed by the bridge's stats samples (5-10 Hz, never per token):
// tokens/s, TTFT per request, inter-token latency, KV-cache use, batch size and memory. Values on hover,
// pause, export to PNG and CSV.
#pragma once

#include <QVector>
#include <QWidget>

#include "bridge/bridge_types.h"

class QCustomPlot;
class QLabel;
class QPushButton;

namespace wbgui {

class EngineBridge;

class PerfChartsView : public QWidget {
    Q_OBJECT
public:
    explicit PerfChartsView(EngineBridge* bridge, QWidget* parent = nullptr);

    void setPaused(bool paused);
    bool isPaused() const { return m_paused; }
    int sampleCount() const { return m_samples.size(); }
    int requestCount() const { return m_requests.size(); }
    /// Points currently drawn on chart `index` (0 tokens/s … 5 memory), first graph.
    int pointCount(int index) const;
    QList<QCustomPlot*> plots() const { return m_plots; }
    /// Wall-clock seconds (since the epoch) of a sample's atSec: the time axes show the time of day.
    double wallClockOf(double atSec) const { return m_epochOffset + atSec; }

    bool exportPng(const QString& path);
    /// Writes the samples to `path` and the per-request numbers to `<path without .csv>-requests.csv`.
    bool exportCsv(const QString& path) const;
    void clear();

    void addSample(const StatsSample& s);
    void addRequest(const GenerationResult& r);

protected:
    void changeEvent(QEvent* event) override;

private:
    QCustomPlot* makePlot(const QString& title, const QString& yLabel, const QStringList& series);
    void replotAll();

    bool m_paused = false;
    double m_epochOffset = -1;  // wall clock minus the samples' clock, set by the first sample
    QVector<StatsSample> m_samples;
    QVector<GenerationResult> m_requests;
    QList<QCustomPlot*> m_plots;
    QPushButton* m_pause;
    QLabel* m_summary;
};

}  // namespace wbgui
