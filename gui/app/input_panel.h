// Attachments for the next message: images (drag-and-drop, paste, file dialog) shown as thumbnails with removal
// and a full-size view, and one audio clip (a WAV, FLAC, OGG or MP3 file, or a microphone recording) shown as a
// waveform that can be played. What the loaded model cannot take, and what this machine has no device for, is
// disabled, with a tooltip that says why.
#pragma once

#include <QAudioFormat>
#include <QBuffer>
#include <QImage>
#include <QVector>
#include <QWidget>
#include <functional>

#include "app/audio_clip.h"

#include <QFuture>
#include <atomic>
#include <memory>

namespace wb {
class SpeechRecognizer;
class SpeechDetector;
}  // namespace wb

class QAudioSink;
class QAudioSource;
class QIODevice;
class QLabel;
class QListWidget;
class QListWidgetItem;
class QMediaDevices;
class QMimeData;
class QPushButton;
class QTimer;

namespace wbgui {

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
    /// Audio attachments by extension (WAV, FLAC, OGG, MP3); every other attachment is an image.
    static bool isAudioPath(const QString& path);
    explicit InputPanel(const QString& pasteDir, QWidget* parent = nullptr);
    ~InputPanel() override;

    /// What the loaded model takes; `reason` becomes the tooltip of what is disabled.
    void setCapabilities(bool images, bool audio, const QString& reason);
    bool acceptsImages() const { return m_images; }
    bool acceptsAudio() const { return m_audio; }

    /// Attaches an image file and returns at once: false only when images are not accepted or the file is not an
    /// image Qt can read (told from its header, nothing decoded; imageFailed() says so too). The item shows a
    /// placeholder until the thumbnail, decoded on a pool thread, arrives; then imageReady() follows, or, for a
    /// file that does not decode, imageFailed() and the item goes. A file that is neither PNG nor JPEG (what the
    /// engine decodes) is converted to a PNG under pasteDir on that thread, and the item refers to the PNG.
    bool addImageFile(const QString& path);
    /// Pasted or dropped image data: saved as a PNG under pasteDir on a pool thread (so the chat can refer to it
    /// later), shown at once as a placeholder, attached when the file is written.
    bool addImage(const QImage& image);
    /// Images whose file is still being written (a paste being saved, a conversion to PNG): attachments() leaves
    /// them out until it is there.
    bool isPreparingImages() const;
    /// Images whose thumbnail, conversion or save is still running.
    int pendingImages() const;
    /// Starts decoding `path` on a pool thread and returns at once (false only when audio is not accepted);
    /// audioDecoded() follows, with the waveform or the error shown in place.
    bool setAudioFile(const QString& path);
    void removeSelected();
    void clear();
    /// Image paths then the audio path, in the order added.
    QStringList attachments() const;
    int imageCount() const;
    QString audioFile() const { return m_audioPath; }
    /// The decoded clip behind audioFile() (empty while decoding, after an error, or with no audio).
    const AudioClip& audioClip() const { return m_clip; }
    /// The text beside the waveform: name, length and format, "Decoding…", "Recording…", or the error.
    QString audioStatus() const;
    bool isDecoding() const { return m_decoding; }
    bool isRecording() const { return m_source != nullptr; }
    bool isPlaying() const { return m_sink != nullptr; }

