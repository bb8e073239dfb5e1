#include "app/model_manager_view.h"
#include "app/theme.h"

#include "api/devices.h"

#include <QFutureWatcher>

#include <QComboBox>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QThread>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "bridge/engine_bridge.h"
#include "bridge/model_info.h"

namespace wbgui {

static const char* kLibraryKey = "library/entries";

ModelManagerView::ModelManagerView(EngineBridge* bridge, QSettings* settings, QWidget* parent)
    : QWidget(parent), m_bridge(bridge), m_settings(settings),
      m_scanWatcher(new QFutureWatcher<QList<ModelCard>>(this)), m_loadTicker(new QTimer(this)),
      m_loadClock(new QElapsedTimer) {
    setObjectName(QStringLiteral("modelManager"));
    // Library: the folders and files the user added, and what scanning them found.
    auto* libraryBox = new QGroupBox(tr("Library"));
    m_libraryList = new QListWidget;
    m_libraryList->setObjectName(QStringLiteral("libraryList"));
    m_libraryList->setMaximumHeight(90);
    auto* addFolder = new QPushButton(tr("Add folder…"));
    auto* addFile = new QPushButton(tr("Add file…"));
    auto* removeEntry = new QPushButton(tr("Remove"));
    auto* rescanButton = new QPushButton(tr("Rescan"));
    auto* libButtons = new QHBoxLayout;
    for (QPushButton* b : {addFolder, addFile, removeEntry, rescanButton}) libButtons->addWidget(b);
    m_modelList = new QListWidget;
    m_modelList->setObjectName(QStringLiteral("modelList"));
    auto* libLayout = new QVBoxLayout(libraryBox);
    libLayout->addWidget(m_libraryList);
    libLayout->addLayout(libButtons);
    libLayout->addWidget(new QLabel(tr("Models found:")));
    libLayout->addWidget(m_modelList, 1);

    // Card, options, plan and load controls for the selected model.
    m_card = new QLabel;
    m_card->setObjectName(QStringLiteral("modelCard"));
    m_card->setTextFormat(Qt::RichText);
    m_card->setWordWrap(true);
    m_card->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_card->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    auto* cardBox = new QGroupBox(tr("Model card"));
    (new QVBoxLayout(cardBox))->addWidget(m_card);

    m_precision = new QComboBox;
    m_precision->addItems(precisionNames());
    m_threads = new QSpinBox;
    m_threads->setRange(0, qMax(1, QThread::idealThreadCount()) * 2);
    m_threads->setSpecialValueText(tr("auto (one per core)"));
    m_context = new QSpinBox;
    m_context->setRange(0, 1 << 20);
    m_context->setSingleStep(256);
    m_context->setSpecialValueText(tr("model's own"));
    m_sequences = new QSpinBox;
    m_sequences->setRange(1, 256);
    m_sequences->setValue(4);
    auto* options = new QFormLayout;
    options->addRow(tr("Precision"), m_precision);
    m_device = new QComboBox;
    m_device->setObjectName(QStringLiteral("device"));
    m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
    m_device->setToolTip(tr("Looking for GPUs…"));
    m_parallel = new QSpinBox;
    m_parallel->setObjectName(QStringLiteral("parallelDegree"));
    m_parallel->setRange(1, 8);
    m_parallel->setToolTip(tr("Tensor parallel: split the model over this many devices (GPUs, or CPU ranks)"));
    options->addRow(tr("Device"), m_device);
    options->addRow(tr("Devices (tensor parallel)"), m_parallel);
    // Probing loads the CUDA module and asks the driver: off the GUI thread.
    auto* probe = new QFutureWatcher<wb::DeviceReport>(this);
    connect(probe, &QFutureWatcher<wb::DeviceReport>::finished, this, [this, probe] {
        const wb::DeviceReport r = probe->result();
        int gpus = 0;
        QString names;
        for (const wb::DeviceInfo& d : r.devices)
            if (d.kind == wb::DeviceKind::Cuda) {
                ++gpus;
                names += QStringLiteral("\n") + QString::fromStdString(d.name) + QStringLiteral(" (") +
                         humanBytes(d.totalBytes) + QStringLiteral(")");
            }
        if (gpus > 0) m_device->addItem(tr("CUDA (%n GPU(s))", nullptr, gpus), QStringLiteral("cuda"));
        QStringList notes;
        for (const std::string& n : r.notes) notes << QString::fromStdString(n);
        m_device->setToolTip((gpus ? tr("GPUs:") + names : tr("No GPU: ")) + QStringLiteral("\n") +
                             notes.join(QLatin1Char('\n')));
        probe->deleteLater();
    });
    probe->setFuture(QtConcurrent::run([] { return wb::probeDevices(); }));
    options->addRow(tr("Threads"), m_threads);
    options->addRow(tr("Context length"), m_context);
    options->addRow(tr("Parallel sequences"), m_sequences);
    auto* optionsBox = new QGroupBox(tr("Load options"));
    optionsBox->setLayout(options);

    m_plan = new QTableWidget(5, 1);
    m_plan->setObjectName(QStringLiteral("memoryPlan"));
    m_plan->setVerticalHeaderLabels({tr("Weights"), tr("KV cache"), tr("Workspace"), tr("Total"), tr("Available RAM")});
    m_plan->setHorizontalHeaderLabels({tr("CPU")});
    m_plan->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_plan->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_plan->setMaximumHeight(175);
    m_planVerdict = new QLabel;
    m_planVerdict->setObjectName(QStringLiteral("planVerdict"));
    m_planVerdict->setWordWrap(true);
    m_contextNote = new QLabel;
    m_contextNote->setObjectName(QStringLiteral("contextNote"));
    m_contextNote->setWordWrap(true);
    auto* planBox = new QGroupBox(tr("Memory plan"));
    auto* planLayout = new QVBoxLayout(planBox);
    planLayout->addWidget(m_plan);
    planLayout->addWidget(m_contextNote);
    planLayout->addWidget(m_planVerdict);
    m_planPerGpu = new QLabel;
    m_planPerGpu->setObjectName(QStringLiteral("planPerGpu"));
    m_planPerGpu->setWordWrap(true);
    m_planPerGpu->hide();
    planLayout->addWidget(m_planPerGpu);

    m_load = new QPushButton(tr("Load"));
    m_load->setObjectName(QStringLiteral("loadButton"));
    m_cancel = new QPushButton(tr("Cancel"));
    m_cancel->setObjectName(QStringLiteral("cancelLoadButton"));
    m_unload = new QPushButton(tr("Unload"));
    m_unload->setObjectName(QStringLiteral("unloadButton"));
    m_progress = new QProgressBar;
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_progress->setTextVisible(false);
    m_status = new QLabel(tr("No model loaded."));
    m_status->setObjectName(QStringLiteral("loadStatus"));
    m_status->setWordWrap(true);
    m_error = new QLabel;
    m_error->setObjectName(QStringLiteral("loadError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: %1; font-weight: bold;").arg(theme::css(theme::errorText())));
    m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_error->hide();
    auto* loadRow = new QHBoxLayout;
    loadRow->addWidget(m_load);
    loadRow->addWidget(m_cancel);
    loadRow->addWidget(m_unload);
    loadRow->addWidget(m_progress, 1);

    auto* right = new QWidget;
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->addWidget(cardBox, 1);
    auto* mid = new QHBoxLayout;
    mid->addWidget(optionsBox);
    mid->addWidget(planBox);
    rightLayout->addLayout(mid);
    rightLayout->addLayout(loadRow);
    rightLayout->addWidget(m_status);
    rightLayout->addWidget(m_error);

    auto* splitter = new QSplitter;
    splitter->addWidget(libraryBox);
    splitter->addWidget(right);
    splitter->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(splitter);

    for (const QString& e : libraryEntries()) m_libraryList->addItem(e);

    connect(addFolder, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Add a model folder"));
        if (!dir.isEmpty()) addLibraryEntry(dir);
    });
    connect(addFile, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getOpenFileName(this, tr("Add a model file"), QString(),
                                                          tr("GGUF models (*.gguf);;All files (*)"));
        if (!file.isEmpty()) addLibraryEntry(file);
    });
    connect(removeEntry, &QPushButton::clicked, this, [this] {
        if (auto* item = m_libraryList->currentItem()) removeLibraryEntry(item->text());
    });
    connect(rescanButton, &QPushButton::clicked, this, &ModelManagerView::rescan);
    connect(m_scanWatcher, &QFutureWatcher<QList<ModelCard>>::finished, this, &ModelManagerView::onScanDone);
    connect(m_modelList, &QListWidget::currentRowChanged, this, [this] {
        m_contextAuto = true;  // a new model: its own suggestion
        suggestContext();
        // A failed load's message belongs to the model that failed, not to the one selected now.
        if (m_status->text() == tr("Load failed.")) {
            setError(QString());
            m_status->clear();
        }
        showCard();
        updatePlan();
        updateButtons();
    });
    connect(m_precision, &QComboBox::currentTextChanged, this, [this] {
        suggestContext();
        updatePlan();
    });
    connect(m_context, &QSpinBox::valueChanged, this, [this] {
        if (!m_settingContext) {  // the user chose a context: it stays what they chose
            m_contextAuto = false;
            m_contextNote->setText(tr("Context set by hand (0: the model's own)."));
        }
        updatePlan();
    });
    connect(m_sequences, &QSpinBox::valueChanged, this, [this] {
        suggestContext();
        updatePlan();
    });
    connect(m_load, &QPushButton::clicked, this, &ModelManagerView::loadSelected);
    // Enter or a double-click on a model loads it, as the Load button does (when it is enabled).
    connect(m_modelList, &QListWidget::itemActivated, this, [this] {
        if (m_load->isEnabled()) loadSelected();
    });
    connect(m_cancel, &QPushButton::clicked, this, &ModelManagerView::cancelLoad);
    connect(m_unload, &QPushButton::clicked, this, &ModelManagerView::unload);
    connect(m_bridge, &EngineBridge::loadStarted, this, &ModelManagerView::onLoadStarted);
    connect(m_bridge, &EngineBridge::loadFinished, this, &ModelManagerView::onLoadFinished);
    connect(m_bridge, &EngineBridge::loadFailed, this, &ModelManagerView::onLoadFailed);
    connect(m_bridge, &EngineBridge::loadCancelled, this, [this](const QString& path) {
        m_loadTicker->stop();
        m_progress->setRange(0, 1);
        m_progress->setValue(0);
        m_status->setText(tr("Load of %1 cancelled: the engine's result will be discarded when it arrives.")
                              .arg(QFileInfo(path).fileName()));
        updateButtons();
    });
    connect(m_bridge, &EngineBridge::unloaded, this, [this] {
        m_status->setText(tr("Model unloaded."));
        m_progress->setValue(0);  // not "full" any more: nothing is loaded
        updateButtons();
    });
    m_loadTicker->setInterval(200);
    connect(m_loadTicker, &QTimer::timeout, this, [this] {
        m_status->setText(tr("Loading… %1 s").arg(m_loadClock->elapsed() / 1000.0, 0, 'f', 1));
    });
    updateButtons();
    rescan();
}

