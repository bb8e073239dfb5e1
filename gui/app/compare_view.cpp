#include "app/compare_view.h"
#include "app/theme.h"
#include <QAction>
#include <QToolButton>
#include <QMenu>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "bridge/comparison.h"

namespace wbgui {

namespace {

const QColor kColors[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0x2c, 0xa0, 0x2c),
                          QColor(0xd6, 0x27, 0x28), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                          QColor(0xe3, 0x77, 0xc2), QColor(0x7f, 0x7f, 0x7f)};
QColor colorFor(int i) { return kColors[i % int(std::size(kColors))]; }

QList<int> parseLevels(const QString& text) {
    QList<int> out;
    for (const QString& part : text.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts)) {
        bool ok = false;
        const int v = part.toInt(&ok);
        if (ok && v > 0 && !out.contains(v)) out << v;
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool writeText(const QString& path, const QString& text) {
    QSaveFile f(path);
    return f.open(QIODevice::WriteOnly) && f.write(text.toUtf8()) >= 0 && f.commit();
}

QCustomPlot* makePlot(QWidget* parent, const QString& title, const QString& xLabel, const QString& yLabel) {
    auto* plot = new QCustomPlot(parent);
    plot->setMinimumSize(240, 170);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, title, QFont(parent->font().family(), 9, QFont::Bold)));
    plot->xAxis->setLabel(xLabel);
    plot->yAxis->setLabel(yLabel);
    plot->legend->setFont(QFont(parent->font().family(), 7));
    plot->legend->setRowSpacing(0);
    plot->xAxis->setTickLabelFont(QFont(parent->font().family(), 8));
    // The legend goes under the axes, not over the curves: targets' names are long and curves fill the corners.
    auto* legendRow = new QCPLayoutGrid;
    plot->plotLayout()->addElement(2, 0, legendRow);
    legendRow->setMargins(QMargins(4, 0, 4, 4));
    plot->axisRect()->insetLayout()->take(plot->legend);
    legendRow->addElement(0, 0, plot->legend);
    plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
    plot->legend->setWrap(2);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->plotLayout()->setRowStretchFactor(2, 0.001);
    theme::stylePlot(plot);
    return plot;
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent), m_runner(new CompareRunner(this)) {
    setObjectName(QStringLiteral("compareView"));

    auto* top = new QHBoxLayout;
    top->addWidget(buildTargetsBox(), 3);
    top->addWidget(buildWorkloadBox(), 2);

    m_runButton = new QPushButton(tr("Run comparison"));
    m_runButton->setObjectName(QStringLiteral("compareRun"));
    m_cancelButton = new QPushButton(tr("Cancel"));
    m_cancelButton->setObjectName(QStringLiteral("compareCancel"));
    m_cancelButton->setEnabled(false);
    m_progress = new QProgressBar;
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_progress->setMaximumWidth(220);
    m_statusLabel = new QLabel(tr("Add targets, choose a workload, run."));
    m_statusLabel->setObjectName(QStringLiteral("compareStatus"));
    // Long messages (an error's text) must not set the window's minimum width: they are cut, whole in the tooltip.
    m_statusLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_statusLabel->setMinimumWidth(120);
    auto* load = new QPushButton(tr("Open…"));
    auto* save = new QPushButton(tr("Save…"));
    // One Export button with a menu: three buttons made the window too wide for a laptop.
    auto* exportButton = new QToolButton;
    exportButton->setObjectName(QStringLiteral("compareExport"));
    exportButton->setText(tr("Export"));
    exportButton->setPopupMode(QToolButton::InstantPopup);
    exportButton->setToolButtonStyle(Qt::ToolButtonTextOnly);
    auto* exportMenu = new QMenu(exportButton);
    QAction* png = exportMenu->addAction(tr("Charts and table as PNG…"));
    QAction* csv = exportMenu->addAction(tr("Every level as CSV…"));
    QAction* md = exportMenu->addAction(tr("The article's table as Markdown…"));
    exportButton->setMenu(exportMenu);
    auto* clear = new QPushButton(tr("Clear"));
    auto* runBar = new QHBoxLayout;
    runBar->addWidget(m_runButton);
    runBar->addWidget(m_cancelButton);
    runBar->addWidget(m_progress);
    runBar->addWidget(m_statusLabel, 1);
    for (QWidget* b : std::initializer_list<QWidget*>{load, save, exportButton, clear}) runBar->addWidget(b);

    // The results: the article's table, then the charts.
    m_resultsPane = new QWidget;
    m_results = new QTableWidget(0, 8);
    m_results->setObjectName(QStringLiteral("compareResults"));
    m_results->setHorizontalHeaderLabels({tr("framework / target"), tr("TTFT (ms)"), tr("tokens/s"),
                                          tr("max stable concurrency"), tr("memory (GB)"), tr("P99 (ms)"),
                                          tr("KV peak"), tr("status")});
    m_results->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_results->horizontalHeader()->setSectionResizeMode(ColStatus, QHeaderView::Stretch);
    m_results->verticalHeader()->setVisible(false);
    m_results->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_results->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_results->setWordWrap(false);
    m_results->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    m_results->setMinimumHeight(6 * (fontMetrics().height() + 8));

    m_metric = new QComboBox;
    m_metric->addItems({tr("TTFT mean (ms)"), tr("tokens/s"), tr("max stable concurrency"), tr("memory (GB)"),
                        tr("P99 (ms)")});
    m_cdfLevel = new QComboBox;
    m_plots = {makePlot(this, tr("Per target"), QString(), tr("TTFT mean (ms)")),
               makePlot(this, tr("End-to-end latency CDF"), tr("ms"), tr("fraction of requests")),
               makePlot(this, tr("Throughput against concurrency"), tr("concurrent requests"), tr("output tok/s"))};
    auto* chartBar = new QHBoxLayout;
    chartBar->addWidget(new QLabel(tr("Bars:")));
    chartBar->addWidget(m_metric);
    chartBar->addStretch(1);
    chartBar->addWidget(new QLabel(tr("CDF at concurrency:")));
    chartBar->addWidget(m_cdfLevel);
    auto* charts = new QHBoxLayout;
    for (auto* p : m_plots) charts->addWidget(p, 1);
    auto* chartsBox = new QWidget;
    auto* chartsLayout = new QVBoxLayout(chartsBox);
    chartsLayout->setContentsMargins(0, 0, 0, 0);
    chartsLayout->addLayout(chartBar);
    chartsLayout->addLayout(charts, 1);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(m_results);
    split->addWidget(chartsBox);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    auto* resultsLayout = new QVBoxLayout(m_resultsPane);
    resultsLayout->setContentsMargins(0, 0, 0, 0);
    resultsLayout->addWidget(split);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addLayout(runBar);
    layout->addWidget(m_resultsPane, 1);

    connect(m_runButton, &QPushButton::clicked, this, [this] { run(); });
    connect(m_cancelButton, &QPushButton::clicked, this, &CompareView::cancel);
    connect(m_metric, &QComboBox::currentIndexChanged, this, &CompareView::replot);
    connect(m_cdfLevel, &QComboBox::currentIndexChanged, this, &CompareView::replot);
    connect(clear, &QPushButton::clicked, this, &CompareView::clearResults);
    connect(load, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open comparison"), {}, tr("Comparison (*.json)"));
        QString error;
        if (!f.isEmpty() && !loadFile(f, &error)) QMessageBox::warning(this, tr("Open comparison"), error);
    });
    connect(save, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save comparison"), "comparison.json",
                                                       tr("Comparison (*.json)"));
        QString error;
        if (!f.isEmpty() && !saveFile(f, &error)) QMessageBox::warning(this, tr("Save comparison"), error);
    });
    connect(png, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export PNG"), "comparison.png", "PNG (*.png)");
        if (!f.isEmpty()) exportPng(f);
    });
    connect(csv, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export CSV"), "comparison.csv", "CSV (*.csv)");
        if (!f.isEmpty()) exportCsv(f);
    });
    connect(md, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export Markdown"), "comparison.md",
                                                       "Markdown (*.md)");
        if (!f.isEmpty()) exportMarkdown(f);
    });

    connect(m_runner, &CompareRunner::targetStarted, this, [this](int i, const QString& label) {
        const int row = m_runBase + i;
        QJsonObject placeholder{{"label", label}};
        setRow(row, placeholder, tr("starting…"));
    });
    connect(m_runner, &CompareRunner::targetUpdated, this, [this](int i, const QByteArray& json, bool done) {
        const QJsonObject run = QJsonDocument::fromJson(json).object();
        const ComparisonRow r = comparisonRow(run);
        QString status;
        if (!r.error.isEmpty()) status = tr("unreachable / failed: %1").arg(r.error);
        else if (!done) status = tr("running…");
        else if (run.value("cancelled").toBool()) status = tr("cancelled (partial)");
        else if (!r.hasNumbers) status = tr("every request failed: %1").arg(r.firstError);
        else if (r.failedRequests) status = tr("done, %1 failed requests: %2").arg(r.failedRequests).arg(r.firstError);
        else status = tr("done");
        setRow(m_runBase + i, run, status);
        replot();
    });
    connect(m_runner, &CompareRunner::progress, this, [this](int done, int total, const QString& what) {
        m_progress->setRange(0, total);
        m_progress->setValue(done);
        m_statusLabel->setText(what);
    });
    connect(m_runner, &CompareRunner::finished, this, [this](bool cancelled) {
        for (int row = m_runBase; row < m_runs.size(); ++row)
            if (m_status[row] == tr("waiting")) setRow(row, m_runs[row], tr("not run (cancelled)"));
        setRunning(false);
        m_statusLabel->setText(cancelled ? tr("Cancelled.") : tr("Done."));
        if (!cancelled) m_progress->setValue(m_progress->maximum());
        saveState();
        Q_EMIT runFinished(cancelled);
    });

    refreshPluginHint();
    replot();
}

