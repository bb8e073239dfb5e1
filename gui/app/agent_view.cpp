#include "app/agent_view.h"
#include "app/input_panel.h"

#include "app/theme.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <condition_variable>
#include <mutex>

#include "api/agent.h"
#include "api/engine.h"
#include "bridge/engine_bridge.h"

namespace wbgui {

namespace {

QString ms(double v) {
    if (v < 0) return QStringLiteral("—");
    return v >= 1000 ? QStringLiteral("%1 s").arg(v / 1000.0, 0, 'f', 2) : QStringLiteral("%1 ms").arg(qRound(v));
}

QString q(const std::string& s) { return QString::fromStdString(s); }

QString actionSummary(const wb::AgentParse& p) {
    if (!p.ok()) return QObject::tr("parse error: %1").arg(q(p.error));
    const wb::AgentAction& a = p.action;
    QString s = q(a.name);
    if (a.point) s += QStringLiteral(" [%1, %2]").arg(a.point->x).arg(a.point->y);
    if (a.start && a.end)
        s += QStringLiteral(" [%1, %2] → [%3, %4]").arg(a.start->x).arg(a.start->y).arg(a.end->x).arg(a.end->y);
    if (!a.text.empty()) s += QStringLiteral(" “%1”").arg(q(a.text));
    if (!a.app.empty()) s += QStringLiteral(" %1").arg(q(a.app));
    if (!a.message.empty()) s += QStringLiteral(" — %1").arg(q(a.message));
    return s;
}

}  // namespace

AgentStepView makeAgentStepView(const wb::AgentStep& st) {
    const QLocale locale = QLocale::c();
    AgentStepView s;
    s.index = st.index;
    s.parsed = st.parse.ok();
    s.action = actionSummary(st.parse);
    s.title = QStringLiteral("%1. %2").arg(st.index).arg(s.parsed ? q(st.parse.action.name) : QObject::tr("(no action)"));
    s.reasoning = q(st.reply.reasoning);
    s.answer = st.reply.error.empty() ? q(st.reply.answer) : QObject::tr("request failed: %1").arg(q(st.reply.error));
    s.timings = QObject::tr("TTFT %1 · thinking ends %2 · total %3 · %4 + %5 tokens")
                        .arg(ms(st.reply.ttftMs), ms(st.reply.thinkEndMs), ms(st.reply.totalMs),
                             locale.toString(qlonglong(st.reply.promptTokens)),
                             locale.toString(qlonglong(st.reply.completionTokens)));
    for (const wb::AgentMark& m : st.marks)
        s.marks << QStringLiteral("%1 at %2,%3%4 %5")
                           .arg(QString::fromLatin1(wb::agentMarkShapeName(m.shape)))
                           .arg(m.x)
                           .arg(m.y)
                           .arg(m.shape == wb::AgentMark::Shape::Arrow ? QStringLiteral(" → %1,%2").arg(m.x2).arg(m.y2)
                                                                       : QString())
                           .arg(q(m.label));
    if (st.screen.bytes) {
        auto png = wb::annotateAgentScreenshot(*st.screen.bytes, st.marks);
        const std::vector<uint8_t>& bytes = png ? *png : *st.screen.bytes;
        s.annotated = QImage::fromData(bytes.data(), int(bytes.size()));
    }
    s.executed = q(st.executed);
    return s;
}

AgentRunView loadAgentRun(const QString& dir) {
    AgentRunView v;
    v.dir = dir;
    auto r = wb::readAgentTrace(dir.toStdString());
    if (!r) {
        v.error = q(r.error().message);
        return v;
    }
    v.task = q(r->task);
    v.target = q(r->target);
    v.source = q(r->source);
    v.status = r->statusDetail.empty() ? q(r->status) : q(r->status) + QStringLiteral(": ") + q(r->statusDetail);
    for (const wb::AgentStep& st : r->steps) v.steps << makeAgentStepView(st);
    return v;
}

// What a live run shares between the GUI thread and its own: the cancel flag, the arming (read by the adb source
// at every step) and the question the run waits on.
struct AgentRunControl {
    std::atomic<bool> cancel{false};
    std::shared_ptr<std::atomic<bool>> armed = std::make_shared<std::atomic<bool>>(false);
    std::mutex mutex;
    std::condition_variable answered;
    int decision = -1;  // -1: none yet; 0: no; 1: yes
};

AgentView::AgentView(EngineBridge* bridge, QWidget* parent) : QWidget(parent), m_bridge(bridge) {
    setObjectName(QStringLiteral("agentView"));
    m_appTable = wb::defaultAgentApps();
    m_runsFolder = QDir::tempPath() + QStringLiteral("/workbench-agent-runs");

    // The run form: model, task, screen source, step limit, Run / Stop.
    auto named = [](QWidget* w, const char* name) {
        w->setObjectName(QString::fromLatin1(name));
        return w;
    };
    m_targetKind = static_cast<QComboBox*>(named(new QComboBox, "agentTargetKind"));
    m_targetKind->addItem(tr("Loaded model"));
    m_targetKind->addItem(tr("OpenAI-compatible URL"));
    m_url = static_cast<QLineEdit*>(named(new QLineEdit, "agentUrl"));
    m_url->setPlaceholderText(QStringLiteral("http://127.0.0.1:8000/v1"));
    m_modelName = static_cast<QLineEdit*>(named(new QLineEdit, "agentModelName"));
    m_modelName->setPlaceholderText(tr("model id (default: the first listed)"));
    m_task = static_cast<QLineEdit*>(named(new QLineEdit, "agentTask"));
    m_task->setPlaceholderText(tr("What the agent should do on the phone, e.g. “Turn on Wi-Fi”"));
    // Voice input: the chat composer's (InputPanel) without images; each clip is transcribed into the task.
    m_voice = new InputPanel(QDir::tempPath() + QStringLiteral("/workbench-voice"));
    m_voice->setObjectName(QStringLiteral("agentVoice"));
    m_voice->setVoiceOnly(true);
    m_voice->setCapabilities(false, false,
                             tr("Speaking the task needs a speech model (settings voice/asrModel or WB_ASR_MODEL)"));
    connect(m_voice, &InputPanel::transcriptionFinished, this, [this](const QString& text, const QString& error) {
        if (!error.isEmpty()) {
            if (error != QLatin1String("cancelled")) m_runStatus->setText(tr("Voice input: %1").arg(error));
            return;
        }
        const QString said = text.trimmed();
        if (said.isEmpty()) return;
        // Into the field for the person to check and edit; nothing runs until Run.
        m_task->setText(m_task->text().trimmed().isEmpty() ? said : m_task->text().trimmed() + QLatin1Char(' ') + said);
        m_task->setFocus();
    });
    m_sourceKind = static_cast<QComboBox*>(named(new QComboBox, "agentSourceKind"));
    m_sourceKind->addItem(tr("Replay folder"));
    m_sourceKind->addItem(tr("Android phone (adb)"));
    m_screens = static_cast<QLineEdit*>(named(new QLineEdit, "agentScreens"));
    m_screens->setPlaceholderText(tr("a folder of screenshots, one per step"));
    m_browse = static_cast<QPushButton*>(named(new QPushButton(tr("Browse…")), "agentBrowse"));
    m_serial = static_cast<QLineEdit*>(named(new QLineEdit, "agentSerial"));
    m_serial->setPlaceholderText(tr("serial (empty: the one attached)"));
    m_apps = static_cast<QPushButton*>(named(new QPushButton(tr("Apps…")), "agentApps"));
    m_apps->setToolTip(tr("The app name → package table that Launch uses"));
    m_arm = static_cast<QCheckBox*>(named(new QCheckBox(tr("Execute on the phone")), "agentArm"));
    m_arm->setToolTip(tr("Off: actions are drawn and recorded, nothing is sent. On: each action is sent through "
                         "adb (sensitive taps and Take_over ask first). Takes effect at the next step."));
    m_maxSteps = static_cast<QSpinBox*>(named(new QSpinBox, "agentMaxSteps"));
    m_maxSteps->setRange(1, 500);
    m_maxSteps->setValue(20);
    m_maxTokens = static_cast<QSpinBox*>(named(new QSpinBox, "agentMaxTokens"));
    m_maxTokens->setRange(1, 32768);
    m_maxTokens->setValue(3000);  // the reference agent's
    m_maxTokens->setToolTip(tr("The most tokens the model may write per step (thinking and answer)"));
    m_runButton = static_cast<QPushButton*>(named(new QPushButton(tr("Run")), "agentRun"));
    m_stopButton = static_cast<QPushButton*>(named(new QPushButton(tr("Stop")), "agentStop"));
    m_stopButton->setEnabled(false);
    m_runStatus = static_cast<QLabel*>(named(new QLabel, "agentRunStatus"));
    m_runStatus->setWordWrap(true);
    m_runStatus->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_pauseBar = static_cast<QFrame*>(named(new QFrame, "agentPauseBar"));
    m_pauseBar->setFrameShape(QFrame::StyledPanel);
    m_pauseBar->setStyleSheet(QStringLiteral("#agentPauseBar { background: %1; }").arg(theme::css(theme::warningBackground())));
    m_pauseText = static_cast<QLabel*>(named(new QLabel, "agentPauseText"));
    m_pauseText->setWordWrap(true);
    m_pauseYes = static_cast<QPushButton*>(named(new QPushButton, "agentPauseYes"));
    m_pauseNo = static_cast<QPushButton*>(named(new QPushButton, "agentPauseNo"));
    auto* pl = new QHBoxLayout(m_pauseBar);
    pl->addWidget(m_pauseText, 1);
    pl->addWidget(m_pauseYes);
    pl->addWidget(m_pauseNo);
    m_pauseBar->hide();

    auto* form = new QGroupBox(tr("New run"));
    auto* g = new QGridLayout(form);
    g->addWidget(new QLabel(tr("Model")), 0, 0);
    g->addWidget(m_targetKind, 0, 1);
    g->addWidget(m_url, 0, 2, 1, 2);
    g->addWidget(m_modelName, 0, 4, 1, 2);
    g->addWidget(new QLabel(tr("Task")), 1, 0);
    auto* taskColumn = new QVBoxLayout;
    taskColumn->addWidget(m_task);
    taskColumn->addWidget(m_voice);
    g->addLayout(taskColumn, 1, 1, 1, 5);
    g->addWidget(new QLabel(tr("Screen")), 2, 0);
    g->addWidget(m_sourceKind, 2, 1);
    auto* sourceRow = new QHBoxLayout;
    sourceRow->addWidget(m_screens, 1);
    sourceRow->addWidget(m_browse);
    sourceRow->addWidget(m_serial, 1);
    sourceRow->addWidget(m_apps);
    sourceRow->addWidget(m_arm);
    g->addLayout(sourceRow, 2, 2, 1, 4);
    auto* runRow = new QHBoxLayout;
    runRow->addWidget(new QLabel(tr("Step limit")));
    runRow->addWidget(m_maxSteps);
    runRow->addWidget(new QLabel(tr("Tokens per step")));
    runRow->addWidget(m_maxTokens);
    runRow->addWidget(m_runButton);
    runRow->addWidget(m_stopButton);
    runRow->addWidget(m_runStatus, 1);
    g->addLayout(runRow, 3, 0, 1, 6);
    g->setColumnStretch(2, 1);
    g->setColumnStretch(3, 1);

    m_open = new QPushButton(tr("Open run…"));
    m_open->setObjectName(QStringLiteral("agentOpen"));
    m_prev = new QPushButton(tr("◀ Previous"));
    m_prev->setObjectName(QStringLiteral("agentPrev"));
    m_next = new QPushButton(tr("Next ▶"));
    m_next->setObjectName(QStringLiteral("agentNext"));
    m_header = new QLabel(tr("A phone-agent run folder (written by `wb agent --out RUN`) opens here."));
    m_header->setObjectName(QStringLiteral("agentHeader"));
    m_header->setWordWrap(true);
    m_header->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_timeline = new QListWidget;
    m_timeline->setObjectName(QStringLiteral("agentTimeline"));
    m_timeline->setMaximumWidth(240);
    m_image = new QLabel;
    m_image->setObjectName(QStringLiteral("agentImage"));
    m_image->setAlignment(Qt::AlignCenter);
    m_image->setMinimumSize(160, 240);
    m_action = new QLabel;
    m_action->setObjectName(QStringLiteral("agentAction"));
    m_action->setWordWrap(true);
    m_action->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_timings = new QLabel;
    m_timings->setObjectName(QStringLiteral("agentTimings"));
    m_timings->setWordWrap(true);
    m_thinkingToggle = new QToolButton;
    m_thinkingToggle->setText(tr("Thinking"));
    m_thinkingToggle->setCheckable(true);
    m_thinkingToggle->setChecked(true);
    m_thinkingToggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_thinkingToggle->setArrowType(Qt::DownArrow);
    m_thinking = new QPlainTextEdit;
    m_thinking->setObjectName(QStringLiteral("agentThinking"));
    m_thinking->setReadOnly(true);
    m_answer = new QPlainTextEdit;
    m_answer->setObjectName(QStringLiteral("agentAnswer"));
    m_answer->setReadOnly(true);
    m_answer->setMaximumHeight(90);

    // Word-wrapped labels in a layout get one line's height before they know their width: keep room for two.
    const int twoLines = 2 * fontMetrics().lineSpacing() + 4;
    m_header->setMinimumHeight(twoLines);
    m_timings->setMinimumHeight(twoLines);
    m_action->setMinimumHeight(twoLines);
    auto* details = new QWidget;
    auto* dl = new QVBoxLayout(details);
    dl->addWidget(m_action);
    dl->addWidget(m_timings);
    dl->addWidget(m_thinkingToggle);
    dl->addWidget(m_thinking, 1);
    dl->addWidget(new QLabel(tr("Answer")));
    dl->addWidget(m_answer);
    auto* split = new QSplitter;
    split->addWidget(m_timeline);
    split->addWidget(m_image);
    split->addWidget(details);
    split->setStretchFactor(1, 2);
    split->setStretchFactor(2, 1);

    auto* top = new QHBoxLayout;
    top->addWidget(m_open);
    top->addWidget(m_prev);
    top->addWidget(m_next);
    top->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(form);
    layout->addWidget(m_pauseBar);
    layout->addLayout(top);
    layout->addWidget(m_header);
    layout->addWidget(split, 1);

    connect(m_open, &QPushButton::clicked, this, &AgentView::chooseRun);
    connect(m_prev, &QPushButton::clicked, this, [this] { showStep(currentStep() - 1); });
    connect(m_next, &QPushButton::clicked, this, [this] { showStep(currentStep() + 1); });
    connect(m_timeline, &QListWidget::currentRowChanged, this, [this](int row) { showStep(row); });
    connect(m_thinkingToggle, &QToolButton::toggled, this, [this](bool on) {
        m_thinking->setVisible(on);
        m_thinkingToggle->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
    });
    connect(&m_watcher, &QFutureWatcher<AgentRunView>::finished, this, &AgentView::loaded);
    connect(m_targetKind, &QComboBox::currentIndexChanged, this, &AgentView::updateForm);
    connect(m_sourceKind, &QComboBox::currentIndexChanged, this, &AgentView::updateForm);
    connect(m_browse, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("A folder of screenshots"), m_screens->text());
        if (!dir.isEmpty()) m_screens->setText(dir);
    });
    connect(m_apps, &QPushButton::clicked, this, &AgentView::editApps);
    connect(m_arm, &QCheckBox::toggled, this, [this](bool on) {
        if (m_control) m_control->armed->store(on);
        updateForm();
    });
    connect(m_runButton, &QPushButton::clicked, this, &AgentView::startRun);
    connect(m_stopButton, &QPushButton::clicked, this, &AgentView::stopRun);
    connect(m_pauseYes, &QPushButton::clicked, this, [this] { answerDecision(true); });
    connect(m_pauseNo, &QPushButton::clicked, this, [this] { answerDecision(false); });
    if (m_bridge) {
        connect(m_bridge, &EngineBridge::loadFinished, this, &AgentView::updateForm);
        connect(m_bridge, &EngineBridge::unloaded, this, &AgentView::updateForm);
    }
    updateForm();
    showStep(-1);
}

