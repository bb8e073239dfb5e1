// The Compare view: the article's side-by-side comparison, in the GUI. Define targets (this engine at a precision,
// loaded in process; remote OpenAI-compatible servers through the target plugins), one workload, run them one
// after another off the GUI thread, and watch the table (laid out like the article's) and the charts fill in:
// bars per metric across targets, the end-to-end latency CDF, throughput against concurrency. Results save to
// and load from the comparison files of `wb bench --append-to`; the view exports PNG, CSV and Markdown.
#pragma once

#include <QJsonObject>
#include <QList>
#include <QWidget>

#include "bridge/compare_runner.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace wbgui {

class CompareView : public QWidget {
    Q_OBJECT
public:
    enum ResultColumn { ColTarget, ColTtft, ColTokensPerSec, ColMaxConc, ColMemory, ColP99, ColKv, ColStatus };
    enum Metric { MetricTtft, MetricTokensPerSec, MetricMaxConc, MetricMemory, MetricP99 };

    explicit CompareView(QWidget* parent = nullptr);

    /// Remembers the targets, the workload and the last results in `dir` (compare-state.json,
    /// compare-last.json) and restores them now: a restart finds the comparison as it was. API keys are not
    /// written to disk. Empty: nothing is remembered (the default).
    void setStateDir(const QString& dir);
    void setWorkload(const CompareWorkload& w);
    /// Writes the state setStateDir restores (also after each run, target change and opened file).
    void saveState() const;

    CompareRunner* runner() const { return m_runner; }
    QList<CompareTargetSpec> targets() const { return m_specs; }
    CompareWorkload workload() const;
    /// The comparison shown: the loaded file's runs and this session's, in the table's order.
    QJsonObject comparison() const;
    QTableWidget* resultsTable() const { return m_results; }
    QList<QCustomPlot*> plots() const { return m_plots; }
    bool isRunning() const;

    void setDefaultModelPath(const QString& path);
    /// The "Article targets" button: the article's workload (128 in / 64 out, concurrency 1, 4, 8, as the Article
    /// preset button) and, when `models` (else the model field) names the article's inputs (findArticleModels), its
    /// targets in place of the list:
    /// this engine at FP32/BF16/INT8, HF Transformers at FP32/BF16 and llama.cpp at F16/Q8_0, the servers launched
    /// by the run itself. Returns how many targets it set (0: the workload only, the status line says why).
    int applyArticleTargets(const QString& models = QString());
    /// Runs the targets with the workload (the Run button).
    bool run();
    void cancel();
    bool loadFile(const QString& path, QString* error = nullptr);
    bool saveFile(const QString& path, QString* error = nullptr) const;
    bool exportPng(const QString& path);
    bool exportCsv(const QString& path) const;
    bool exportMarkdown(const QString& path) const;
    void clearResults();

Q_SIGNALS:
    void runFinished(bool cancelled);

protected:
    void changeEvent(QEvent* event) override;

private:
    QWidget* buildTargetsBox();
    QWidget* buildWorkloadBox();
    void addEngineTarget();
    void addRemoteTarget();
    void removeSelectedTargets();
    void applyArticlePreset();
    void refreshTargetsTable();
    void refreshPluginHint();
    void setRow(int row, const QJsonObject& run, const QString& status);
    void refreshRow(int row);
    void replot();
    void setRunning(bool running);
    void restoreState();
    QString m_stateDir;
    bool m_restoring = false;

    CompareRunner* m_runner;
    QList<CompareTargetSpec> m_specs;
    // One per results row: the run record and its status text.
    QList<QJsonObject> m_runs;
    QStringList m_status;
    int m_runBase = 0;  // the row of the current run's first target

    QTableWidget* m_targets;
    QLineEdit* m_modelPath;
    QComboBox* m_precision;
    QComboBox* m_plugin;
    QLineEdit* m_url;
    QLineEdit* m_remoteModel;
    QSpinBox* m_vocab;
    QLabel* m_pluginHint;
    QSpinBox* m_input;
    QSpinBox* m_output;
    QLineEdit* m_concurrency;
    QSpinBox* m_requests;
    QDoubleSpinBox* m_rate;
    QDoubleSpinBox* m_p99Limit;
    QLineEdit* m_images;
    QCheckBox* m_sameImage;
    QPushButton* m_runButton;
    QPushButton* m_cancelButton;
    QProgressBar* m_progress;
    QLabel* m_statusLabel;
    QTableWidget* m_results;
    QComboBox* m_metric;
    QComboBox* m_cdfLevel;
    QWidget* m_resultsPane;
    QList<QCustomPlot*> m_plots;  // bars, latency CDF, throughput vs concurrency
};

}  // namespace wbgui