QWidget* CompareView::buildTargetsBox() {
    auto* box = new QGroupBox(tr("Targets"));
    m_targets = new QTableWidget(0, 3);
    m_targets->setObjectName(QStringLiteral("compareTargets"));
    m_targets->setHorizontalHeaderLabels({tr("target"), tr("model / URL"), tr("how")});
    m_targets->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_targets->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    m_targets->verticalHeader()->setVisible(false);
    m_targets->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_targets->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_targets->setMaximumHeight(110);

    m_modelPath = new QLineEdit;
    m_modelPath->setObjectName(QStringLiteral("compareModelPath"));
    m_modelPath->setPlaceholderText(tr("model file or folder (.gguf, Hugging Face folder)"));
    auto* browse = new QPushButton(tr("…"));
    browse->setMaximumWidth(30);
    m_precision = new QComboBox;
    m_precision->setObjectName(QStringLiteral("comparePrecision"));
    m_precision->addItems({"fp16", "bf16", "int8", "fp32", "native"});
    auto* addEngine = new QPushButton(tr("Add engine"));
    addEngine->setObjectName(QStringLiteral("compareAddEngine"));

    m_plugin = new QComboBox;
    m_plugin->setObjectName(QStringLiteral("comparePlugin"));
    for (const auto& p : m_runner->plugins()) m_plugin->addItem(p.name, p.id);
    m_url = new QLineEdit;
    m_url->setObjectName(QStringLiteral("compareUrl"));
    m_url->setPlaceholderText(QStringLiteral("http://127.0.0.1:8000/v1"));
    m_remoteModel = new QLineEdit;
    m_remoteModel->setObjectName(QStringLiteral("compareRemoteModel"));
    m_remoteModel->setPlaceholderText(tr("model id (empty: the server's first)"));
    m_vocab = new QSpinBox;
    m_vocab->setObjectName(QStringLiteral("compareVocab"));
    m_vocab->setRange(0, 10000000);
    m_vocab->setPrefix(tr("ids < "));
    m_vocab->setSpecialValueText(tr("ids < 32000"));
    m_vocab->setToolTip(tr("Prompts are random token ids below the server model's vocabulary size"));
    auto* addRemote = new QPushButton(tr("Add remote"));
    addRemote->setObjectName(QStringLiteral("compareAddRemote"));
    auto* remove = new QPushButton(tr("Remove"));
    auto* article = new QPushButton(tr("Article targets"));
    article->setObjectName(QStringLiteral("compareArticleTargets"));
    article->setToolTip(tr("Replaces the list with the article's targets for the model above (a folder with hf/, "
                           "f32.gguf, f16.gguf, q8_0.gguf as tools/article-table makes, or a GGUF with hf/ beside "
                           "it): this engine at FP32/BF16/INT8, HF Transformers at FP32/BF16 (tools/hf-serve) and "
                           "llama.cpp at F16/Q8_0 (tools/llamacpp-yardstick), each server started and stopped by "
                           "the run; and the article's workload"));
    m_pluginHint = new QLabel;
    m_pluginHint->setWordWrap(true);
    m_pluginHint->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QFont small = m_pluginHint->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    m_pluginHint->setFont(small);

    auto* engineRow = new QHBoxLayout;
    engineRow->addWidget(new QLabel(tr("This engine:")));
    engineRow->addWidget(m_modelPath, 1);
    engineRow->addWidget(browse);
    engineRow->addWidget(m_precision);
    engineRow->addWidget(addEngine);
    // Two rows: on one, the URL was squeezed to a few characters ("0/v1") in a laptop-sized window.
    m_url->setMinimumWidth(220);
    auto* remoteRow = new QHBoxLayout;
    remoteRow->addWidget(new QLabel(tr("Remote:")));
    remoteRow->addWidget(m_plugin);
    remoteRow->addWidget(m_url, 1);
    auto* remoteRow2 = new QHBoxLayout;
    remoteRow2->addWidget(m_remoteModel, 1);
    remoteRow2->addWidget(m_vocab);
    remoteRow2->addWidget(addRemote);
    remoteRow2->addWidget(remove);
    remoteRow2->addWidget(article);
    auto* layout = new QVBoxLayout(box);
    layout->addWidget(m_targets);
    layout->addLayout(engineRow);
    layout->addLayout(remoteRow);
    layout->addLayout(remoteRow2);
    layout->addWidget(m_pluginHint);

    connect(browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Model"), {}, tr("Models (*.gguf *.json);;All (*)"));
        if (!f.isEmpty()) m_modelPath->setText(f);
    });
    connect(addEngine, &QPushButton::clicked, this, &CompareView::addEngineTarget);
    connect(addRemote, &QPushButton::clicked, this, &CompareView::addRemoteTarget);
    connect(remove, &QPushButton::clicked, this, &CompareView::removeSelectedTargets);
    connect(article, &QPushButton::clicked, this, [this] { applyArticleTargets(); });
    connect(m_plugin, &QComboBox::currentIndexChanged, this, &CompareView::refreshPluginHint);
    return box;
}