AgentView::~AgentView() {
    if (!m_thread) return;
    stopRun();
    m_thread->wait();  // the request in flight was cancelled: it ends within a chunk or an adb command
    delete m_thread;
}

void AgentView::updateForm() {
    const bool url = m_targetKind->currentIndex() == 1;
    const bool adb = m_sourceKind->currentIndex() == 1;
    m_url->setVisible(url);
    m_modelName->setVisible(url);
    m_screens->setVisible(!adb);
    m_browse->setVisible(!adb);
    m_serial->setVisible(adb);
    m_apps->setVisible(adb);
    m_arm->setVisible(adb);
    m_arm->setStyleSheet(m_arm->isChecked() ? QStringLiteral("color: %1; font-weight: bold;").arg(theme::css(theme::errorText())) : QString());
    const bool idle = !m_running;
    for (QWidget* w : {static_cast<QWidget*>(m_targetKind), static_cast<QWidget*>(m_url),
                       static_cast<QWidget*>(m_modelName), static_cast<QWidget*>(m_task),
                       static_cast<QWidget*>(m_sourceKind), static_cast<QWidget*>(m_screens),
                       static_cast<QWidget*>(m_browse), static_cast<QWidget*>(m_serial), static_cast<QWidget*>(m_apps),
                       static_cast<QWidget*>(m_maxSteps), static_cast<QWidget*>(m_maxTokens)})
        w->setEnabled(idle);
    m_runButton->setEnabled(idle);
    m_stopButton->setEnabled(!idle);
    m_open->setEnabled(idle && !m_watcher.isRunning());
    if (!url && m_bridge)
        m_targetKind->setItemText(0, m_bridge->isLoaded()
                                         ? tr("Loaded model: %1").arg(QFileInfo(m_bridge->loadedModel().path).fileName())
                                         : tr("Loaded model (none loaded)"));
}

