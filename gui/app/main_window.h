// The workbench window: Models, Chat, Performance and Compare views over one EngineBridge. All state lives under one
// data folder (settings file and chat database), so tests and the packaged app differ only in that folder.
#pragma once

#include <QMainWindow>

#include "app/theme.h"

class QLabel;
class QPushButton;
class QSettings;
class QTabWidget;

namespace wbgui {

class AgentView;
class ChatStore;
class ChatView;
class CompareView;
class EngineBridge;
class ModelManagerView;
class PerfChartsView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const QString& dataDir, QWidget* parent = nullptr);
    ~MainWindow() override;

    EngineBridge* bridge() const { return m_bridge; }
    ModelManagerView* modelManager() const { return m_models; }
    ChatView* chatView() const { return m_chat; }
    PerfChartsView* perfCharts() const { return m_perf; }
    CompareView* compareView() const { return m_compare; }
    AgentView* agentView() const { return m_agent; }
    QTabWidget* tabs() const { return m_tabs; }
    QString dataDir() const { return m_dataDir; }
    /// Non-empty when the chat database could not be opened (the app still runs, without history).
    QString storeError() const { return m_storeError; }

    static QString defaultDataDir();

    /// The Help dialog (F1): the views, their shortcuts, where the data lives.
    void showHelp();
    /// Follow the system palette, or light / dark (View > Appearance; remembered).
    void setAppearance(theme::Appearance a);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();

    QString m_dataDir;
    QString m_storeError;
    QSettings* m_settings;
    ChatStore* m_store;
    EngineBridge* m_bridge;
    QTabWidget* m_tabs;
    ModelManagerView* m_models;
    ChatView* m_chat = nullptr;
    PerfChartsView* m_perf = nullptr;
    CompareView* m_compare = nullptr;
    AgentView* m_agent = nullptr;
    QLabel* m_modelStatus;
    QLabel* m_statsStatus;
    QPushButton* m_reloadButton = nullptr;
};

}  // namespace wbgui