QWidget* CompareView::buildWorkloadBox() {
    auto* box = new QGroupBox(tr("Workload"));
    m_input = new QSpinBox;
    m_input->setObjectName(QStringLiteral("compareInput"));
    m_input->setRange(1, 1 << 20);
    m_input->setValue(128);
    m_output = new QSpinBox;
    m_output->setObjectName(QStringLiteral("compareOutput"));
    m_output->setRange(1, 1 << 20);
    m_output->setValue(64);
    m_concurrency = new QLineEdit(QStringLiteral("1, 4, 8"));
    m_concurrency->setObjectName(QStringLiteral("compareConcurrency"));
    m_requests = new QSpinBox;
    m_requests->setObjectName(QStringLiteral("compareRequests"));
    m_requests->setRange(0, 100000);
    m_requests->setSpecialValueText(tr("auto"));
    m_requests->setToolTip(tr("auto: max(4 × concurrency, 8) requests at each level, as wb bench"));
    m_rate = new QDoubleSpinBox;
    m_rate->setObjectName(QStringLiteral("compareRate"));
    m_rate->setRange(0, 10000);
    m_rate->setDecimals(2);
    m_rate->setSpecialValueText(tr("closed loop"));
    m_rate->setSuffix(tr(" req/s"));
    m_rate->setToolTip(tr("Poisson arrivals at this rate; closed loop: each finished request starts the next"));
    m_p99Limit = new QDoubleSpinBox;
    m_p99Limit->setRange(0, 1e7);
    m_p99Limit->setDecimals(0);
    m_p99Limit->setSpecialValueText(tr("none"));
    m_p99Limit->setToolTip(tr("none: a level is stable when no request failed; else also P99 within this limit"));
    m_p99Limit->setSuffix(tr(" ms"));
    // The phone agent's workload: a screenshot (or several) before each request's prompt.
    m_images = new QLineEdit;
    m_images->setObjectName(QStringLiteral("compareImages"));
    m_images->setPlaceholderText(tr("none: text only. Add a screenshot for the phone agent's workload"));
    m_images->setToolTip(tr("PNG/JPEG files (separated by ;) sent before each request's prompt, as one chat "
                            "message; engine targets need a vision model, servers get them on the chat endpoint"));
    auto* addImage = new QPushButton(tr("Add…"));
    addImage->setObjectName(QStringLiteral("compareAddImage"));
    m_sameImage = new QCheckBox(tr("same bytes each request"));
    m_sameImage->setObjectName(QStringLiteral("compareSameImage"));
    m_sameImage->setToolTip(tr("Off (default): each request's images get a few new pixels, so no image cache "
                               "answers and every request pays for its vision encoding. On: the cached path."));
    auto* imageRow = new QHBoxLayout;
    imageRow->addWidget(m_images, 1);
    imageRow->addWidget(addImage);
    connect(addImage, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(this, tr("Workload images"), QString(),
                                                                tr("Images (*.png *.jpg *.jpeg)"));
        if (files.isEmpty()) return;
        QStringList all = workload().images;
        all.append(files);
        m_images->setText(all.join(QStringLiteral(";")));
    });
    auto* preset = new QPushButton(tr("Article preset: 128 in / 64 out, concurrency 1, 4, 8"));
    preset->setObjectName(QStringLiteral("comparePreset"));
    preset->setToolTip(tr("The article's workload; \"Article targets\" (beside the target list) also sets its targets"));
    auto* tokens = new QHBoxLayout;
    tokens->addWidget(m_input);
    tokens->addWidget(new QLabel(tr("in /")));
    tokens->addWidget(m_output);
    tokens->addWidget(new QLabel(tr("out")));
    auto* form = new QFormLayout(box);
    form->addRow(tr("Tokens:"), tokens);
    form->addRow(tr("Concurrency:"), m_concurrency);
    form->addRow(tr("Requests per level:"), m_requests);
    form->addRow(tr("Arrivals:"), m_rate);
    form->addRow(tr("P99 limit:"), m_p99Limit);
    form->addRow(tr("Images:"), imageRow);
    form->addRow(QString(), m_sameImage);
    form->addRow(preset);
    connect(preset, &QPushButton::clicked, this, &CompareView::applyArticlePreset);
    return box;
}