void AgentView::editApps() {
    auto* dlg = new QDialog(this);
    dlg->setAttribute(Qt::WA_DeleteOnClose);
    dlg->setWindowTitle(tr("Apps that Launch opens"));
    auto* table = new QTableWidget(int(m_appTable.size()), 2, dlg);
    table->setObjectName(QStringLiteral("agentAppTable"));
    table->setHorizontalHeaderLabels({tr("App name (as the model writes it)"), tr("Android package")});
    table->horizontalHeader()->setStretchLastSection(true);
    int row = 0;
    for (const auto& [name, pkg] : m_appTable) {
        table->setItem(row, 0, new QTableWidgetItem(q(name)));
        table->setItem(row, 1, new QTableWidgetItem(q(pkg)));
        ++row;
    }
    auto* add = new QPushButton(tr("Add"));
    auto* remove = new QPushButton(tr("Remove"));
    connect(add, &QPushButton::clicked, table, [table] {
        table->insertRow(table->rowCount());
        table->setCurrentCell(table->rowCount() - 1, 0);
        table->editItem(table->item(table->rowCount() - 1, 0));
    });
    connect(remove, &QPushButton::clicked, table, [table] {
        if (table->currentRow() >= 0) table->removeRow(table->currentRow());
    });
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    connect(buttons, &QDialogButtonBox::rejected, dlg, &QDialog::reject);
    connect(buttons, &QDialogButtonBox::accepted, dlg, [this, dlg, table] {
        std::map<std::string, std::string> apps;
        for (int r = 0; r < table->rowCount(); ++r) {
            const QString name = table->item(r, 0) ? table->item(r, 0)->text().trimmed() : QString();
            const QString pkg = table->item(r, 1) ? table->item(r, 1)->text().trimmed() : QString();
            if (!name.isEmpty() && !pkg.isEmpty()) apps[name.toStdString()] = pkg.toStdString();
        }
        m_appTable = std::move(apps);
        dlg->accept();
    });
    auto* side = new QVBoxLayout;
    side->addWidget(add);
    side->addWidget(remove);
    side->addStretch(1);
    auto* top = new QHBoxLayout;
    top->addWidget(table, 1);
    top->addLayout(side);
    auto* l = new QVBoxLayout(dlg);
    l->addLayout(top);
    l->addWidget(buttons);
    dlg->resize(560, 420);
    dlg->open();
}

