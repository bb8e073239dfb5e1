#include "app/main_window.h"

#include "app/agent_view.h"
#include "app/theme.h"

#include <QCloseEvent>
#include <QDir>
#include <QFileInfo>
#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QDesktopServices>
#include <QFileDialog>
#include <QKeySequence>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>

#include "app/chat_store.h"
#include "app/chat_view.h"
#include "app/compare_view.h"
#include "app/perf_charts_view.h"
#include "app/model_manager_view.h"
#include "bridge/engine_bridge.h"
#include "bridge/model_info.h"

// The resources live in the static wb_gui library: register them explicitly, or the linker drops them.
static void initWorkbenchResources() { Q_INIT_RESOURCE(workbench); }

namespace wbgui {

QString MainWindow::defaultDataDir() {
    if (const QByteArray env = qgetenv("WB_DATA_DIR"); !env.isEmpty()) return QString::fromLocal8Bit(env);
    // ~/.local/share/workbench. Versions before 0.5 used the organisation *and* the application name
    // (~/.local/share/workbench/workbench): a folder that already holds a chat database there stays in use, so
    // nothing saved is left behind.
    const QString base = QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation) +
                         QStringLiteral("/workbench");
    if (QFileInfo::exists(base + QStringLiteral("/workbench/chats.sqlite")) &&
        !QFileInfo::exists(base + QStringLiteral("/chats.sqlite")))
        return base + QStringLiteral("/workbench");
    return base;
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* newChat = file->addAction(tr("&New chat"), this, [this] {
        m_tabs->setCurrentWidget(m_chat);
        m_chat->newChat();
        m_chat->composer()->setFocus();
    });
    newChat->setObjectName(QStringLiteral("actionNewChat"));
    newChat->setShortcut(QKeySequence::New);
    QAction* addModel = file->addAction(tr("&Add model file…"), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Add a model"), QString(),
                                                       tr("GGUF models (*.gguf);;All files (*)"));
        if (f.isEmpty()) return;
        m_tabs->setCurrentWidget(m_models);
        m_models->addLibraryEntry(f);
    });
    addModel->setShortcut(QKeySequence::Open);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setObjectName(QStringLiteral("actionQuit"));
    QList<QKeySequence> quitKeys = QKeySequence::keyBindings(QKeySequence::Quit);
    if (!quitKeys.contains(QKeySequence(Qt::CTRL | Qt::Key_Q))) quitKeys.prepend(QKeySequence(Qt::CTRL | Qt::Key_Q));
    quit->setShortcuts(quitKeys);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (int i = 0; i < m_tabs->count(); ++i) {
        QAction* a = view->addAction(m_tabs->tabText(i), this, [this, i] { m_tabs->setCurrentIndex(i); });
        a->setShortcut(QKeySequence(Qt::CTRL | Qt::Key(Qt::Key_1 + i)));
    }

    // Appearance: the system palette, or light / dark whatever the desktop says (remembered).
    QMenu* appearance = view->addMenu(tr("&Appearance"));
    auto* group = new QActionGroup(this);
    for (theme::Appearance a : {theme::Appearance::System, theme::Appearance::Light, theme::Appearance::Dark}) {
        QAction* act = appearance->addAction(a == theme::Appearance::System ? tr("Follow the &system")
                                             : a == theme::Appearance::Light ? tr("&Light")
                                                                             : tr("&Dark"));
        act->setObjectName(QStringLiteral("actionAppearance_") + theme::name(a));
        act->setCheckable(true);
        act->setChecked(theme::current() == a);
        group->addAction(act);
        connect(act, &QAction::triggered, this, [this, a] { setAppearance(a); });
    }

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    QAction* helpAction = help->addAction(tr("Workbench &help"), this, &MainWindow::showHelp);
    helpAction->setObjectName(QStringLiteral("actionHelp"));
    QList<QKeySequence> helpKeys = QKeySequence::keyBindings(QKeySequence::HelpContents);
    if (!helpKeys.contains(QKeySequence(Qt::Key_F1))) helpKeys.prepend(QKeySequence(Qt::Key_F1));  // F1 everywhere
    helpAction->setShortcuts(helpKeys);
    help->addAction(tr("&About Workbench"), this, [this] {
        QMessageBox::about(this, tr("About Workbench"),
                           tr("<h3>Workbench %1</h3><p>A desktop workbench for multimodal language models: its own "
                              "inference engine (CPU, CUDA, tensor parallel), chat with images, side-by-side "
                              "comparisons with other frameworks and precisions, and the phone agent's actions "
                              "drawn on its screenshots.</p><p>Qt %2. Data folder: <code>%3</code></p>")
                               .arg(QStringLiteral(WB_VERSION), QString::fromLatin1(qVersion()),
                                    m_dataDir.toHtmlEscaped()));
    });
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::setAppearance(theme::Appearance a) {
    theme::apply(a);
    m_settings->setValue(QStringLiteral("view/appearance"), theme::name(a));
    if (auto* act = findChild<QAction*>(QStringLiteral("actionAppearance_") + theme::name(a))) act->setChecked(true);
}