void CompareView::applyArticlePreset() {
    m_input->setValue(128);
    m_output->setValue(64);
    m_concurrency->setText(QStringLiteral("1, 4, 8"));
    m_rate->setValue(0);
}

int CompareView::applyArticleTargets(const QString& models) {
    applyArticlePreset();
    const QString path = models.isEmpty() ? m_modelPath->text().trimmed() : models;
    ArticleModels found;
    QString why;
    if (path.isEmpty() || !findArticleModels(path, &found, &why)) {
        m_statusLabel->setText(path.isEmpty() ? tr("Article workload set; give the model (a folder with hf/ and "
                                                   "f32.gguf, or a GGUF with hf/ beside it) for its targets.")
                                              : tr("Article workload set; no targets: %1").arg(why));
        m_statusLabel->setToolTip(m_statusLabel->text());
        saveState();
        return 0;
    }
    QStringList notes;
    const CompareWorkload w = workload();
    int maxConc = 1;
    for (int c : w.concurrency) maxConc = std::max(maxConc, c);
    m_specs = articlePresetTargets(found, maxConc, w.inputTokens + w.outputTokens, &notes);
    refreshTargetsTable();
    m_statusLabel->setText(tr("Article preset: %n target(s)", nullptr, int(m_specs.size())) +
                           (notes.isEmpty() ? QString() : QStringLiteral(" (") + notes.join(QStringLiteral("; ")) + ")"));
    m_statusLabel->setToolTip(m_statusLabel->text());
    saveState();
    return int(m_specs.size());
}

CompareWorkload CompareView::workload() const {
    CompareWorkload w;
    w.inputTokens = m_input->value();
    w.outputTokens = m_output->value();
    w.concurrency = parseLevels(m_concurrency->text());
    w.requestsPerLevel = m_requests->value();
    w.requestRate = m_rate->value();
    w.p99LimitMs = m_p99Limit->value();
    for (const QString& path : m_images->text().split(QLatin1Char(';'), Qt::SkipEmptyParts))
        if (!path.trimmed().isEmpty()) w.images.append(path.trimmed());
    w.sameImages = m_sameImage->isChecked();
    return w;
}

void CompareView::setDefaultModelPath(const QString& path) {
    if (m_modelPath->text().isEmpty()) m_modelPath->setText(path);
}

void CompareView::addEngineTarget() {
    if (m_modelPath->text().trimmed().isEmpty()) {
        m_statusLabel->setText(tr("Give the model to load for an engine target."));
        return;
    }
    CompareTargetSpec s;
    s.kind = CompareTargetSpec::Kind::Engine;
    s.modelPath = m_modelPath->text().trimmed();
    s.precision = m_precision->currentText();
    m_specs << s;
    refreshTargetsTable();
    saveState();
}