bool AgentView::startRun() {
    if (m_running) return false;
    auto refuse = [this](const QString& why) {
        m_runStatus->setText(why);
        return false;
    };
    const bool useUrl = m_targetKind->currentIndex() == 1;
    const bool useAdb = m_sourceKind->currentIndex() == 1;
    const QString task = m_task->text().trimmed();
    std::shared_ptr<wb::Engine> engine;
    QString engineLabel;
    if (useUrl) {
        if (m_url->text().trimmed().isEmpty()) return refuse(tr("Give the server's URL (e.g. http://127.0.0.1:8000/v1)."));
    } else {
        engine = m_bridge ? m_bridge->engine() : nullptr;
        if (!engine)
            return refuse(tr("No model is loaded: load a vision model (AutoGLM-Phone-9B, GLM-4.1V) in Models, or "
                             "use an OpenAI-compatible URL."));
        if (!m_bridge->loadedModel().acceptsImages)
            return refuse(tr("The loaded model takes no images: the agent needs a vision model (GLM-4.1V layout)."));
        engineLabel = tr("workbench engine: %1").arg(m_bridge->loadedModel().path);
    }
    if (task.isEmpty()) return refuse(tr("Type the task first."));
    if (!useAdb && m_screens->text().trimmed().isEmpty()) return refuse(tr("Choose a folder of screenshots."));
    // A folder of its own per run, named after its start.
    QString dir = m_runsFolder + QStringLiteral("/run-") +
                  QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"));
    for (int n = 2; QFileInfo::exists(dir); ++n)
        dir = m_runsFolder + QStringLiteral("/run-") +
              QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss")) + QStringLiteral("-%1").arg(n);

    if (m_thread) {  // the previous run's thread has posted its end already; it is finishing or done
        m_thread->wait();
        delete m_thread;
        m_thread = nullptr;
    }
    auto control = std::make_shared<AgentRunControl>();
    control->armed->store(useAdb && m_arm->isChecked());
    m_control = control;
    m_liveDir = dir;
    m_running = true;
    m_run = AgentRunView{};
    m_run.dir = dir;
    m_run.task = task;
    m_run.status = tr("running");
    m_timeline->clear();
    showStep(-1);
    m_header->setText(tr("<b>%1</b><br>starting… · run folder %2").arg(task.toHtmlEscaped(), dir.toHtmlEscaped()));
    m_runStatus->setText(useAdb ? tr("Connecting to the phone…") : tr("Starting…"));
    updateForm();

    struct Settings {
        bool useUrl, useAdb;
        std::string url, modelName, screens, serial, task, dir, engineLabel;
        int maxSteps;
        int maxTokens;
        std::map<std::string, std::string> apps;
        std::shared_ptr<wb::Engine> engine;
    };
    Settings st{useUrl,
                useAdb,
                m_url->text().trimmed().toStdString(),
                m_modelName->text().trimmed().toStdString(),
                m_screens->text().trimmed().toStdString(),
                m_serial->text().trimmed().toStdString(),
                task.toStdString(),
                dir.toStdString(),
                engineLabel.toStdString(),
                m_maxSteps->value(),
                m_maxTokens->value(),
                m_appTable,
                std::move(engine)};
    // Everything below runs on the run's thread; it reaches this view only through queued calls (the destructor
    // waits for the thread, so `this` outlives them being posted).
    m_thread = QThread::create([this, st = std::move(st), control]() mutable {
        auto post = [this](auto fn) { QMetaObject::invokeMethod(this, std::move(fn), Qt::QueuedConnection); };
        auto end = [&](const std::string& status, const std::string& detail, const std::string& writeError = {}) {
            post([this, status = q(status), detail = q(detail), w = q(writeError)] { onRunEnded(status, detail, w); });
        };
        // The phone first: its problems (no adb, no device) are quicker to find than a server's.
        wb::Result<std::unique_ptr<wb::AgentScreenSource>> source = wb::makeError("no source");
        if (st.useAdb) {
            wb::AgentAdbOptions o;
            o.serial = st.serial;
            o.execute = control->armed;
            o.apps = st.apps;
            o.cancel = &control->cancel;
            source = wb::makeAdbScreenSource(std::move(o));
        } else {
            source = wb::makeReplayScreenSource(st.screens);
        }
        if (!source) return end("error", source.error().message);
        std::unique_ptr<wb::AgentChatTarget> target;
        if (st.useUrl) {
            auto t = wb::makeOpenAiAgentTarget(st.url, st.modelName);
            if (!t) return end("error", t.error().message);
            target = std::move(*t);
        } else {
            target = wb::makeEngineAgentTarget(*st.engine, st.engineLabel);
        }
        post([this, t = q(target->name()), s = q((*source)->describe())] {
            m_run.target = t;
            m_run.source = s;
            m_header->setText(tr("<b>%1</b><br>%2 · %3 · run folder %4")
                                      .arg(m_run.task.toHtmlEscaped(), t.toHtmlEscaped(), s.toHtmlEscaped(),
                                           m_liveDir.toHtmlEscaped()));
            emit runStarted(t, s);
        });

        wb::AgentOptions o;
        o.task = st.task;
        o.maxSteps = st.maxSteps;
        o.maxTokens = st.maxTokens;
        o.cancel = &control->cancel;
        o.ask = [&post, this, control](wb::AgentAsk what, const wb::AgentStep& pending) {
            {
                std::lock_guard lock(control->mutex);
                control->decision = -1;
            }
            const bool takeOver = what == wb::AgentAsk::TakeOver;
            post([this, takeOver, m = q(pending.parse.action.message), v = makeAgentStepView(pending)] {
                showDecision(takeOver, m, v);
            });
            std::unique_lock lock(control->mutex);
            control->answered.wait(lock, [&] { return control->decision >= 0 || control->cancel.load(); });
            return control->decision == 1 && !control->cancel.load();
        };
        wb::AgentSession session(*target, **source, o);
        wb::AgentTraceWriter writer(st.dir);
        std::string writeError;
        while (true) {
            const int next = int(session.steps().size()) + 1;
            post([this, next, max = st.maxSteps] {
                if (m_running && !m_control->cancel.load())
                    m_runStatus->setText(tr("Step %1 of at most %2: screenshot, then the model…").arg(next).arg(max));
            });
            const size_t before = session.steps().size();
            const bool more = session.step();
            if (session.steps().size() > before) {
                if (auto w = writer.write(session); !w && writeError.empty()) writeError = w.error().message;
                post([this, v = makeAgentStepView(session.steps().back())] { addStep(v); });
            }
            if (!more) break;
        }
        if (auto w = writer.write(session); !w && writeError.empty()) writeError = w.error().message;
        end(wb::agentStopReasonName(session.stopReason()), session.stopDetail(), writeError);
    });
    m_thread->start();
    return true;
}