ModelManagerView::~ModelManagerView() {
    m_scanWatcher->waitForFinished();  // headers only: short, and the scan must not outlive the view
    delete m_loadClock;
}

QStringList ModelManagerView::libraryEntries() const { return m_settings->value(kLibraryKey).toStringList(); }

void ModelManagerView::addLibraryEntry(const QString& path) {
    const QString abs = QFileInfo(path).absoluteFilePath();
    QStringList entries = libraryEntries();
    if (!entries.contains(abs)) {
        entries.append(abs);
        m_settings->setValue(kLibraryKey, entries);
        m_settings->sync();
        m_libraryList->addItem(abs);
    }
    m_checkAfterScan = abs;  // a folder with no model in it gets a word, not silence
    rescan();
}

void ModelManagerView::removeLibraryEntry(const QString& path) {
    QStringList entries = libraryEntries();
    entries.removeAll(path);
    m_settings->setValue(kLibraryKey, entries);
    m_settings->sync();
    for (QListWidgetItem* item : m_libraryList->findItems(path, Qt::MatchExactly)) delete item;
    rescan();
}

bool ModelManagerView::isScanning() const { return m_scanning; }

void ModelManagerView::rescan() {
    if (m_scanWatcher->isRunning()) {
        m_rescanPending = true;
        return;
    }
    m_rescanPending = false;
    m_scanning = true;
    const QStringList entries = libraryEntries();
    m_scanWatcher->setFuture(QtConcurrent::run([entries] {
        QList<ModelCard> cards;
        for (const QString& p : scanForModels(entries)) cards.append(readModelCard(p));
        return cards;
    }));
}

