#include "app/perf_charts_view.h"

#include <QSaveFile>
#include <QDateTime>
#include <QFile>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QTextStream>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "app/theme.h"
#include "bridge/engine_bridge.h"

namespace wbgui {

namespace {
constexpr int kMaxSamples = 36000;  // an hour at 10 Hz
constexpr double kWindowSec = 120;  // what the time charts show
constexpr double kGapSec = 2.0;     // samples come 8 times a second while a model is loaded
const QColor kColors[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0x2c, 0xa0, 0x2c)};
enum Chart { TokensPerSec, Ttft, InterToken, KvUse, Batch, Memory };
}  // namespace

PerfChartsView::PerfChartsView(EngineBridge* bridge, QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("perfCharts"));
    m_plots = {
        makePlot(tr("Tokens/s"), tr("tok/s"), {tr("generated")}),
        makePlot(tr("Time to first token per request"), tr("ms"), {tr("TTFT")}),
        makePlot(tr("Inter-token latency"), tr("ms"), {tr("decode step")}),
        makePlot(tr("KV-cache use"), tr("%"), {tr("blocks used")}),
        makePlot(tr("Batch size"), tr("sequences"), {tr("per step (max)")}),
        makePlot(tr("Memory (CPU)"), tr("MiB"), {tr("process RSS"), tr("weights"), tr("KV cache")}),
    };
    m_plots[Ttft]->xAxis->setLabel(tr("request"));
    m_plots[Ttft]->graph(0)->setLineStyle(QCPGraph::lsImpulse);
    m_plots[Ttft]->graph(0)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    m_plots[KvUse]->yAxis->setRange(0, 100);
    // A batch holds whole sequences: integer ticks only.
    auto whole = QSharedPointer<QCPAxisTickerFixed>::create();
    whole->setTickStep(1.0);
    whole->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_plots[Batch]->yAxis->setTicker(whole);
    // The time charts read the time of day (the samples' clock starts with the app, which says nothing to a user).
    for (Chart c : {TokensPerSec, InterToken, KvUse, Batch, Memory}) {
        auto clock = QSharedPointer<QCPAxisTickerDateTime>::create();
        clock->setDateTimeFormat(QStringLiteral("HH:mm:ss"));
        clock->setDateTimeSpec(Qt::LocalTime);
        m_plots[c]->xAxis->setTicker(clock);
        m_plots[c]->xAxis->setLabel(tr("time of day"));
    }

    m_pause = new QPushButton(tr("Pause"));
    m_pause->setCheckable(true);
    auto* png = new QPushButton(tr("Export PNG…"));
    auto* csv = new QPushButton(tr("Export CSV…"));
    auto* clearButton = new QPushButton(tr("Clear"));
    m_summary = new QLabel(tr("Load a model: the charts sample the engine 8 times a second."));
    auto* bar = new QHBoxLayout;
    bar->addWidget(m_summary, 1);
    bar->addWidget(m_pause);
    bar->addWidget(clearButton);
    bar->addWidget(png);
    bar->addWidget(csv);
    auto* grid = new QGridLayout;
    for (int i = 0; i < m_plots.size(); ++i) grid->addWidget(m_plots[i], i / 2, i % 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(bar);
    layout->addLayout(grid, 1);

    connect(m_pause, &QPushButton::toggled, this, &PerfChartsView::setPaused);
    connect(clearButton, &QPushButton::clicked, this, &PerfChartsView::clear);
    connect(png, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export charts"), "workbench-charts.png", "PNG (*.png)");
        if (!f.isEmpty()) exportPng(f);
    });
    connect(csv, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export samples"), "workbench-stats.csv", "CSV (*.csv)");
        if (!f.isEmpty()) exportCsv(f);
    });
    connect(bridge, &EngineBridge::statsSampled, this, &PerfChartsView::addSample);
    connect(bridge, &EngineBridge::finished, this, [this](quint64, const GenerationResult& r) { addRequest(r); });
}