void CompareView::addRemoteTarget() {
    if (m_plugin->count() == 0) {
        m_statusLabel->setText(tr("No target plugins were found (see the plugin hint)."));
        return;
    }
    CompareTargetSpec s;
    s.kind = CompareTargetSpec::Kind::Remote;
    s.pluginId = m_plugin->currentData().toString();
    s.url = m_url->text().trimmed();
    if (s.url.isEmpty()) s.url = m_url->placeholderText();
    s.modelName = m_remoteModel->text().trimmed();
    s.vocabSize = m_vocab->value();
    m_specs << s;
    refreshTargetsTable();
    saveState();
}

void CompareView::removeSelectedTargets() {
    QList<int> rows;
    for (const auto& idx : m_targets->selectionModel()->selectedRows()) rows << idx.row();
    std::sort(rows.rbegin(), rows.rend());
    for (int r : rows) m_specs.removeAt(r);
    refreshTargetsTable();
    saveState();
}

void CompareView::refreshTargetsTable() {
    m_targets->setRowCount(int(m_specs.size()));
    for (int i = 0; i < m_specs.size(); ++i) {
        const CompareTargetSpec& s = m_specs[i];
        const bool engine = s.kind == CompareTargetSpec::Kind::Engine;
        QString pluginName = s.pluginId;
        for (const auto& p : m_runner->plugins())
            if (p.id == s.pluginId) pluginName = p.name;
        const bool launched = !engine && !s.launchCommand.isEmpty();
        // A launched server's model is the argument after --model (both preset servers take one).
        const qsizetype mi = s.launchCommand.indexOf(QStringLiteral("--model"));
        const QString launchedModel = mi >= 0 && mi + 1 < s.launchCommand.size() ? s.launchCommand[mi + 1] : QString();
        m_targets->setItem(i, 0, new QTableWidgetItem(!s.label.isEmpty() ? s.label
                                                      : engine ? tr("workbench (%1)").arg(s.precision) : pluginName));
        m_targets->setItem(i, 1, new QTableWidgetItem(engine     ? QFileInfo(s.modelPath).fileName()
                                                      : launched ? QFileInfo(launchedModel).fileName()
                                                                 : s.url + (s.modelName.isEmpty() ? "" : " · " + s.modelName)));
        m_targets->setItem(i, 2, new QTableWidgetItem(engine     ? tr("in process, own engine")
                                                      : launched ? tr("plugin %1, server started by the run").arg(s.pluginId)
                                                                 : tr("plugin %1").arg(s.pluginId)));
        m_targets->item(i, 1)->setToolTip(engine ? s.modelPath : launched ? s.launchCommand.join(QLatin1Char(' ')) : s.url);
    }
}

void CompareView::refreshPluginHint() {
    const QStringList problems = m_runner->pluginProblems();
    QString hint;
    const QString id = m_plugin->currentData().toString();
    for (const auto& p : m_runner->plugins()) {
        if (p.id != id) continue;
        m_url->setPlaceholderText(p.defaultUrl);
        hint = tr("<b>%1</b> %2 · launch: <code>%3</code><br>memory: %4 · KV: %5")
                   .arg(p.name.toHtmlEscaped(), p.version, p.launchTemplate.toHtmlEscaped(),
                        p.memoryReport.toHtmlEscaped(), p.kvReport.toHtmlEscaped());
    }
    if (m_runner->plugins().isEmpty()) hint = tr("No target plugins found (WB_PLUGIN_PATH, or plugins/ beside bin/).");
    if (!problems.isEmpty())
        hint += tr("<br><span style='color:#b00'>skipped: %1</span>").arg(problems.join("; ").toHtmlEscaped());
    m_pluginHint->setText(hint);
}

bool CompareView::isRunning() const { return m_runner->isRunning(); }

bool CompareView::run() {
    const CompareWorkload w = workload();
    if (m_specs.isEmpty()) {
        m_statusLabel->setText(tr("Add at least one target."));
        return false;
    }
    if (w.concurrency.isEmpty()) {
        m_statusLabel->setText(tr("Give the concurrency levels, e.g. 1, 4, 8."));
        return false;
    }
    m_runBase = int(m_runs.size());
    for (int i = 0; i < m_specs.size(); ++i) {
        const CompareTargetSpec& s = m_specs[i];
        const QString label = !s.label.isEmpty() ? s.label
                              : s.kind == CompareTargetSpec::Kind::Engine ? tr("workbench (%1)").arg(s.precision)
                                                                           : s.pluginId + " @ " + s.url;
        setRow(m_runBase + i, QJsonObject{{"label", label}}, tr("waiting"));
    }
    if (!m_runner->start(m_specs, w)) return false;
    m_progress->setRange(0, w.requestsPerTarget() * int(m_specs.size()));
    m_progress->setValue(0);
    setRunning(true);
    m_statusLabel->setText(tr("Running %n target(s)…", nullptr, int(m_specs.size())));  // not the last run's "Done."
    return true;
}

void CompareView::cancel() {
    m_runner->cancel();
    m_statusLabel->setText(tr("Cancelling: waiting for the requests in flight…"));
    m_cancelButton->setEnabled(false);
}

void CompareView::setRunning(bool running) {
    m_runButton->setEnabled(!running);
    m_cancelButton->setEnabled(running);
}

void CompareView::setRow(int row, const QJsonObject& run, const QString& status) {
    while (m_runs.size() <= row) {
        m_runs << QJsonObject();
        m_status << QString();
    }
    m_runs[row] = run;
    m_status[row] = status;
    refreshRow(row);
}

