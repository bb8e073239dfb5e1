// The Models view: a library of model folders and files (kept in QSettings), one card per model read from its
// headers, a memory plan per precision and context before loading, and load / cancel / unload through the
// EngineBridge. Errors are shown in place and name the file and the cause.
#pragma once

#include <QFutureWatcher>
#include <QWidget>

#include "bridge/bridge_types.h"

class QComboBox;
class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSettings;
class QSpinBox;
class QTableWidget;
class QElapsedTimer;
class QTimer;

namespace wbgui {

class EngineBridge;
struct LoadedModelInfo;

class ModelManagerView : public QWidget {
    Q_OBJECT
public:
    ModelManagerView(EngineBridge* bridge, QSettings* settings, QWidget* parent = nullptr);
    ~ModelManagerView() override;

    /// Adds a file or folder to the library (remembered) and rescans.
    void addLibraryEntry(const QString& path);
    void removeLibraryEntry(const QString& path);
    QStringList libraryEntries() const;
    /// Rescans the library on a pool thread; scanFinished follows.
    void rescan();
    bool isScanning() const;

    QList<ModelCard> models() const { return m_cards; }
    bool selectModel(const QString& path);
    ModelCard selectedCard() const;
    MemoryPlan currentPlan() const;

    void setPrecision(const QString& precision);
    void setThreads(int threads);
    /// "cpu" or "cuda", and the tensor-parallel degree (devices) for the next load.
    void setDevice(const QString& device, int parallelDegree);
    void setContextLength(qint64 tokens);

    /// Loads the selected model with the chosen options.
    void loadSelected();
    void cancelLoad();
    void unload();

    QString errorText() const;
    QString statusText() const;

Q_SIGNALS:
    /// After the first scan: the model the last session loaded is selected again (its precision too).
    void lastModelSelected(const QString& path);
    void scanFinished();

private:
    void onScanDone();
    void showCard();
    void updatePlan();
    void updateButtons();
    void setError(const QString& message);
    void onLoadStarted(const QString& path);
    void onLoadFinished(const LoadedModelInfo& info);
    void onLoadFailed(const QString& path, const QString& message);

    EngineBridge* m_bridge;
    QSettings* m_settings;
    QList<ModelCard> m_cards;
    QFutureWatcher<QList<ModelCard>>* m_scanWatcher;
    bool m_rescanPending = false;
    bool m_scanning = false;  // until the result is in m_cards, not just until the pool task ends

    QListWidget* m_libraryList;
    QListWidget* m_modelList;
    bool m_firstScanDone = false;
    QString m_checkAfterScan;  // a library entry just added: say so if the scan finds no model in it
    QLabel* m_card;
    QComboBox* m_precision;
    QSpinBox* m_threads;
    QComboBox* m_device;     // CPU, and CUDA when the module found GPUs (probed off the GUI thread)
    QSpinBox* m_parallel;    // tensor-parallel degree
    QSpinBox* m_context;
    QSpinBox* m_sequences;
    QTableWidget* m_plan;
    QLabel* m_planVerdict;
    QLabel* m_contextNote;
    bool m_contextAuto = true;  // the context follows suggestContextLength until the user sets it
    bool m_settingContext = false;
    void suggestContext();
    QLabel* m_planPerGpu;  // GLM cards: one GPU's share at tensor-parallel degree 2
    QPushButton* m_load;
    QPushButton* m_cancel;
    QPushButton* m_unload;
    QProgressBar* m_progress;
    QLabel* m_status;
    QLabel* m_error;
    QTimer* m_loadTicker;
    QElapsedTimer* m_loadClock;
};

}  // namespace wbgui