QCustomPlot* PerfChartsView::makePlot(const QString& title, const QString& yLabel, const QStringList& series) {
    auto* plot = new QCustomPlot;
    plot->setMinimumSize(260, 160);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, title, QFont(font().family(), 9, QFont::Bold)));
    plot->xAxis->setLabel(tr("time of day"));
    plot->yAxis->setLabel(yLabel);
    for (int i = 0; i < series.size(); ++i) {
        QCPGraph* g = plot->addGraph();
        g->setName(series[i]);
        g->setPen(QPen(kColors[i % 3], 1.5));
    }
    if (series.size() > 1) {
        // Below the chart, in one row: inside the axis rect it covered the lines.
        plot->legend->setVisible(true);
        plot->legend->setFont(QFont(font().family(), 7));
        plot->axisRect()->insetLayout()->take(plot->legend);
        plot->plotLayout()->addElement(2, 0, plot->legend);
        plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
        plot->legend->setBorderPen(Qt::NoPen);
        plot->plotLayout()->setRowStretchFactor(2, 0.001);
    }
    plot->setNoAntialiasingOnDrag(true);
    theme::stylePlot(plot);
    // Values on hover: the nearest point of each graph at the cursor's x.
    connect(plot, &QCustomPlot::mouseMove, plot, [plot](QMouseEvent* e) {
        const double x = plot->xAxis->pixelToCoord(e->position().x());
        QStringList lines;
        for (int i = 0; i < plot->graphCount(); ++i) {
            QCPGraph* g = plot->graph(i);
            if (g->data()->isEmpty()) continue;
            auto it = g->data()->findBegin(x, true);
            if (it == g->data()->constEnd()) continue;
            if (std::isnan(it->value)) continue;
            const bool clock = plot->xAxis->label() == QObject::tr("time of day");
            const QString at = clock ? QDateTime::fromMSecsSinceEpoch(qint64(it->key * 1000)).toString("HH:mm:ss.z")
                                     : QString::number(it->key, 'f', 0);
            lines.append(QStringLiteral("%1: %2 @ %3").arg(g->name()).arg(it->value, 0, 'f', 2).arg(at));
        }
        if (!lines.isEmpty()) QToolTip::showText(e->globalPosition().toPoint(), lines.join('\n'), plot);
    });
    return plot;
}

void PerfChartsView::changeEvent(QEvent* event) {
    // Qt sends ApplicationPaletteChange to windows; the widgets inside see their palette change.
    if (event->type() == QEvent::ApplicationPaletteChange || event->type() == QEvent::PaletteChange)
        for (QCustomPlot* p : m_plots) theme::stylePlot(p);  // light <-> dark
    QWidget::changeEvent(event);
}

int PerfChartsView::pointCount(int index) const {
    return index >= 0 && index < m_plots.size() ? m_plots[index]->graph(0)->dataCount() : 0;
}

void PerfChartsView::setPaused(bool paused) {
    m_paused = paused;
    QSignalBlocker b(m_pause);
    m_pause->setChecked(paused);
    m_pause->setText(paused ? tr("Resume") : tr("Pause"));
}

void PerfChartsView::clear() {
    m_samples.clear();
    m_requests.clear();
    for (QCustomPlot* p : m_plots)
        for (int i = 0; i < p->graphCount(); ++i) p->graph(i)->data()->clear();
    replotAll();
}

void PerfChartsView::addSample(const StatsSample& s) {
    if (m_paused) return;
    if (m_epochOffset < 0) m_epochOffset = QDateTime::currentMSecsSinceEpoch() / 1000.0 - s.atSec;
    const double t = wallClockOf(s.atSec);
    // No samples for a while (the engine idle, or the charts paused): the lines break there rather than draw a
    // slope across time nothing was measured in.
    if (!m_samples.isEmpty() && s.atSec - m_samples.last().atSec > kGapSec) {
        const double gapAt = wallClockOf(m_samples.last().atSec) + 0.001;
        for (Chart c : {TokensPerSec, InterToken, KvUse, Batch, Memory})
            for (int i = 0; i < m_plots[c]->graphCount(); ++i)
                m_plots[c]->graph(i)->addData(gapAt, std::numeric_limits<double>::quiet_NaN());
    }
    if (m_samples.size() >= kMaxSamples) m_samples.removeFirst();
    m_samples.append(s);
    const double mib = 1024.0 * 1024.0;
    m_plots[TokensPerSec]->graph(0)->addData(t, s.tokensPerSecond);
    if (s.interTokenMs > 0) m_plots[InterToken]->graph(0)->addData(t, s.interTokenMs);
    m_plots[KvUse]->graph(0)->addData(t, s.kvUsePercent);
    m_plots[Batch]->graph(0)->addData(t, s.batchSize);
    m_plots[Memory]->graph(0)->addData(t, s.processRssBytes / mib);
    m_plots[Memory]->graph(1)->addData(t, s.weightBytes / mib);
    m_plots[Memory]->graph(2)->addData(t, s.kvCacheBytes / mib);
    for (Chart c : {TokensPerSec, InterToken, KvUse, Batch, Memory})
        for (int i = 0; i < m_plots[c]->graphCount(); ++i)
            m_plots[c]->graph(i)->data()->removeBefore(t - kMaxSamples / 8.0);
    m_summary->setText(tr("%1 · %2 tok/s · KV %3/%4 blocks · %5 running, %6 waiting · %7 tokens generated")
                           .arg(s.device)
                           .arg(s.tokensPerSecond, 0, 'f', 1)
                           .arg(s.kvBlocksUsed)
                           .arg(s.kvBlocksTotal)
                           .arg(s.numRunning)
                           .arg(s.numWaiting)
                           .arg(s.totalGeneratedTokens));
    // Per device (weights, KV share, memory): a second line when the model spans several, else the tooltip.
    if (s.devices.size() > 1) m_summary->setText(m_summary->text() + QLatin1Char('\n') + s.devices.join(QStringLiteral(" · ")));
    m_summary->setToolTip(s.devices.join(QLatin1Char('\n')));
    replotAll();
}