void CompareView::refreshRow(int row) {
    if (m_results->rowCount() <= row) m_results->setRowCount(row + 1);
    const QJsonObject& run = m_runs[row];
    const ComparisonRow r = comparisonRow(run);
    const bool placeholder = !run.contains("results") && r.error.isEmpty();
    // A run cancelled before any level finished has no numbers, and no error either: "—", not "error".
    const bool cancelledEmpty = run.value("cancelled").toBool() && r.error.isEmpty() && !r.hasNumbers &&
                                run.value("results").toArray().isEmpty();
    const bool notRun = m_status.value(row) == tr("not run (cancelled)");
    const QString none = placeholder ? (notRun ? QStringLiteral("—") : QStringLiteral("…"))
                         : cancelledEmpty ? QStringLiteral("—")
                         : r.error.isEmpty() ? tr("error")
                                             : tr("unreachable");
    auto set = [&](int col, const QString& text, const QString& tip = {}) {
        auto* item = new QTableWidgetItem(text);
        if (col != ColTarget && col != ColStatus) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        if (!tip.isEmpty()) item->setToolTip(tip);
        if (!r.error.isEmpty()) item->setForeground(theme::errorText());
        m_results->setItem(row, col, item);
    };
    set(ColTarget, r.label, run.value("url").toString(run.value("model").toString()));
    set(ColTtft, r.hasNumbers ? QStringLiteral("%1 ± %2").arg(r.ttftMeanMs, 0, 'f', 1).arg(r.ttftSdMs, 0, 'f', 1) : none);
    set(ColTokensPerSec, r.hasNumbers ? QString::number(r.tokensPerSecond, 'f', 1) : none);
    // "≥8": every level tried held, so the limit lies above and was not measured.
    set(ColMaxConc,
        r.hasNumbers ? (r.maxConcurrency <= 0 ? tr("none")
                        : r.concurrencyLimitFound ? QString::number(r.maxConcurrency)
                                                  : QStringLiteral("≥%1").arg(r.maxConcurrency))
                     : none,
        r.hasNumbers && r.maxConcurrency > 0 && !r.concurrencyLimitFound
                ? tr("Every concurrency level tried held (no errors, P99 within the limit when one is set): the "
                     "limit lies above %1, untested.").arg(r.maxConcurrency)
                : QString());
    // Memory and KV use are only what was measured or reported: "n/a" otherwise, with the reason as tooltip.
    set(ColMemory, r.peakBytes ? QString::number(*r.peakBytes / 1e9, 'f', 3) : (placeholder ? QStringLiteral("…") : QStringLiteral("n/a")),
        r.memorySource);
    set(ColP99, r.hasNumbers ? QString::number(r.p99Ms, 'f', 1) : none);
    set(ColKv, r.kvPeak ? QStringLiteral("%1%").arg(*r.kvPeak * 100, 0, 'f', 1)
                        : (placeholder ? QStringLiteral("…") : QStringLiteral("n/a")),
        r.kvSource);
    set(ColStatus, m_status[row], m_status[row]);
}

QJsonObject CompareView::comparison() const {
    QJsonObject doc = emptyComparison();
    QJsonArray runs;
    // Runs with a record of their own (results or an error): placeholders of targets that never ran are not data.
    for (const auto& r : m_runs)
        if (r.contains("results") || r.contains("error")) runs.append(r);
    doc["runs"] = runs;
    return doc;
}

void CompareView::clearResults() {
    if (isRunning()) return;
    m_runs.clear();
    m_status.clear();
    m_results->setRowCount(0);
    replot();
}

bool CompareView::loadFile(const QString& path, QString* error) {
    if (isRunning()) {
        if (error) *error = tr("a comparison is running");
        return false;
    }
    QJsonObject doc;
    if (!loadComparison(path, &doc, error)) return false;
    clearResults();
    int row = 0;
    for (const auto& v : doc.value("runs").toArray()) {
        const QJsonObject run = v.toObject();
        const ComparisonRow r = comparisonRow(run);
        QString status = tr("from %1").arg(QFileInfo(path).fileName());
        if (!r.error.isEmpty()) status = tr("unreachable / failed: %1").arg(r.error);
        else if (r.failedRequests) status += tr(", %1 failed requests: %2").arg(r.failedRequests).arg(r.firstError);
        setRow(row++, run, status);
    }
    m_statusLabel->setText(tr("Opened %1 (%2 runs).").arg(QFileInfo(path).fileName()).arg(row));
    replot();
    saveState();
    return true;
}

namespace {
QJsonObject specToJson(const CompareTargetSpec& s) {
    QJsonObject o{{"kind", s.kind == CompareTargetSpec::Kind::Engine ? "engine" : "remote"}, {"label", s.label}};
    if (s.kind == CompareTargetSpec::Kind::Engine) {
        o["model_path"] = s.modelPath;
        o["precision"] = s.precision;
        o["threads"] = s.numThreads;
    } else {
        o["plugin"] = s.pluginId;
        o["url"] = s.url;
        o["model"] = s.modelName;
        o["vocab_size"] = s.vocabSize;  // the API key stays in memory only
        if (!s.launchCommand.isEmpty()) {
            o["launch"] = QJsonArray::fromStringList(s.launchCommand);
            o["launch_env"] = QJsonArray::fromStringList(s.launchEnv);
            o["launch_dir"] = s.launchWorkDir;
            o["launch_timeout_s"] = s.launchTimeoutS;
        }
        if (!s.tokenizerPath.isEmpty()) o["tokenizer"] = s.tokenizerPath;
    }
    return o;
}

CompareTargetSpec specFromJson(const QJsonObject& o) {
    CompareTargetSpec s;
    s.kind = o.value("kind").toString() == QLatin1String("remote") ? CompareTargetSpec::Kind::Remote
                                                                    : CompareTargetSpec::Kind::Engine;
    s.label = o.value("label").toString();
    s.modelPath = o.value("model_path").toString();
    s.precision = o.value("precision").toString(s.precision);
    s.numThreads = o.value("threads").toInt();
    s.pluginId = o.value("plugin").toString(s.pluginId);
    s.url = o.value("url").toString();
    s.modelName = o.value("model").toString();
    s.vocabSize = o.value("vocab_size").toInt();
    for (const QJsonValue& v : o.value("launch").toArray()) s.launchCommand << v.toString();
    for (const QJsonValue& v : o.value("launch_env").toArray()) s.launchEnv << v.toString();
    s.launchWorkDir = o.value("launch_dir").toString();
    s.launchTimeoutS = o.value("launch_timeout_s").toInt(s.launchTimeoutS);
    s.tokenizerPath = o.value("tokenizer").toString();
    return s;
}
}  // namespace