void AgentView::stopRun() {
    if (!m_control) return;
    {
        std::lock_guard lock(m_control->mutex);
        m_control->cancel = true;
    }
    m_control->answered.notify_all();
    m_pauseBar->hide();
    if (m_running) m_runStatus->setText(tr("Stopping: cancelling the request in flight…"));
}

void AgentView::answerDecision(bool goOn) {
    if (!m_control) return;
    {
        std::lock_guard lock(m_control->mutex);
        m_control->decision = goOn ? 1 : 0;
    }
    m_control->answered.notify_all();
    m_pauseBar->hide();
}

void AgentView::showDecision(bool takeOver, const QString& message, const AgentStepView& pending) {
    if (!m_running || m_control->cancel.load()) return;
    // The step waits in the timeline, its screenshot showing where the action would land.
    AgentStepView v = pending;
    v.title += tr(" (waiting for you)");
    m_run.steps << v;
    m_timeline->addItem(v.title);
    m_pendingShown = true;
    showStep(int(m_run.steps.size()) - 1);
    if (takeOver) {
        m_pauseText->setText(tr("<b>The agent hands over:</b> %1<br>Do it on the phone, then continue.")
                                     .arg(message.isEmpty() ? tr("(no message)") : message.toHtmlEscaped()));
        m_pauseYes->setText(tr("Continue"));
        m_pauseNo->setText(tr("Stop the run"));
    } else {
        m_pauseText->setText(tr("<b>Sensitive tap:</b> %1<br>Tap it on the phone?").arg(message.toHtmlEscaped()));
        m_pauseYes->setText(tr("Tap"));
        m_pauseNo->setText(tr("Don't tap (ends the run)"));
    }
    m_pauseBar->show();
    m_runStatus->setText(takeOver ? tr("Paused: waiting for you to take over.") : tr("Paused: confirm the tap."));
    emit decisionRequested(takeOver, message);
}