void ModelManagerView::onScanDone() {
    if (m_rescanPending) {
        rescan();
        return;
    }
    // Keep the selection; at the first scan, select the model the last session loaded (and its settings).
    QString keep = selectedCard().path;
    const bool firstScan = !m_firstScanDone;
    m_firstScanDone = true;
    const QString last = m_settings->value(QStringLiteral("model/lastPath")).toString();
    if (keep.isEmpty() && firstScan) keep = last;
    m_cards = m_scanWatcher->result();
    m_scanning = false;
    QSignalBlocker block(m_modelList);
    m_modelList->clear();
    int row = m_cards.isEmpty() ? -1 : 0;
    for (int i = 0; i < m_cards.size(); ++i) {
        const ModelCard& c = m_cards[i];
        auto* item = new QListWidgetItem(c.ok() ? c.displayName() : QFileInfo(c.path).fileName() + tr(" — unreadable"));
        item->setToolTip(c.ok() ? c.path : c.error);
        if (!c.ok()) item->setForeground(theme::errorText());
        m_modelList->addItem(item);
        if (c.path == keep) row = i;
    }
    m_modelList->setCurrentRow(row);
    if (selectedCard().path != keep || !m_contextNote->text().size()) {
        m_contextAuto = true;
        suggestContext();
    }
    const bool lastSelected = firstScan && !last.isEmpty() && selectedCard().path == last;
    if (lastSelected) {
        const QString precision = m_settings->value(QStringLiteral("model/lastPrecision")).toString();
        if (!precision.isEmpty()) m_precision->setCurrentText(precision);
    }
    showCard();
    updatePlan();
    updateButtons();
    if (lastSelected && !m_bridge->isLoaded() && m_bridge->state() == EngineBridge::State::Empty) {
        m_status->setText(tr("Last session: %1 at %2. Press Load (or Enter).")
                              .arg(QFileInfo(last).fileName(), m_precision->currentText()));
        Q_EMIT lastModelSelected(last);
    }
    if (!m_checkAfterScan.isEmpty()) {
        const QString entry = m_checkAfterScan;
        m_checkAfterScan.clear();
        bool found = false;
        for (const ModelCard& c : m_cards) found = found || c.path == entry || c.path.startsWith(entry + QLatin1Char('/'));
        if (!found)
            m_status->setText(tr("No model found in %1: a model is a .gguf file or a folder with config.json and "
                                 "*.safetensors (searched a few levels down).")
                                  .arg(entry));
    }
    Q_EMIT scanFinished();
}