void CompareView::changeEvent(QEvent* event) {
    // Qt sends ApplicationPaletteChange to windows; the widgets inside see their palette change.
    if (event->type() == QEvent::ApplicationPaletteChange || event->type() == QEvent::PaletteChange)
        for (QCustomPlot* p : m_plots) theme::stylePlot(p);  // light <-> dark
    QWidget::changeEvent(event);
}

void CompareView::setWorkload(const CompareWorkload& w) {
    m_input->setValue(int(w.inputTokens));
    m_output->setValue(int(w.outputTokens));
    QStringList levels;
    for (int c : w.concurrency) levels << QString::number(c);
    m_concurrency->setText(levels.join(QStringLiteral(", ")));
    m_requests->setValue(w.requestsPerLevel);
    m_rate->setValue(w.requestRate);
    m_p99Limit->setValue(w.p99LimitMs);
    m_images->setText(w.images.join(QLatin1Char(';')));
    m_sameImage->setChecked(w.sameImages);
}

void CompareView::setStateDir(const QString& dir) {
    m_stateDir = dir;
    restoreState();
}

void CompareView::saveState() const {
    if (m_stateDir.isEmpty() || m_restoring) return;
    QJsonArray specs;
    for (const CompareTargetSpec& s : m_specs) specs.append(specToJson(s));
    const CompareWorkload w = workload();
    QJsonArray levels;
    for (int c : w.concurrency) levels.append(c);
    const QJsonObject state{
        {"format", "workbench-compare-state"}, {"version", 1}, {"targets", specs},
        {"workload", QJsonObject{{"input_tokens", w.inputTokens}, {"output_tokens", w.outputTokens},
                                 {"concurrency", levels}, {"requests_per_level", w.requestsPerLevel},
                                 {"request_rate", w.requestRate}, {"p99_limit_ms", w.p99LimitMs},
                                 {"images", QJsonArray::fromStringList(w.images)}, {"same_images", w.sameImages}}}};
    QSaveFile f(m_stateDir + QStringLiteral("/compare-state.json"));
    if (f.open(QIODevice::WriteOnly)) {
        f.write(QJsonDocument(state).toJson(QJsonDocument::Indented));
        f.commit();
    }
    // The results as a comparison file (the format wb bench --append-to writes), only when there are some.
    if (!m_runs.isEmpty()) saveComparison(m_stateDir + QStringLiteral("/compare-last.json"), comparison(), nullptr);
}

void CompareView::restoreState() {
    if (m_stateDir.isEmpty()) return;
    m_restoring = true;
    QFile f(m_stateDir + QStringLiteral("/compare-state.json"));
    if (f.open(QIODevice::ReadOnly)) {
        const QJsonObject state = QJsonDocument::fromJson(f.readAll()).object();
        if (state.value("format").toString() == QLatin1String("workbench-compare-state")) {
            m_specs.clear();
            for (const QJsonValue& v : state.value("targets").toArray()) m_specs << specFromJson(v.toObject());
            refreshTargetsTable();
            const QJsonObject wj = state.value("workload").toObject();
            CompareWorkload w;
            w.inputTokens = wj.value("input_tokens").toInteger(w.inputTokens);
            w.outputTokens = wj.value("output_tokens").toInteger(w.outputTokens);
            QList<int> levels;
            for (const QJsonValue& c : wj.value("concurrency").toArray()) levels << c.toInt();
            if (!levels.isEmpty()) w.concurrency = levels;
            w.requestsPerLevel = wj.value("requests_per_level").toInt();
            w.requestRate = wj.value("request_rate").toDouble();
            w.p99LimitMs = wj.value("p99_limit_ms").toDouble();
            for (const QJsonValue& i : wj.value("images").toArray()) w.images << i.toString();
            w.sameImages = wj.value("same_images").toBool();
            setWorkload(w);
        }
    }
    const QString last = m_stateDir + QStringLiteral("/compare-last.json");
    if (QFileInfo::exists(last)) {
        QString error;
        if (loadFile(last, &error))
            m_statusLabel->setText(tr("The last session's results (%1 runs).").arg(m_runs.size()));
        else
            m_statusLabel->setText(tr("The last session's results could not be read: %1").arg(error));
    }
    m_restoring = false;
}

bool CompareView::saveFile(const QString& path, QString* error) const {
    return saveComparison(path, comparison(), error);
}

bool CompareView::exportPng(const QString& path) {
    return m_resultsPane->grab().save(path, "PNG");
}

bool CompareView::exportCsv(const QString& path) const { return writeText(path, comparisonCsv(comparison())); }