void PerfChartsView::addRequest(const GenerationResult& r) {
    if (m_paused) return;
    m_requests.append(r);
    m_plots[Ttft]->graph(0)->addData(m_requests.size(), r.ttftMs);
    replotAll();
}

void PerfChartsView::replotAll() {
    const double now = m_samples.isEmpty() ? QDateTime::currentMSecsSinceEpoch() / 1000.0
                                           : wallClockOf(m_samples.last().atSec);
    for (int i = 0; i < m_plots.size(); ++i) {
        QCustomPlot* p = m_plots[i];
        if (i == Ttft) {
            p->xAxis->setRange(0, qMax<int>(5, m_requests.size() + 1));
            bool found = false;
            const QCPRange r = p->graph(0)->getValueRange(found);
            p->yAxis->setRange(0, found ? qMax(1.0, r.upper * 1.15) : 1.0);
        } else {
            p->xAxis->setRange(now - kWindowSec, now);  // the last two minutes
            if (i != KvUse) {
                double upper = 1;
                for (int g = 0; g < p->graphCount(); ++g) {
                    bool found = false;
                    const QCPRange r = p->graph(g)->getValueRange(found, QCP::sdBoth, p->xAxis->range());
                    if (found) upper = qMax(upper, r.upper * 1.15);
                }
                p->yAxis->setRange(0, upper);
            }
        }
        if (p->isVisible()) p->replot(QCustomPlot::rpQueuedReplot);  // hidden charts draw when shown
    }
}

bool PerfChartsView::exportPng(const QString& path) {
    for (QCustomPlot* p : m_plots) p->replot(QCustomPlot::rpImmediateRefresh);
    QSaveFile f(path);  // renamed into place: never half a PNG where a good one was
    return f.open(QIODevice::WriteOnly) && grab().save(&f, "PNG") && f.commit();
}

bool PerfChartsView::exportCsv(const QString& path) const {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
    QTextStream out(&f);
    out << "time_s,tokens_per_s,inter_token_ms,batch_size,kv_blocks_used,kv_blocks_total,kv_use_percent,"
           "rss_bytes,weight_bytes,kv_cache_bytes,running,waiting,total_generated_tokens\n";
    for (const StatsSample& s : m_samples) {
        out << QString::number(s.atSec, 'f', 3) << ',' << s.tokensPerSecond << ',' << s.interTokenMs << ','
            << s.batchSize << ',' << s.kvBlocksUsed << ',' << s.kvBlocksTotal << ',' << s.kvUsePercent << ','
            << s.processRssBytes << ',' << s.weightBytes << ',' << s.kvCacheBytes << ',' << s.numRunning << ','
            << s.numWaiting << ',' << s.totalGeneratedTokens << '\n';
    }
    out.flush();
    if (!f.commit()) return false;
    QString reqPath = path;
    if (reqPath.endsWith(QLatin1String(".csv"))) reqPath.chop(4);
    QSaveFile rf(reqPath + QStringLiteral("-requests.csv"));
    if (!rf.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
    QTextStream rout(&rf);
    rout << "request,id,stop_reason,prompt_tokens,completion_tokens,queue_ms,ttft_ms,e2e_ms,mean_inter_token_ms,"
            "tokens_per_s\n";
    for (int i = 0; i < m_requests.size(); ++i) {
        const GenerationResult& r = m_requests[i];
        rout << i + 1 << ',' << r.id << ',' << r.stopReason << ',' << r.promptTokens << ',' << r.completionTokens << ','
             << r.queueMs << ',' << r.ttftMs << ',' << r.e2eMs << ',' << r.meanInterTokenMs << ','
             << r.tokensPerSecond() << '\n';
    }
    rout.flush();
    return rf.commit();
}

}  // namespace wbgui