bool ModelManagerView::selectModel(const QString& path) {
    const QString abs = QFileInfo(path).absoluteFilePath();
    for (int i = 0; i < m_cards.size(); ++i) {
        if (m_cards[i].path == abs || m_cards[i].path == path) {
            m_modelList->setCurrentRow(i);
            return true;
        }
    }
    return false;
}

ModelCard ModelManagerView::selectedCard() const {
    const int row = m_modelList->currentRow();
    return row >= 0 && row < m_cards.size() ? m_cards[row] : ModelCard{};
}

void ModelManagerView::setPrecision(const QString& precision) { m_precision->setCurrentText(precision); }
void ModelManagerView::setThreads(int threads) { m_threads->setValue(threads); }

void ModelManagerView::setDevice(const QString& device, int parallelDegree) {
    const int i = m_device->findData(device);
    if (i >= 0) m_device->setCurrentIndex(i);
    m_parallel->setValue(parallelDegree);
}
void ModelManagerView::setContextLength(qint64 tokens) { m_context->setValue(int(tokens)); }

void ModelManagerView::showCard() {
    const ModelCard c = selectedCard();
    if (c.path.isEmpty()) {
        m_card->setText(tr("<i>Add a folder or a .gguf file to the library, then pick a model.</i>"));
        return;
    }
    if (!c.ok()) {
        m_card->setText(QStringLiteral("<b>%1</b><br><span style='color:%3'>%2</span>")
                            .arg(c.path.toHtmlEscaped(), c.error.toHtmlEscaped(), theme::css(theme::errorText())));
        return;
    }
    QString dtypes;
    for (auto it = c.tensorDtypes.begin(); it != c.tensorDtypes.end(); ++it)
        dtypes += QStringLiteral("%1×%2 ").arg(it.key()).arg(it.value());
    auto row = [](const QString& k, const QString& v) {
        return QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, v.toHtmlEscaped());
    };
    QString html = QStringLiteral("<h3>%1</h3><table cellspacing='4'>").arg(c.displayName().toHtmlEscaped());
    html += row(tr("Path"), c.path);
    html += row(tr("Format"), c.format);
    html += row(tr("Architecture"), c.architecture);
    QString params = QStringLiteral("%1 (%2 M)").arg(c.numParameters).arg(c.numParameters / 1e6, 0, 'f', 2);
    if (c.visionParameters > 0)
        params = QStringLiteral("%1 (%2 M: text %3 M + vision %4 M)")
                         .arg(c.numParameters)
                         .arg(c.numParameters / 1e6, 0, 'f', 2)
                         .arg((c.numParameters - c.visionParameters) / 1e6, 0, 'f', 2)
                         .arg(c.visionParameters / 1e6, 0, 'f', 2);
    html += row(tr("Parameters"), params);
    html += row(tr("Layers"), QStringLiteral("%1 (hidden %2, heads %3, KV heads %4)")
                                  .arg(c.numLayers).arg(c.hiddenSize).arg(c.numHeads).arg(c.numKvHeads));
    html += row(tr("Context length"), QString::number(c.contextLength));
    html += row(tr("Tokenizer"), QStringLiteral("%1, vocabulary %2").arg(c.tokenizer).arg(c.vocabSize));
    html += row(tr("Tensor dtypes"), c.tensorDtypes.isEmpty() ? tr("not read (planned from config.json)") : dtypes.trimmed());
    html += row(tr("Size on disk"), humanBytes(c.sizeOnDiskBytes));
    html += row(tr("Inputs"), c.hasVision ? tr("text and images") : tr("text only"));
    html += QStringLiteral("</table>");
    m_card->setText(html);
}