bool CompareView::exportMarkdown(const QString& path) const {
    return writeText(path, comparisonMarkdown(comparison()));
}

void CompareView::replot() {
    QList<int> rows;
    for (int i = 0; i < m_runs.size(); ++i) rows << i;

    // Bars: one per target for the chosen metric; n/a and unreachable targets keep their tick, with no bar.
    QCustomPlot* bars = m_plots[0];
    bars->clearPlottables();
    const int metric = m_metric->currentIndex();
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    QVector<double> keys, values, errs;
    double top = 0;
    for (int i : rows) {
        const ComparisonRow r = comparisonRow(m_runs[i]);
        // Two short lines ("workbench" / "(fp16)") so several targets fit without rotated labels.
        QStringList lines;
        const int paren = int(r.label.indexOf(" ("));
        for (QString part : paren > 0 ? QStringList{r.label.left(paren), r.label.mid(paren + 1)} : QStringList{r.label})
            lines << (part.size() > 14 ? part.left(13) + "…" : part);
        QString tick = lines.join('\n');
        std::optional<double> v;
        double err = 0;
        if (r.hasNumbers) {
            switch (metric) {
            case MetricTtft: v = r.ttftMeanMs; err = r.ttftSdMs; break;
            case MetricTokensPerSec: v = r.tokensPerSecond; break;
            case MetricMaxConc: v = r.maxConcurrency; break;
            case MetricP99: v = r.p99Ms; break;
            default: break;
            }
        }
        if (metric == MetricMemory && r.peakBytes) v = *r.peakBytes / 1e9;
        if (!v) tick = lines.first() + (r.error.isEmpty() ? "\n(n/a)" : "\n(unreachable)");
        ticker->addTick(i + 1, tick);
        if (v) {
            keys << i + 1;
            values << *v;
            errs << err;
            top = std::max(top, *v + err);
        }
    }
    auto* b = new QCPBars(bars->xAxis, bars->yAxis);
    b->setWidth(0.6);
    b->setPen(Qt::NoPen);
    b->setBrush(colorFor(0));
    b->setData(keys, values, true);
    if (metric == MetricTtft && !keys.isEmpty()) {
        auto* e = new QCPErrorBars(bars->xAxis, bars->yAxis);
        e->setDataPlottable(b);
        e->setData(errs);
    }
    bars->xAxis->setTicker(ticker);
    bars->xAxis->setRange(0.4, std::max<double>(1.6, double(rows.size()) + 0.6));
    bars->yAxis->setRange(0, top > 0 ? top * 1.15 : 1);
    bars->yAxis->setLabel(m_metric->currentText());
    bars->replot();

    // Latency CDF at one concurrency level: drawn from the raw per-request latencies, never from percentiles.
    QSet<int> levelSet;
    for (int i : rows)
        for (const auto& p : throughputByConcurrency(m_runs[i])) levelSet.insert(p.first);
    QList<int> levels = levelSet.values();
    std::sort(levels.begin(), levels.end());
    const int chosen = m_cdfLevel->currentData().isValid() ? m_cdfLevel->currentData().toInt()
                                                           : (levels.isEmpty() ? 0 : levels.first());
    {
        QSignalBlocker block(m_cdfLevel);
        m_cdfLevel->clear();
        for (int l : levels) m_cdfLevel->addItem(QString::number(l), l);
        const int idx = m_cdfLevel->findData(chosen);
        m_cdfLevel->setCurrentIndex(idx >= 0 ? idx : 0);
    }
    const int level = m_cdfLevel->currentData().toInt();
    QCustomPlot* cdf = m_plots[1];
    QCustomPlot* tput = m_plots[2];
    cdf->clearGraphs();
    tput->clearGraphs();
    double maxMs = 0, maxTput = 0, maxConc = 1;
    for (int i : rows) {
        const ComparisonRow r = comparisonRow(m_runs[i]);
        const QVector<double> s = latencySamples(m_runs[i], level);
        if (!s.isEmpty()) {
            QCPGraph* g = cdf->addGraph();
            g->setName(r.label);
            g->setPen(QPen(colorFor(i), 2));
            g->setLineStyle(QCPGraph::lsStepLeft);
            QVector<double> x{0}, y{0};
            for (int k = 0; k < s.size(); ++k) {
                x << s[k];
                y << double(k + 1) / double(s.size());
            }
            g->setData(x, y, true);
            maxMs = std::max(maxMs, s.last());
        }
        const auto pts = throughputByConcurrency(m_runs[i]);
        if (!pts.isEmpty()) {
            QCPGraph* g = tput->addGraph();
            g->setName(r.label);
            g->setPen(QPen(colorFor(i), 2));
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
            QVector<double> x, y;
            for (const auto& p : pts) {
                x << p.first;
                y << p.second;
                maxTput = std::max(maxTput, p.second);
                maxConc = std::max(maxConc, double(p.first));
            }
            g->setData(x, y, true);
        }
    }
    cdf->xAxis->setRange(0, maxMs > 0 ? maxMs * 1.05 : 1);
    cdf->yAxis->setRange(0, 1.02);
    cdf->legend->setVisible(cdf->graphCount() > 0);
    cdf->replot();
    auto fixed = QSharedPointer<QCPAxisTickerFixed>::create();
    fixed->setTickStep(1);
    fixed->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    tput->xAxis->setTicker(fixed);
    tput->xAxis->setRange(0, maxConc + 1);
    tput->yAxis->setRange(0, maxTput > 0 ? maxTput * 1.15 : 1);
    tput->legend->setVisible(tput->graphCount() > 0);
    tput->replot();
}

}  // namespace wbgui