void AgentView::addStep(const AgentStepView& step) {
    const bool follow = m_timeline->currentRow() == m_timeline->count() - 1;  // at the newest (or none): follow
    if (m_pendingShown) {  // the step the question waited on, now done: it takes its place
        m_pendingShown = false;
        m_run.steps.last() = step;
        m_timeline->item(m_timeline->count() - 1)->setText(step.title);
        if (follow) showStep(int(m_run.steps.size()) - 1);  // the same row: refreshed
        emit stepAdded(int(m_run.steps.size()) - 1);
        return;
    }
    m_run.steps << step;
    auto* item = new QListWidgetItem(step.title);
    if (!step.parsed) item->setForeground(Qt::darkRed);
    m_timeline->addItem(item);
    if (follow) showStep(int(m_run.steps.size()) - 1);
    m_prev->setEnabled(currentStep() > 0);
    m_next->setEnabled(currentStep() >= 0 && currentStep() + 1 < m_run.steps.size());
    emit stepAdded(int(m_run.steps.size()) - 1);
}

void AgentView::onRunEnded(const QString& status, const QString& detail, const QString& writeError) {
    m_running = false;
    m_pauseBar->hide();
    m_run.status = detail.isEmpty() ? status : status + QStringLiteral(": ") + detail;
    QString text = status == QLatin1String("error") ? tr("The run could not start: %1").arg(detail)
                                                    : tr("Run ended (%1) after %2 step(s). Written to %3")
                                                              .arg(m_run.status)
                                                              .arg(m_run.steps.size())
                                                              .arg(m_liveDir);
    if (!writeError.isEmpty()) text += tr(" — but the run folder could not be written: %1").arg(writeError);
    m_runStatus->setText(text);
    if (status != QLatin1String("error"))
        m_header->setText(tr("<b>%1</b><br>%2 · %3 · %4 steps · %5")
                                  .arg(m_run.task.toHtmlEscaped(), m_run.target.toHtmlEscaped(),
                                       m_run.source.toHtmlEscaped())
                                  .arg(m_run.steps.size())
                                  .arg(m_run.status.toHtmlEscaped()));
    updateForm();
    emit runFinished(status, detail);
}