void MainWindow::showHelp() {
    // Not modal: the help stays open beside the window while the user tries what it says.
    if (auto* open = findChild<QMessageBox*>(QStringLiteral("helpDialog"))) {
        open->raise();
        open->activateWindow();
        return;
    }
    auto* box = new QMessageBox(this);
    box->setObjectName(QStringLiteral("helpDialog"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setModal(false);
    box->setWindowTitle(tr("Workbench help"));
    box->setTextFormat(Qt::RichText);
    box->setText(tr("<h3>Getting started</h3><ol>"
                    "<li><b>Models</b> (Ctrl+1): add a .gguf file or a model folder, pick a precision, <b>Load</b> "
                    "(or Enter / double-click on the model).</li>"
                    "<li><b>Chat</b> (Ctrl+2): type and press Enter; paste or drop a screenshot for models that see "
                    "images. <b>Esc</b> stops the answer; the thinking is shown apart from the answer.</li>"
                    "<li><b>Performance</b> (Ctrl+3): tokens/s, KV cache use and memory while the engine runs.</li>"
                    "<li><b>Compare</b> (Ctrl+4): one workload on several engines, precisions or OpenAI-compatible "
                    "servers; TTFT, tokens/s, P99 and memory, exported as Markdown, CSV or JSON.</li>"
                    "<li><b>Agent</b> (Ctrl+5): a phone-agent run, each action drawn where it lands.</li></ol>"
                    "<p>Ctrl+N new chat · Ctrl+O add a model · Ctrl+Q quit. Headless: <code>wb --help</code>.</p>"
                    "<p>Data (settings, chats, attachments): <code>%1</code></p>")
                     .arg(m_dataDir.toHtmlEscaped()));
    box->setStandardButtons(QMessageBox::Close);
    box->show();
}

MainWindow::MainWindow(const QString& dataDir, QWidget* parent)
    : QMainWindow(parent), m_dataDir(dataDir), m_store(new ChatStore), m_bridge(new EngineBridge(this)) {
    initWorkbenchResources();
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("Workbench"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/workbench.svg")));
    QDir().mkpath(m_dataDir);
    m_settings = new QSettings(m_dataDir + QStringLiteral("/workbench.ini"), QSettings::IniFormat, this);
    theme::apply(theme::fromName(m_settings->value(QStringLiteral("view/appearance")).toString()));
    if (!m_store->open(m_dataDir + QStringLiteral("/chats.sqlite"))) m_storeError = m_store->lastError();

    m_tabs = new QTabWidget;
    m_models = new ModelManagerView(m_bridge, m_settings);
    m_tabs->addTab(m_models, tr("Models"));
    m_chat = new ChatView(m_bridge, m_store, m_dataDir);
    m_tabs->addTab(m_chat, tr("Chat"));
    m_perf = new PerfChartsView(m_bridge);
    m_tabs->addTab(m_perf, tr("Performance"));
    m_compare = new CompareView;
    m_compare->setStateDir(m_dataDir);  // targets, workload and last results survive a restart
    m_tabs->addTab(m_compare, tr("Compare"));
    m_agent = new AgentView(m_bridge);
    m_agent->setRunsFolder(m_dataDir + QStringLiteral("/agent-runs"));
    m_tabs->addTab(m_agent, tr("Agent"));
    // A loaded model is for chatting: go there, as a user would next.
    connect(m_bridge, &EngineBridge::loadFinished, this, [this] { m_tabs->setCurrentWidget(m_chat); });
    setCentralWidget(m_tabs);
    buildMenus();

    m_modelStatus = new QLabel(tr("No model loaded"));
    m_statsStatus = new QLabel;
    statusBar()->addWidget(m_modelStatus, 1);
    statusBar()->addPermanentWidget(m_statsStatus);
    // A device fault (a GPU's sticky error) stops the engine until it is reloaded: say so, offer the reload.
    m_reloadButton = new QPushButton(tr("Reload the model"));
    m_reloadButton->setObjectName(QStringLiteral("reloadEngine"));
    m_reloadButton->hide();
    statusBar()->addPermanentWidget(m_reloadButton);
    connect(m_reloadButton, &QPushButton::clicked, this, [this] {
        m_reloadButton->setEnabled(false);
        m_modelStatus->setText(tr("Reloading the model and its devices…"));
        m_bridge->reloadEngine();
    });
    connect(m_bridge, &EngineBridge::engineFaulted, this, [this](const QString& reason) {
        m_modelStatus->setText(tr("The engine faulted: %1. Every request fails until the model is reloaded.").arg(reason));
        m_modelStatus->setStyleSheet(QStringLiteral("color: %1; font-weight: bold;").arg(theme::css(theme::errorText())));
        m_reloadButton->setEnabled(true);
        m_reloadButton->show();
    });
    connect(m_bridge, &EngineBridge::reloadFinished, this, [this](bool ok, const QString& error) {
        m_reloadButton->setEnabled(true);
        if (!ok) {
            m_modelStatus->setText(tr("Reload failed: %1").arg(error));
            return;
        }
        m_reloadButton->hide();
        m_modelStatus->setStyleSheet(QString());
        const LoadedModelInfo& info = m_bridge->loadedModel();
        m_modelStatus->setText(tr("%1 · %2 · %3 (reloaded)").arg(QFileInfo(info.path).fileName(), info.precision, info.device));
    });
    connect(m_bridge, &EngineBridge::unloaded, this, [this] {
        m_reloadButton->hide();
        m_modelStatus->setStyleSheet(QString());
    });
    if (!m_storeError.isEmpty()) statusBar()->showMessage(tr("Chat history unavailable: %1").arg(m_storeError));

    connect(m_bridge, &EngineBridge::loadFinished, this, [this](const LoadedModelInfo& info) {
        m_modelStatus->setText(tr("%1 · %2 · %3").arg(QFileInfo(info.path).fileName(), info.precision, info.device));
        m_compare->setDefaultModelPath(info.path);
    });
    connect(m_bridge, &EngineBridge::unloaded, this, [this] { m_modelStatus->setText(tr("No model loaded")); });
    connect(m_models, &ModelManagerView::lastModelSelected, this, [this](const QString& path) {
        if (!m_bridge->isLoaded())
            m_modelStatus->setText(tr("No model loaded · last session: %1 (Models, Enter loads it)")
                                       .arg(QFileInfo(path).fileName()));
    });
    connect(m_bridge, &EngineBridge::statsSampled, this, [this](const StatsSample& s) {
        const QString preparing = s.numPreparing ? tr(" · %1 preparing").arg(s.numPreparing) : QString();
        m_statsStatus->setText(tr("%1 tok/s · KV %2% · %3 running%4 · RSS %5")
                                   .arg(s.tokensPerSecond, 0, 'f', 0)
                                   .arg(s.kvUsePercent, 0, 'f', 1)
                                   .arg(s.numRunning)
                                   .arg(preparing, humanBytes(s.processRssBytes)));
    });

    restoreGeometry(m_settings->value(QStringLiteral("window/geometry")).toByteArray());
    if (!m_settings->contains(QStringLiteral("window/geometry"))) resize(1200, 800);
    m_tabs->setCurrentIndex(m_settings->value(QStringLiteral("window/tab"), 0).toInt());
}

MainWindow::~MainWindow() {
    // Views go before the store they write to; the bridge hands its engine to a pool thread on destruction.
    delete m_tabs;
    m_tabs = nullptr;
    delete m_store;
}

void MainWindow::closeEvent(QCloseEvent* event) {
    m_settings->setValue(QStringLiteral("window/geometry"), saveGeometry());
    m_settings->setValue(QStringLiteral("window/tab"), m_tabs->currentIndex());
    m_compare->saveState();
    m_settings->sync();
    QMainWindow::closeEvent(event);
}

}  // namespace wbgui
