// The phone agent's runs, step by step (issue #15): a run is started here — the loaded model or an
// OpenAI-compatible URL, a task, a folder of screenshots or a live phone through adb, a step limit — or a run
// folder written earlier (by this tab or `wb agent`) is opened. Each step shows its screenshot with the action
// drawn where it lands, the thinking (collapsible), the answer and the parsed action, what was sent to the phone,
// the step's timings and tokens; a timeline goes back and forth. The run goes on a thread of its own (the
// engine's or the server's answer, adb, the disk): the GUI thread never waits on it; each finished step comes
// back as a value, a sensitive tap or a Take_over as a question in the tab, and Stop cancels the request in
// flight. A phone receives nothing until "Execute on the phone" is checked.
#pragma once

#include <QFutureWatcher>
#include <QImage>
#include <QString>
#include <QStringList>
#include <QWidget>
#include <map>
#include <memory>
#include <string>

class QCheckBox;
class QComboBox;
class QFrame;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QThread;
class QToolButton;

namespace wb {
struct AgentStep;
}

namespace wbgui {

class EngineBridge;
class InputPanel;
struct AgentRunControl;

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
    QString executed;    // what the screen source did: "sent: adb shell input tap 540 600", "not executed (replay)"
    QStringList marks;   // each mark's shape, position and label (what the picture shows, as text)
};

struct AgentRunView {
    QString dir, task, target, source, status, error;
    QList<AgentStepView> steps;
};

/// Reads RUN_DIR (trace.json, screens/) and annotates every step: blocking, for a worker thread.
AgentRunView loadAgentRun(const QString& dir);
/// One step as the view shows it, its screenshot annotated: for a worker thread.
AgentStepView makeAgentStepView(const wb::AgentStep& step);

class AgentView : public QWidget {
    Q_OBJECT
public:
    /// `bridge` (optional) offers its loaded model as the agent's model.
    explicit AgentView(EngineBridge* bridge = nullptr, QWidget* parent = nullptr);
    /// Stops a live run and waits for its thread (the request in flight is cancelled first).
    ~AgentView() override;
    /// Where new runs are written (a folder per run, named after its start time).
    void setRunsFolder(const QString& dir) { m_runsFolder = dir; }
    /// Starts reading a run folder; runLoaded() when it is shown (or its error is).
    void openRun(const QString& dir);
    /// Starts a run with the form's settings (Run): false, with the reason in the status line, when something is
    /// missing (no model loaded, no task, no folder).
    bool startRun();
    /// Cancels the live run (Stop): the request in flight is cut short, a pending question is answered "no", the
    /// run folder keeps what was done. runFinished() follows.
    void stopRun();
    bool isRunning() const { return m_running; }
    /// Answers the question the live run waits on (decisionRequested): tap it / go on (true), or not (false).
    void answerDecision(bool goOn);
    /// The live (or last) run's folder.
    const QString& liveRunFolder() const { return m_liveDir; }
    const AgentRunView& run() const { return m_run; }
    int currentStep() const;  // -1: none
    void showStep(int index);
    /// Voice input for the task: a clip recorded or attached here is trimmed by the VAD and transcribed (off the
    /// GUI thread, with progress and Cancel) into the task field, for the person to edit before Run. The speech
    /// models are the chat's (settings voice/asrModel, voice/vadModel or WB_ASR_MODEL, WB_VAD_MODEL).
    InputPanel* voiceInput() const { return m_voice; }

signals:
    void runLoaded(bool ok);
    /// The live run's model and screen source are ready (the phone's serial and screen size in `source`).
    void runStarted(const QString& target, const QString& source);
    /// A step of the live run finished and is in the timeline (index from 0).
    void stepAdded(int index);
    /// The live run waits for the user: a sensitive tap (takeOver false: tap it?) or Take_over / Interact (the user
    /// acts on the phone, then goes on). answerDecision() or the buttons in the tab answer it.
    void decisionRequested(bool takeOver, const QString& message);
    /// The live run ended: its status (finished, max_steps, cancelled, declined, ... or "error") and detail.
    void runFinished(const QString& status, const QString& detail);

private:
    void chooseRun();
    void loaded();
    void updateImage();
    void resizeEvent(QResizeEvent* e) override;
    void updateForm();
    void editApps();
    void addStep(const AgentStepView& step);
    void showDecision(bool takeOver, const QString& message, const AgentStepView& pending);
    void onRunEnded(const QString& status, const QString& detail, const QString& writeError);

    EngineBridge* m_bridge = nullptr;
    QString m_runsFolder;
    // The run form.
    QComboBox* m_targetKind = nullptr;
    QLineEdit* m_url = nullptr;
    QLineEdit* m_modelName = nullptr;
    QLineEdit* m_task = nullptr;
    InputPanel* m_voice = nullptr;
    QComboBox* m_sourceKind = nullptr;
    QLineEdit* m_screens = nullptr;
    QPushButton* m_browse = nullptr;
    QLineEdit* m_serial = nullptr;
    QPushButton* m_apps = nullptr;
    QCheckBox* m_arm = nullptr;
    QSpinBox* m_maxSteps = nullptr;
    QSpinBox* m_maxTokens = nullptr;
    QPushButton* m_runButton = nullptr;
    QPushButton* m_stopButton = nullptr;
    QLabel* m_runStatus = nullptr;
    QFrame* m_pauseBar = nullptr;
    QLabel* m_pauseText = nullptr;
    QPushButton* m_pauseYes = nullptr;
    QPushButton* m_pauseNo = nullptr;
    std::map<std::string, std::string> m_appTable;  // Launch: app name -> package
    // The live run.
    bool m_running = false;
    QThread* m_thread = nullptr;
    std::shared_ptr<AgentRunControl> m_control;
    QString m_liveDir;
    bool m_pendingShown = false;  // the timeline's last entry is the step a question waits on

    // The run shown.
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