void AgentView::chooseRun() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open an agent run folder"));
    if (!dir.isEmpty()) openRun(dir);
}

void AgentView::openRun(const QString& dir) {
    if (m_watcher.isRunning() || m_running) return;  // one read at a time, not over a live run
    m_open->setEnabled(false);
    m_header->setText(tr("Reading %1…").arg(dir));
    m_watcher.setFuture(QtConcurrent::run(loadAgentRun, dir));
}

void AgentView::loaded() {
    m_open->setEnabled(true);
    m_run = m_watcher.result();
    m_timeline->blockSignals(true);
    m_timeline->clear();
    for (const AgentStepView& s : m_run.steps) {
        auto* item = new QListWidgetItem(s.title);
        if (!s.parsed) item->setForeground(Qt::darkRed);
        m_timeline->addItem(item);
    }
    m_timeline->blockSignals(false);
    if (!m_run.error.isEmpty()) {
        m_header->setText(tr("Cannot open the run: %1").arg(m_run.error));
        showStep(-1);
        emit runLoaded(false);
        return;
    }
    m_header->setText(tr("<b>%1</b><br>%2 · %3 · %4 steps · %5")
                              .arg(m_run.task.toHtmlEscaped(), m_run.target.toHtmlEscaped(),
                                   m_run.source.toHtmlEscaped())
                              .arg(m_run.steps.size())
                              .arg(m_run.status.toHtmlEscaped()));
    showStep(m_run.steps.isEmpty() ? -1 : 0);
    emit runLoaded(true);
}