    /// Microphone: records into the clip, saved as a WAV under pasteDir when stopped. False where audio is not
    /// accepted or no input device opens (the record button is then disabled and says why).
    bool startRecording();
    void stopRecording();
    /// Plays the clip on the default output device; false where there is none or no clip.
    bool startPlayback();
    void stopPlayback();
    /// Voice input: a Whisper model (HF folder or whisper.cpp ggml file) and optionally a Silero VAD; empty paths
    /// turn it off. Defaults come from the settings voice/asrModel and voice/vadModel (or WB_ASR_MODEL and
    /// WB_VAD_MODEL). With a Whisper model a clip can be recorded or attached for transcription even when the
    /// chat model takes no audio (the clip is then not an attachment of the message).
    void setSpeechModels(const QString& whisperModel, const QString& vadModel);
    QString speechModel() const { return m_asrPath; }
    bool canTranscribe() const;
    bool isTranscribing() const { return m_transcribing; }
    /// Transcribes the clip on a pool thread (the models are loaded there on first use): silence trimmed and the
    /// speech cut at pauses when a VAD is set; transcriptionProgress() while it runs, transcriptionFinished() at the
    /// end. False when there is no clip or no speech model, or one is already running.
    bool transcribeClip();
    /// Stops a running transcription (at the next decoder step): transcriptionFinished follows with the error
    /// "cancelled". The Transcribe button reads "Cancel" while one runs.
    void cancelTranscription();
    /// Voice input alone (the agent view's task): no images (their list and buttons hidden), and every clip
    /// recorded or attached is transcribed as soon as it is there.
    void setVoiceOnly(bool on);
    bool isVoiceOnly() const { return m_voiceOnly; }
    /// Audio dropped here (or on the chat composer, through dropMime) is transcribed as soon as it is decoded,
    /// when a speech model is set. Default from the setting voice/transcribeOnDrop (on).
    void setTranscribeOnDrop(bool on) { m_transcribeOnDrop = on; }
    bool transcribeOnDrop() const { return m_transcribeOnDrop; }
    /// Whether a drag carries what this panel takes (images for an image model, audio for an audio model or a
    /// speech model); dropMime() takes it as a drop here would.
    bool canAccept(const QMimeData* md) const;
    void dropMime(const QMimeData* md);
    QListWidget* thumbnails() const { return m_list; }
    /// Opens the full-size view of the image at `row` (non-modal; returns the dialog).
    QWidget* showFullSize(int row);

Q_SIGNALS:
    void attachmentsChanged();
    /// A setAudioFile() finished: `error` is empty when the clip was decoded.
    void audioDecoded(const QString& path, const QString& error);
    void recordingFinished(const QString& path, const QString& error);
    /// Fraction (0..1) of a transcribeClip() done.
    void transcriptionProgress(double fraction);
    /// A transcribeClip() ended: the text (to put in the prompt for the person to check), or the error.
    void transcriptionFinished(const QString& text, const QString& error);
    /// An addImageFile()/addImage() finished: `path` is the file the chat will refer to (a converted or pasted
    /// image's PNG under pasteDir).
    void imageReady(const QString& path);
    /// An image could not be attached (`path`: the file given, empty for pasted data); its item is gone.
    void imageFailed(const QString& path, const QString& error);

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void updateEnabled();
    void showClip(const QString& path, const AudioClip& clip);
    void showAudioError(const QString& error);
    void clearAudio();
    void readMicrophone();
    struct ImageJob;
    /// Runs `job` on a pool thread for the item with `id`; the item is updated (or removed) when it lands, unless
    /// it is gone by then (removed, cleared, or the panel destroyed: the watcher is a child of the panel).
    void startImageJob(quint64 id, const QString& source, std::function<ImageJob()> job);
    QListWidgetItem* imageItem(quint64 id) const;
    QString newPasteFile(const QString& stem) const;

    QString m_pasteDir;
    quint64 m_nextImageId = 0;  // ties a thumbnail/conversion/save job to its list item
    mutable quint64 m_pasteSerial = 0;
    bool m_images = false;
    bool m_audio = false;
    QString m_reason;
    QListWidget* m_list;
    QPushButton* m_addImage;
    QPushButton* m_addAudio;
    QPushButton* m_remove;
    QPushButton* m_record;
    QPushButton* m_play;
    QPushButton* m_transcribe;
    QLabel* m_audioLabel;
    WaveformWidget* m_wave;
    QString m_audioPath;
    AudioClip m_clip;
    bool m_decoding = false;
    quint64 m_decodeSerial = 0;  // a decode that finishes after a newer request, or a clear, is dropped
    QMediaDevices* m_devices;

    QAudioSource* m_source = nullptr;
    QIODevice* m_sourceIo = nullptr;
    QAudioFormat m_sourceFormat;
    AudioClip m_recording;
    QTimer* m_recordRefresh;

    QAudioSink* m_sink = nullptr;
    QBuffer m_playBuffer;

    QString m_asrPath, m_vadPath;
    std::shared_ptr<const wb::SpeechRecognizer> m_asr;  // loaded on the first transcription, then kept
    std::shared_ptr<const wb::SpeechDetector> m_vad;
    bool m_transcribing = false;
    std::shared_ptr<std::atomic<bool>> m_cancel;  // the running transcription's stop flag
    bool m_voiceOnly = false;
    bool m_transcribeOnDrop = true;
    QString m_autoTranscribe;  // a clip being decoded that is to be transcribed once it is there
    QFuture<void> m_transcribeFuture;  // waited for by the destructor: its progress callback posts to this panel
};

}  // namespace wbgui
