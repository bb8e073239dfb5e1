#include "app/main_window.h"

#include "app/agent_view.h"

#include <QCloseEvent>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
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
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
}

MainWindow::MainWindow(const QString& dataDir, QWidget* parent)
    : QMainWindow(parent), m_dataDir(dataDir), m_store(new ChatStore), m_bridge(new EngineBridge(this)) {
    initWorkbenchResources();
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("Workbench"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/workbench.svg")));
    QDir().mkpath(m_dataDir);
    m_settings = new QSettings(m_dataDir + QStringLiteral("/workbench.ini"), QSettings::IniFormat, this);
    if (!m_store->open(m_dataDir + QStringLiteral("/chats.sqlite"))) m_storeError = m_store->lastError();

    m_tabs = new QTabWidget;
    m_models = new ModelManagerView(m_bridge, m_settings);
    m_tabs->addTab(m_models, tr("Models"));
    m_chat = new ChatView(m_bridge, m_store, m_dataDir);
    m_tabs->addTab(m_chat, tr("Chat"));
    m_perf = new PerfChartsView(m_bridge);
    m_tabs->addTab(m_perf, tr("Performance"));
    m_compare = new CompareView;
    m_tabs->addTab(m_compare, tr("Compare"));
    m_agent = new AgentView(m_bridge);
    m_agent->setRunsFolder(m_dataDir + QStringLiteral("/agent-runs"));
    m_tabs->addTab(m_agent, tr("Agent"));
    // A loaded model is for chatting: go there, as a user would next.
    connect(m_bridge, &EngineBridge::loadFinished, this, [this] { m_tabs->setCurrentWidget(m_chat); });
    setCentralWidget(m_tabs);

    m_modelStatus = new QLabel(tr("No model loaded"));
    m_statsStatus = new QLabel;
    statusBar()->addWidget(m_modelStatus, 1);
    statusBar()->addPermanentWidget(m_statsStatus);
    if (!m_storeError.isEmpty()) statusBar()->showMessage(tr("Chat history unavailable: %1").arg(m_storeError));

    connect(m_bridge, &EngineBridge::loadFinished, this, [this](const LoadedModelInfo& info) {
        m_modelStatus->setText(tr("%1 · %2 · %3").arg(QFileInfo(info.path).fileName(), info.precision, info.device));
        m_compare->setDefaultModelPath(info.path);
    });
    connect(m_bridge, &EngineBridge::unloaded, this, [this] { m_modelStatus->setText(tr("No model loaded")); });
    connect(m_bridge, &EngineBridge::statsSampled, this, [this](const StatsSample& s) {
        m_statsStatus->setText(tr("%1 tok/s · KV %2% · %3 running · RSS %4")
                                   .arg(s.tokensPerSecond, 0, 'f', 0)
                                   .arg(s.kvUsePercent, 0, 'f', 1)
                                   .arg(s.numRunning)
                                   .arg(humanBytes(s.processRssBytes)));
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
    m_settings->sync();
    QMainWindow::closeEvent(event);
}

}  // namespace wbgui