void ModelManagerView::suggestContext() {
    if (!m_contextAuto) return;
    const ModelCard c = selectedCard();
    if (c.path.isEmpty() || !c.ok()) {
        m_contextNote->clear();
        return;
    }
    const ContextChoice choice = suggestContextLength(c, m_precision->currentText(), m_sequences->value(),
                                                      availableMemoryBytes());
    m_settingContext = true;
    m_context->setValue(int(choice.tokens));
    m_settingContext = false;
    m_contextNote->setText(tr("Context %1").arg(choice.why));
}

MemoryPlan ModelManagerView::currentPlan() const {
    return planMemory(selectedCard(), m_precision->currentText(), m_context->value(), m_sequences->value(),
                      availableMemoryBytes());
}

void ModelManagerView::updatePlan() {
    const ModelCard c = selectedCard();
    if (c.path.isEmpty() || !c.ok()) {
        for (int r = 0; r < 5; ++r) m_plan->setItem(r, 0, new QTableWidgetItem(QStringLiteral("—")));
        m_planVerdict->clear();
        m_planPerGpu->clear();
        m_planPerGpu->hide();
        return;
    }
    const MemoryPlan p = currentPlan();
    const qint64 values[] = {p.weightBytes, p.kvCacheBytes, p.workspaceBytes, p.totalBytes(), p.availableBytes};
    for (int r = 0; r < 5; ++r) {
        auto* item = new QTableWidgetItem(humanBytes(values[r]));
        if (r == 1)
            item->setToolTip(tr("%1 tokens × %2 sequences, %3 keys and values%4")
                                     .arg(p.contextLength)
                                     .arg(p.numSequences)
                                     .arg(p.kvCacheType)
                                     .arg(p.kvCacheType == QLatin1String("f16")
                                                  ? tr(" (the engine's choice on the CPU for a long context)")
                                                  : QString()));
        if (r == 3 && !p.fits()) {
            item->setForeground(theme::errorText());
            QFont f = item->font();
            f.setBold(true);
            item->setFont(f);
        }
        m_plan->setItem(r, 0, item);
    }
    if (p.fits()) {
        m_planVerdict->setStyleSheet(QStringLiteral("color: %1;").arg(theme::css(theme::okText())));
        m_planVerdict->setText(tr("Fits: %1 of %2 available at %3, %4 tokens of context.")
                                   .arg(humanBytes(p.totalBytes()), humanBytes(p.availableBytes), p.precision)
                                   .arg(p.contextLength));
    } else {
        m_planVerdict->setStyleSheet(QStringLiteral("color: %1; font-weight: bold;").arg(theme::css(theme::errorText())));
        m_planVerdict->setText(tr("Does not fit: %1 short (needs %2, %3 available). Lower the precision, the context "
                                  "length or the parallel sequences.")
                                   .arg(humanBytes(p.shortfallBytes()), humanBytes(p.totalBytes()),
                                        humanBytes(p.availableBytes)));
    }
    if (p.perGpuTp2Bytes() > 0) {
        m_planPerGpu->setText(tr("Per GPU at TP=2: %1 (weights %2, KV cache %3, workspace %4). On one GPU: %5.")
                                      .arg(humanBytes(p.perGpuTp2Bytes()), humanBytes(p.perGpuTp2WeightBytes),
                                           humanBytes(p.perGpuTp2KvCacheBytes), humanBytes(p.workspaceBytes),
                                           humanBytes(p.totalBytes())));
        m_planPerGpu->setToolTip(tr("Heads, the FFN and lm_head split over two GPUs; the embedding table, the "
                                    "norms and the vision tower replicated on each."));
        m_planPerGpu->show();
    } else {
        m_planPerGpu->clear();
        m_planPerGpu->hide();
    }
}