int AgentView::currentStep() const { return m_timeline->currentRow(); }

void AgentView::showStep(int index) {
    const bool valid = index >= 0 && index < m_run.steps.size();
    if (valid && m_timeline->currentRow() != index) {
        m_timeline->setCurrentRow(index);  // comes back here through currentRowChanged
        return;
    }
    m_prev->setEnabled(valid && index > 0);
    m_next->setEnabled(valid && index + 1 < m_run.steps.size());
    if (!valid) {
        m_image->clear();
        m_action->clear();
        m_timings->clear();
        m_thinking->clear();
        m_answer->clear();
        return;
    }
    const AgentStepView& s = m_run.steps[index];
    m_action->setText((s.parsed ? tr("Action: %1") : tr("%1")).arg(s.action) +
                      (s.executed.isEmpty() ? QString() : tr(" · %1").arg(s.executed)));
    m_action->setToolTip(s.marks.join('\n'));
    m_timings->setText(s.timings);
    m_thinking->setPlainText(s.reasoning);
    m_answer->setPlainText(s.answer);
    updateImage();
}

void AgentView::updateImage() {
    const int i = currentStep();
    if (i < 0 || i >= m_run.steps.size() || m_run.steps[i].annotated.isNull()) {
        m_image->clear();
        return;
    }
    m_image->setPixmap(QPixmap::fromImage(m_run.steps[i].annotated)
                               .scaled(m_image->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
}

void AgentView::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    updateImage();
}

}  // namespace wbgui
