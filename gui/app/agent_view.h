// The phone agent's runs, step by step (issue #15, first part): a run folder written by `wb agent` (or any
// AgentTraceWriter) opens here — each step's screenshot with the action drawn where it lands, the thinking
// (collapsible), the answer and the parsed action, the step's timings and tokens, a timeline to go back and forth.
// The folder is read and the screenshots annotated on a pool thread: the GUI thread never waits on the disk.
// Running the agent live from this tab (engine or URL, replay or adb) is not built yet: `wb agent` runs it.
#pragma once

#include <QFutureWatcher>
#include <QImage>
#include <QString>
#include <QStringList>
#include <QWidget>

class QLabel;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QToolButton;

namespace wbgui {

/// One step of a run as the view shows it: Qt value types only, made on the worker.
struct AgentStepView {
    int index = 0;
    QImage annotated;    // the screenshot with the action drawn (the plain screenshot if drawing failed)
    QString title;       // "3. Tap [500, 300]"
    QString reasoning;
    QString answer;
    QString action;      // the parsed call, or the parse error
    bool parsed = false;
    QString timings;     // "TTFT 812 ms · thinking ends 2.41 s · total 3.02 s · 1204 + 96 tokens"
    QStringList marks;   // each mark's shape, position and label (what the picture shows, as text)
};

struct AgentRunView {
    QString dir, task, target, source, status, error;
    QList<AgentStepView> steps;
};

/// Reads RUN_DIR (trace.json, screens/) and annotates every step: blocking, for a worker thread.
AgentRunView loadAgentRun(const QString& dir);

class AgentView : public QWidget {
    Q_OBJECT
public:
    explicit AgentView(QWidget* parent = nullptr);
    /// Starts reading a run folder; runLoaded() when it is shown (or its error is).
    void openRun(const QString& dir);
    const AgentRunView& run() const { return m_run; }
    int currentStep() const;  // -1: none
    void showStep(int index);

signals:
    void runLoaded(bool ok);

private:
    void chooseRun();
    void loaded();
    void updateImage();
    void resizeEvent(QResizeEvent* e) override;

    QPushButton* m_open = nullptr;
    QPushButton* m_prev = nullptr;
    QPushButton* m_next = nullptr;
    QLabel* m_header = nullptr;
    QListWidget* m_timeline = nullptr;
    QLabel* m_image = nullptr;
    QLabel* m_action = nullptr;
    QLabel* m_timings = nullptr;
    QToolButton* m_thinkingToggle = nullptr;
    QPlainTextEdit* m_thinking = nullptr;
    QPlainTextEdit* m_answer = nullptr;
    QFutureWatcher<AgentRunView> m_watcher;
    AgentRunView m_run;
};

}  // namespace wbgui