void ModelManagerView::updateButtons() {
    const bool loading = m_bridge->state() == EngineBridge::State::Loading;
    const ModelCard c = selectedCard();
    m_load->setEnabled(!loading && !c.path.isEmpty() && c.ok());
    m_load->setToolTip(c.ok() ? QString() : c.error);
    m_cancel->setEnabled(loading);
    m_unload->setEnabled(m_bridge->isLoaded());
}

void ModelManagerView::setError(const QString& message) {
    m_error->setText(message);
    m_error->setVisible(!message.isEmpty());
}

QString ModelManagerView::errorText() const { return m_error->isHidden() ? QString() : m_error->text(); }
QString ModelManagerView::statusText() const { return m_status->text(); }

void ModelManagerView::loadSelected() {
    const ModelCard c = selectedCard();
    if (c.path.isEmpty()) return;
    LoadRequest request;
    request.path = c.path;
    request.precision = m_precision->currentText();
    request.numThreads = m_threads->value();
    request.device = m_device->currentData().toString();
    request.parallelDegree = m_parallel->value();
    request.contextLength = m_context->value();
    request.maxSequences = m_sequences->value();
    m_bridge->loadModel(request);
}

void ModelManagerView::cancelLoad() { m_bridge->cancelLoad(); }
void ModelManagerView::unload() { m_bridge->unloadModel(); }

void ModelManagerView::onLoadStarted(const QString& path) {
    setError(QString());
    m_progress->setRange(0, 0);  // one blocking engine call: no fraction to show, only that it is alive
    m_loadClock->start();
    m_loadTicker->start();
    m_status->setText(tr("Loading %1…").arg(QFileInfo(path).fileName()));
    updateButtons();
}

void ModelManagerView::onLoadFinished(const LoadedModelInfo& info) {
    // Remembered for the next start: selected again, with its precision, after the first scan.
    m_settings->setValue(QStringLiteral("model/lastPath"), info.path);
    m_settings->setValue(QStringLiteral("model/lastPrecision"), m_precision->currentText());
    m_settings->sync();
    m_loadTicker->stop();
    m_progress->setRange(0, 1);
    m_progress->setValue(1);
    m_status->setText(tr("Loaded %1 at %2 in %3 ms on %4: weights %5, KV cache %6, context %7.")
                          .arg(QFileInfo(info.path).fileName(), info.precision)
                          .arg(info.loadMs, 0, 'f', 0)
                          .arg(info.device, humanBytes(info.weightBytes), humanBytes(info.kvCacheBytes))
                          .arg(info.contextLength));
    updateButtons();
}

void ModelManagerView::onLoadFailed(const QString& /*path*/, const QString& message) {
    m_loadTicker->stop();
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_status->setText(tr("Load failed."));
    setError(message);
    updateButtons();
}

}  // namespace wbgui
