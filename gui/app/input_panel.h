// Attachments for the next message: images (drag-and-drop, paste, file dialog) shown as thumbnails with removal
// and a full-size view, and an audio file shown as a waveform. What the loaded model cannot take is disabled,
// with a tooltip that says why.
#pragma once

#include <QImage>
#include <QVector>
#include <QWidget>

class QLabel;
class QListWidget;
class QListWidgetItem;
class QPushButton;

namespace wbgui {

/// Peak envelope of a decoded audio file, for drawing.
struct Waveform {
    QVector<float> peaks;  // max |sample| per bucket, 0..1
    int sampleRate = 0;
    int channels = 0;
    double durationSec = 0;
    QString error;
};

/// Decodes PCM WAV (8/16/24/32-bit integer, 32-bit float) into `buckets` peaks. Other containers need a
/// decoder this build does not have; the error says so.
Waveform readWaveform(const QString& path, int buckets = 400);

class WaveformWidget : public QWidget {
    Q_OBJECT
public:
    explicit WaveformWidget(QWidget* parent = nullptr);
    void setWaveform(const Waveform& w);
    const Waveform& waveform() const { return m_wave; }
    QSize sizeHint() const override { return {300, 48}; }

protected:
    void paintEvent(QPaintEvent*) override;

private:
    Waveform m_wave;
};

class InputPanel : public QWidget {
    Q_OBJECT
public:
    explicit InputPanel(const QString& pasteDir, QWidget* parent = nullptr);

    /// What the loaded model takes; `reason` becomes the tooltip of what is disabled.
    void setCapabilities(bool images, bool audio, const QString& reason);
    bool acceptsImages() const { return m_images; }
    bool acceptsAudio() const { return m_audio; }

    bool addImageFile(const QString& path);
    bool addImage(const QImage& image);  // pasted: saved under pasteDir so the chat can refer to it later
    bool setAudioFile(const QString& path);
    void removeSelected();
    void clear();
    /// Image paths then the audio path, in the order added.
    QStringList attachments() const;
    int imageCount() const;
    QString audioFile() const { return m_audioPath; }
    QListWidget* thumbnails() const { return m_list; }
    /// Opens the full-size view of the image at `row` (non-modal; returns the dialog).
    QWidget* showFullSize(int row);

Q_SIGNALS:
    void attachmentsChanged();

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void updateEnabled();

    QString m_pasteDir;
    bool m_images = false;
    bool m_audio = false;
    QString m_reason;
    QListWidget* m_list;
    QPushButton* m_addImage;
    QPushButton* m_addAudio;
    QPushButton* m_remove;
    QLabel* m_audioLabel;
    WaveformWidget* m_wave;
    QString m_audioPath;
};

}  // namespace wbgui
