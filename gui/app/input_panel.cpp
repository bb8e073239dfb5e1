#include "app/input_panel.h"

#include "app/image_viewer.h"

#include <QAudioDevice>
#include <QAudioSink>
#include <QAudioSource>
#include <QDateTime>
#include <QDialog>
#include <QDir>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QImageReader>
#include <QLabel>
#include <QListWidget>
#include <QMediaDevices>
#include <QMimeData>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QTimer>
#include <QStyle>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <QSettings>

#include "api/speech.h"
#include <span>

#include "api/image_format.h"

namespace wbgui {

static bool isImagePath(const QString& p) {
    const QString s = QFileInfo(p).suffix().toLower();
    return QImageReader::supportedImageFormats().contains(s.toLatin1());
}

bool InputPanel::isAudioPath(const QString& p) {
    static const QStringList kAudio = {"wav", "flac", "ogg", "mp3"};
    return kAudio.contains(QFileInfo(p).suffix().toLower());
}

WaveformWidget::WaveformWidget(QWidget* parent) : QWidget(parent) { setMinimumHeight(40); }

void WaveformWidget::setWaveform(const Waveform& w) {
    m_wave = w;
    update();
}

void WaveformWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().base());
    if (m_wave.peaks.isEmpty()) return;
    p.setPen(QColor(0x1f, 0x6f, 0xb5));
    const int n = m_wave.peaks.size();
    const double mid = height() / 2.0;
    for (int x = 0; x < width(); ++x) {
        const float peak = m_wave.peaks[qMin(n - 1, x * n / qMax(1, width()))];
        p.drawLine(QPointF(x, mid - peak * mid), QPointF(x, mid + peak * mid));
    }
}

InputPanel::InputPanel(const QString& pasteDir, QWidget* parent) : QWidget(parent), m_pasteDir(pasteDir) {
    setObjectName(QStringLiteral("inputPanel"));
    m_list = new QListWidget;
    m_list->setObjectName(QStringLiteral("attachments"));
    m_list->setViewMode(QListView::IconMode);
    m_list->setIconSize(QSize(56, 56));
    m_list->setFixedHeight(84);
    m_list->setMovement(QListView::Static);
    m_list->setFlow(QListView::LeftToRight);
    m_list->setWrapping(false);
    m_addImage = new QPushButton(tr("Image…"));
    m_addAudio = new QPushButton(tr("Audio…"));
    m_remove = new QPushButton(tr("Remove"));
    m_record = new QPushButton(tr("Record"));
    m_record->setObjectName(QStringLiteral("recordAudio"));
    m_play = new QPushButton(tr("Play"));
    m_play->setObjectName(QStringLiteral("playAudio"));
    m_transcribe = new QPushButton(tr("Transcribe"));
    m_transcribe->setObjectName(QStringLiteral("transcribeAudio"));
    m_audioLabel = new QLabel;
    m_audioLabel->setObjectName(QStringLiteral("audioStatus"));
    m_audioLabel->setWordWrap(true);
    m_audioLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_wave = new WaveformWidget;
    m_wave->setObjectName(QStringLiteral("waveform"));
    m_wave->hide();
    m_devices = new QMediaDevices(this);
    m_recordRefresh = new QTimer(this);
    m_recordRefresh->setInterval(100);  // the live waveform is redrawn at 10 Hz, not per microphone chunk
    auto* buttons = new QVBoxLayout;
    buttons->addWidget(m_addImage);
    buttons->addWidget(m_addAudio);
    buttons->addWidget(m_remove);
    auto* audioButtons = new QHBoxLayout;
    audioButtons->addWidget(m_record);
    audioButtons->addWidget(m_play);
    audioButtons->addWidget(m_transcribe);
    audioButtons->addStretch();
    auto* audio = new QVBoxLayout;
    audio->addLayout(audioButtons);
    audio->addWidget(m_audioLabel);
    audio->addWidget(m_wave);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(buttons);
    layout->addWidget(m_list, 2);
    layout->addLayout(audio, 1);

    connect(m_addImage, &QPushButton::clicked, this, [this] {
        QFileDialog dialog(this, tr("Attach images"));
        dialog.setFileMode(QFileDialog::ExistingFiles);
        dialog.setNameFilter(tr("Images (*.png *.jpg *.jpeg *.gif *.bmp *.webp)"));
        dialog.setOption(QFileDialog::DontUseNativeDialog);  // Qt's own dialog previews as icons
        dialog.setViewMode(QFileDialog::Detail);
        if (dialog.exec())
            for (const QString& f : dialog.selectedFiles()) addImageFile(f);
    });
    connect(m_addAudio, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Attach audio"), QString(),
                                                       tr("Audio (*.wav *.flac *.ogg *.mp3)"));
        if (!f.isEmpty()) setAudioFile(f);
    });
    connect(m_remove, &QPushButton::clicked, this, &InputPanel::removeSelected);
    connect(m_record, &QPushButton::clicked, this, [this] { isRecording() ? stopRecording() : void(startRecording()); });
    connect(m_play, &QPushButton::clicked, this, [this] { isPlaying() ? stopPlayback() : void(startPlayback()); });
    connect(m_transcribe, &QPushButton::clicked, this,
            [this] { m_transcribing ? cancelTranscription() : void(transcribeClip()); });
    connect(this, &InputPanel::transcriptionProgress, this, [this](double f) {
        if (m_transcribing) m_audioLabel->setText(tr("Transcribing… %1 %").arg(int(f * 100)));
    });
    {
        QSettings settings;
        const QString asr = qEnvironmentVariable("WB_ASR_MODEL", settings.value("voice/asrModel").toString());
        const QString vad = qEnvironmentVariable("WB_VAD_MODEL", settings.value("voice/vadModel").toString());
        m_asrPath = asr;
        m_vadPath = vad;
        m_transcribeOnDrop = settings.value("voice/transcribeOnDrop", true).toBool();
    }
    connect(m_recordRefresh, &QTimer::timeout, this, [this] { m_wave->setWaveform(waveformOf(m_recording)); });
    // Plugging in a headset or starting the sound server enables the buttons without a restart.
    connect(m_devices, &QMediaDevices::audioInputsChanged, this, &InputPanel::updateEnabled);
    connect(m_devices, &QMediaDevices::audioOutputsChanged, this, &InputPanel::updateEnabled);
    connect(m_list, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) { showFullSize(m_list->row(item)); });
    setCapabilities(false, false, tr("No model is loaded."));
}

InputPanel::~InputPanel() {
    if (m_cancel) m_cancel->store(true);  // closing does not wait for the whole transcription
    m_transcribeFuture.waitForFinished();
    // The sink reads m_playBuffer, a member that dies before the child objects do.
    stopPlayback();
    if (m_source) m_source->stop();
}

void InputPanel::setCapabilities(bool images, bool audio, const QString& reason) {
    m_images = images && !m_voiceOnly;
    m_audio = audio;
    m_reason = reason;
    updateEnabled();
}

void InputPanel::updateEnabled() {
    m_addImage->setEnabled(m_images);
    m_addImage->setToolTip(m_images ? tr("Attach images (or drop or paste them here)") : m_reason);
    const bool audioIn = m_audio || !m_asrPath.isEmpty();  // for the model, or for transcription
    m_addAudio->setEnabled(audioIn);
    m_addAudio->setToolTip(audioIn ? tr("Attach a WAV, FLAC, OGG or MP3 file") : m_reason);
    m_list->setToolTip(m_images ? tr("Double-click for the full-size view") : m_reason);
    setAcceptDrops(m_images || audioIn);
    m_transcribe->setEnabled(canTranscribe() || m_transcribing);
    m_transcribe->setText(m_transcribing ? tr("Cancel") : tr("Transcribe"));
    m_transcribe->setToolTip(m_transcribing        ? tr("Stop the transcription")
                             : m_asrPath.isEmpty() ? tr("No speech model (settings voice/asrModel or WB_ASR_MODEL)")
                                                   : tr("Transcribe the clip into the prompt with %1")
                                                         .arg(QFileInfo(m_asrPath).fileName()));
    m_remove->setEnabled(m_list->count() > 0 || !m_audioPath.isEmpty());

    // The model's rule comes first: a device is no use for an input the model cannot take.
    const bool haveInput = !QMediaDevices::audioInputs().isEmpty();
    m_record->setText(isRecording() ? tr("Stop") : tr("Record"));
    m_record->setEnabled(isRecording() || (audioIn && haveInput && !m_decoding));
    m_record->setToolTip(!audioIn      ? m_reason
                         : !haveInput  ? tr("No microphone: this machine has no audio input device")
                         : isRecording() ? tr("Stop recording and attach the clip")
                                         : tr("Record from %1").arg(QMediaDevices::defaultAudioInput().description()));
    const bool haveOutput = !QMediaDevices::audioOutputs().isEmpty();
    const bool haveClip = m_clip.isValid() && !isRecording();
    m_play->setText(isPlaying() ? tr("Stop") : tr("Play"));
    m_play->setEnabled(isPlaying() || (haveOutput && haveClip));
    m_play->setToolTip(!haveOutput ? tr("No playback: this machine has no audio output device")
                       : !haveClip ? tr("Attach or record a clip to play it")
                       : isPlaying() ? tr("Stop playback")
                                     : tr("Play on %1").arg(QMediaDevices::defaultAudioOutput().description()));
}

namespace {

constexpr int kImagePathRole = Qt::UserRole;        // the file the chat refers to
constexpr int kImageStateRole = Qt::UserRole + 1;   // ImageState
constexpr int kImageIdRole = Qt::UserRole + 2;      // the job's id
enum ImageState { ImageReady = 0, ImageThumbnailPending = 1, ImageFilePending = 2 };
constexpr int kThumbSide = 112;

/// The engine decodes PNG and JPEG; told by their magic bytes, as the engine does.
bool isPngOrJpeg(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return false;
    const QByteArray head = f.read(16);
    const auto* raw = reinterpret_cast<const uint8_t*>(head.constData());
    return wb::detectImageFormat(std::span<const uint8_t>(raw, size_t(head.size()))) != wb::ImageFormat::Unknown;
}

QImage thumbnailOf(const QImage& img) {
    return img.scaled(kThumbSide, kThumbSide, Qt::KeepAspectRatio, Qt::SmoothTransformation);
}

}  // namespace

/// What a pool thread hands back for an image item. Runs with value captures only: never touches the panel.
struct InputPanel::ImageJob {
    QString path;   // the file the chat refers to (the source, or the PNG written)
    QImage thumb;
    QSize size;     // full size, upright
    QString error;
};

QString InputPanel::newPasteFile(const QString& stem) const {
    return m_pasteDir + QStringLiteral("/%1-%2-%3.png").arg(stem).arg(QDateTime::currentMSecsSinceEpoch()).arg(++m_pasteSerial);
}

QListWidgetItem* InputPanel::imageItem(quint64 id) const {
    for (int i = 0; i < m_list->count(); ++i)
        if (m_list->item(i)->data(kImageIdRole).toULongLong() == id) return m_list->item(i);
    return nullptr;
}

void InputPanel::startImageJob(quint64 id, const QString& source, std::function<ImageJob()> job) {
    auto* watcher = new QFutureWatcher<ImageJob>(this);
    connect(watcher, &QFutureWatcher<ImageJob>::finished, this, [this, watcher, id, source] {
        watcher->deleteLater();
        QListWidgetItem* item = imageItem(id);
        if (!item) return;  // removed or cleared meanwhile
        const ImageJob r = watcher->result();
        if (!r.error.isEmpty()) {
            delete item;
            updateEnabled();
            Q_EMIT attachmentsChanged();
            Q_EMIT imageFailed(source, r.error);
            return;
        }
        item->setIcon(QIcon(QPixmap::fromImage(r.thumb)));
        item->setData(kImagePathRole, r.path);
        item->setData(kImageStateRole, int(ImageReady));
        item->setToolTip(QStringLiteral("%1 (%2×%3)").arg(r.path).arg(r.size.width()).arg(r.size.height()));
        Q_EMIT attachmentsChanged();
        Q_EMIT imageReady(r.path);
    });
    watcher->setFuture(QtConcurrent::run(std::move(job)));
}

bool InputPanel::addImageFile(const QString& path) {
    if (!m_images) return false;
    const QString name = QFileInfo(path).fileName();
    {
        // The header only (canRead() decodes nothing), so the callers still get a synchronous answer.
        QImageReader probe(path);
        if (!probe.canRead()) {
            Q_EMIT imageFailed(path, tr("%1 is not an image this build can read (%2)").arg(name, probe.errorString()));
            return false;
        }
    }
    // Shown at once; decoding a 1080x2400 PNG takes longer than a frame, so the thumbnail comes from a pool thread.
    // Its first bytes tell whether the engine takes it as it is, or a PNG copy must be written first (the item is
    // then no attachment until the copy is there).
    const bool native = isPngOrJpeg(path);
    const quint64 id = ++m_nextImageId;
    auto* item = new QListWidgetItem(style()->standardIcon(QStyle::SP_FileIcon), name);
    item->setData(kImagePathRole, path);
    item->setData(kImageStateRole, int(native ? ImageThumbnailPending : ImageFilePending));
    item->setData(kImageIdRole, id);
    item->setToolTip(tr("%1 (loading…)").arg(path));
    m_list->addItem(item);
    updateEnabled();
    Q_EMIT attachmentsChanged();
    const QString converted = native ? QString() : newPasteFile(QFileInfo(path).completeBaseName() + QStringLiteral("-converted"));
    startImageJob(id, path, [path, native, converted] {
        ImageJob r;
        QImageReader reader(path);
        reader.setAutoTransform(true);  // upright, as the engine sees it (EXIF orientation)
        if (native) {
            r.path = path;
            QSize size = reader.size();
            if (reader.transformation() & QImageIOHandler::TransformationRotate90) size.transpose();
            if (size.isValid() && !size.isEmpty()) reader.setScaledSize(reader.size().scaled(kThumbSide, kThumbSide, Qt::KeepAspectRatio));
            r.thumb = reader.read();
            r.size = size;
            if (r.thumb.isNull()) r.error = tr("Cannot read the image %1: %2").arg(path, reader.errorString());
            return r;
        }
        // Other formats (BMP, GIF, WebP...): the engine takes PNG and JPEG, so the chat refers to a PNG copy.
        const QImage img = reader.read();
        if (img.isNull()) {
            r.error = tr("Cannot read the image %1: %2").arg(path, reader.errorString());
            return r;
        }
        QDir().mkpath(QFileInfo(converted).path());
        if (!img.save(converted, "PNG")) {
            r.error = tr("Cannot convert %1 to PNG: writing %2 failed").arg(path, converted);
            return r;
        }
        r.path = converted;
        r.size = img.size();
        r.thumb = thumbnailOf(img);
        return r;
    });
    return true;
}

bool InputPanel::addImage(const QImage& image) {
    if (!m_images || image.isNull()) return false;
    const QString path = newPasteFile(QStringLiteral("pasted"));
    const quint64 id = ++m_nextImageId;
    auto* item = new QListWidgetItem(style()->standardIcon(QStyle::SP_FileIcon), QFileInfo(path).fileName());
    item->setData(kImagePathRole, path);
    item->setData(kImageStateRole, int(ImageFilePending));  // not written yet: not an attachment until it is
    item->setData(kImageIdRole, id);
    item->setToolTip(tr("%1 (saving…)").arg(path));
    m_list->addItem(item);
    updateEnabled();
    Q_EMIT attachmentsChanged();
    // Encoding a screenshot-sized PNG takes a while: on a pool thread, from a copy that shares the pixels.
    startImageJob(id, QString(), [image, path] {
        ImageJob r;
        QDir().mkpath(QFileInfo(path).path());
        if (!image.save(path, "PNG")) {
            r.error = tr("Cannot save the pasted image to %1").arg(path);
            return r;
        }
        r.path = path;
        r.size = image.size();
        r.thumb = thumbnailOf(image);
        return r;
    });
    return true;
}

bool InputPanel::isPreparingImages() const {
    for (int i = 0; i < m_list->count(); ++i)
        if (m_list->item(i)->data(kImageStateRole).toInt() == ImageFilePending) return true;
    return false;
}

int InputPanel::pendingImages() const {
    int n = 0;
    for (int i = 0; i < m_list->count(); ++i) n += m_list->item(i)->data(kImageStateRole).toInt() != ImageReady;
    return n;
}

bool InputPanel::setAudioFile(const QString& path) {
    if (!m_audio && m_asrPath.isEmpty()) return false;
    stopPlayback();
    if (isRecording()) stopRecording();
    clearAudio();
    m_decoding = true;
    const quint64 serial = ++m_decodeSerial;
    m_audioLabel->setText(tr("Decoding %1…").arg(QFileInfo(path).fileName()));
    updateEnabled();
    // Decoding a long MP3 takes seconds; the GUI thread only gets the result.
    auto* watcher = new QFutureWatcher<AudioClip>(this);
    connect(watcher, &QFutureWatcher<AudioClip>::finished, this, [this, watcher, serial, path] {
        watcher->deleteLater();
        if (serial != m_decodeSerial) return;
        m_decoding = false;
        const AudioClip clip = watcher->result();
        if (clip.isValid()) showClip(path, clip);
        else showAudioError(clip.error);
        const bool transcribe = clip.isValid() && (m_voiceOnly || m_autoTranscribe == path);
        m_autoTranscribe.clear();
        Q_EMIT audioDecoded(path, clip.error);
        if (transcribe) transcribeClip();
    });
    m_autoTranscribe.clear();
    watcher->setFuture(QtConcurrent::run(&decodeAudioFile, path));
    return true;
}

void InputPanel::showClip(const QString& path, const AudioClip& clip) {
    m_clip = clip;
    m_audioPath = path;
    m_audioLabel->setStyleSheet(QString());
    m_audioLabel->setText(tr("%1 — %2 s, %3 Hz, %4 ch")
                              .arg(QFileInfo(path).fileName())
                              .arg(clip.durationSec(), 0, 'f', 1)
                              .arg(clip.sampleRate)
                              .arg(clip.channels));
    m_wave->setWaveform(waveformOf(clip));
    m_wave->show();
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

void InputPanel::showAudioError(const QString& error) {
    clearAudio();
    m_audioLabel->setStyleSheet(QStringLiteral("color: #b00020;"));
    m_audioLabel->setText(error);
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

void InputPanel::clearAudio() {
    stopPlayback();
    m_clip = AudioClip();
    m_audioPath.clear();
    m_audioLabel->clear();
    m_audioLabel->setStyleSheet(QString());
    m_wave->setWaveform(Waveform());
    m_wave->hide();
}

QString InputPanel::audioStatus() const { return m_audioLabel->text(); }

bool InputPanel::startRecording() {
    if ((!m_audio && m_asrPath.isEmpty()) || isRecording() || m_decoding) return false;
    const QAudioDevice device = QMediaDevices::defaultAudioInput();
    if (device.isNull()) return false;
    clearAudio();
    // Mono at the device's own rate; whatever sample type it gives is normalised to float as it arrives.
    QAudioFormat format = device.preferredFormat();
    format.setChannelCount(1);
    if (!device.isFormatSupported(format)) format = device.preferredFormat();
    m_sourceFormat = format;
    m_recording = AudioClip();
    m_recording.sampleRate = format.sampleRate();
    m_recording.channels = format.channelCount();
    m_source = new QAudioSource(device, format, this);
    m_sourceIo = m_source->start();
    if (!m_sourceIo || m_source->error() != QAudio::NoError) {
        const QString why = tr("The microphone (%1) did not open").arg(device.description());
        delete m_source;
        m_source = nullptr;
        m_sourceIo = nullptr;
        showAudioError(why);
        return false;
    }
    connect(m_sourceIo, &QIODevice::readyRead, this, &InputPanel::readMicrophone);
    m_audioLabel->setText(tr("Recording from %1…").arg(device.description()));
    m_wave->show();
    m_recordRefresh->start();
    updateEnabled();
    return true;
}

void InputPanel::readMicrophone() {
    if (!m_sourceIo) return;
    const QByteArray bytes = m_sourceIo->readAll();
    const int sampleBytes = m_sourceFormat.bytesPerSample();
    if (sampleBytes <= 0) return;
    const qsizetype n = bytes.size() / sampleBytes;
    const qsizetype old = m_recording.samples.size();
    m_recording.samples.resize(old + n);
    for (qsizetype i = 0; i < n; ++i)
        m_recording.samples[old + i] = m_sourceFormat.normalizedSampleValue(bytes.constData() + i * sampleBytes);
}

void InputPanel::stopRecording() {
    if (!isRecording()) return;
    readMicrophone();
    m_source->stop();
    m_source->deleteLater();
    m_source = nullptr;
    m_sourceIo = nullptr;
    m_recordRefresh->stop();
    AudioClip clip = std::move(m_recording);
    m_recording = AudioClip();
    if (clip.frames() == 0) {
        showAudioError(tr("The microphone gave no audio"));
        Q_EMIT recordingFinished(QString(), m_audioLabel->text());
        return;
    }
    // Saved like a pasted image, so the chat's attachment is a file it can refer to later; written off the GUI
    // thread since a long take is megabytes.
    QDir().mkpath(m_pasteDir);
    const QString path = m_pasteDir + QStringLiteral("/recording-%1.wav").arg(QDateTime::currentMSecsSinceEpoch());
    m_decoding = true;
    const quint64 serial = ++m_decodeSerial;
    m_audioLabel->setText(tr("Saving the recording…"));
    updateEnabled();
    auto* watcher = new QFutureWatcher<QString>(this);
    connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher, serial, path, clip] {
        watcher->deleteLater();
        if (serial != m_decodeSerial) return;
        m_decoding = false;
        const QString error = watcher->result();
        if (error.isEmpty()) showClip(path, clip);
        else showAudioError(error);
        Q_EMIT recordingFinished(path, error);
        if (error.isEmpty() && m_voiceOnly) transcribeClip();
    });
    watcher->setFuture(QtConcurrent::run([clip, path] { return writeAudioFile(clip, path); }));
}

bool InputPanel::startPlayback() {
    if (isPlaying() || !m_clip.isValid() || isRecording()) return false;
    const QAudioDevice device = QMediaDevices::defaultAudioOutput();
    if (device.isNull()) return false;
    QAudioFormat format;
    format.setSampleRate(m_clip.sampleRate);
    format.setChannelCount(m_clip.channels);
    format.setSampleFormat(QAudioFormat::Float);
    QByteArray bytes;
    if (device.isFormatSupported(format)) {
        bytes = QByteArray(reinterpret_cast<const char*>(m_clip.samples.constData()), m_clip.samples.size() * sizeof(float));
    } else {
        // Every output takes 16-bit PCM; the sound server resamples if the rate is not its own.
        format.setSampleFormat(QAudioFormat::Int16);
        bytes.resize(m_clip.samples.size() * sizeof(qint16));
        auto* out = reinterpret_cast<qint16*>(bytes.data());
        for (qsizetype i = 0; i < m_clip.samples.size(); ++i)
            out[i] = qint16(qBound(-1.0f, m_clip.samples[i], 1.0f) * 32767.0f);
    }
    m_playBuffer.close();
    m_playBuffer.setData(bytes);
    m_playBuffer.open(QIODevice::ReadOnly);
    m_sink = new QAudioSink(device, format, this);
    connect(m_sink, &QAudioSink::stateChanged, this, [this](QAudio::State state) {
        // Idle: the buffer has run out, i.e. the clip has been played to the end.
        if (state == QAudio::IdleState || (state == QAudio::StoppedState && m_sink && m_sink->error() != QAudio::NoError))
            QTimer::singleShot(0, this, &InputPanel::stopPlayback);
    });
    m_sink->start(&m_playBuffer);
    if (m_sink->error() != QAudio::NoError) {
        delete m_sink;
        m_sink = nullptr;
        m_playBuffer.close();
        return false;
    }
    updateEnabled();
    return true;
}

void InputPanel::stopPlayback() {
    if (!m_sink) return;
    QAudioSink* sink = m_sink;
    m_sink = nullptr;
    sink->disconnect(this);
    sink->stop();
    sink->deleteLater();
    m_playBuffer.close();
    updateEnabled();
}

void InputPanel::removeSelected() {
    if (QListWidgetItem* item = m_list->currentItem()) {
        delete item;
    } else if (!m_audioPath.isEmpty()) {
        clearAudio();
    }
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

void InputPanel::clear() {
    m_list->clear();
    if (isRecording()) stopRecording();
    ++m_decodeSerial;  // a decode or save still running is dropped when it lands
    m_decoding = false;
    clearAudio();
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

QStringList InputPanel::attachments() const {
    QStringList out;
    for (int i = 0; i < m_list->count(); ++i)
        if (m_list->item(i)->data(kImageStateRole).toInt() != ImageFilePending)
            out.append(m_list->item(i)->data(kImagePathRole).toString());
    if (!m_audioPath.isEmpty() && m_audio) out.append(m_audioPath);  // else the clip is for transcription only
    return out;
}

void InputPanel::setSpeechModels(const QString& whisperModel, const QString& vadModel) {
    if (whisperModel != m_asrPath) m_asr.reset();
    if (vadModel != m_vadPath) m_vad.reset();
    m_asrPath = whisperModel;
    m_vadPath = vadModel;
    updateEnabled();
}

bool InputPanel::canTranscribe() const {
    return !m_asrPath.isEmpty() && m_clip.isValid() && !m_audioPath.isEmpty() && !m_transcribing && !isRecording() &&
           !m_decoding;
}

bool InputPanel::transcribeClip() {
    if (!canTranscribe()) return false;
    m_transcribing = true;
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    updateEnabled();
    m_audioLabel->setText(tr("Transcribing %1…").arg(QFileInfo(m_audioPath).fileName()));
    struct Outcome {
        QString text, error;
        std::shared_ptr<const wb::SpeechRecognizer> asr;
        std::shared_ptr<const wb::SpeechDetector> vad;
    };
    auto outcome = std::make_shared<Outcome>();
    outcome->asr = m_asr;
    outcome->vad = m_vad;
    const std::string asrPath = m_asrPath.toStdString(), vadPath = m_vadPath.toStdString();
    const std::string clipPath = m_audioPath.toStdString();
    auto cancel = m_cancel;
    // Everything heavy (loading the models, decoding and resampling, the VAD, Whisper) runs on the pool thread;
    // the GUI thread only gets progress events and the result.
    auto job = [this, outcome, asrPath, vadPath, clipPath, cancel] {
        if (!outcome->asr) {
            auto r = wb::SpeechRecognizer::load(asrPath);
            if (!r) return void(outcome->error = QString::fromStdString(r.error().message));
            outcome->asr = std::shared_ptr<const wb::SpeechRecognizer>(std::move(*r));
        }
        if (!outcome->vad && !vadPath.empty()) {
            auto v = wb::SpeechDetector::load(vadPath);
            if (!v) return void(outcome->error = QString::fromStdString(v.error().message));
            outcome->vad = *v;
        }
        auto audio = wb::loadSpeechAudio(clipPath);
        if (!audio) return void(outcome->error = QString::fromStdString(audio.error().message));
        if (cancel->load()) return void(outcome->error = QStringLiteral("cancelled"));
        wb::TranscribeOptions options;
        options.cancel = cancel.get();
        auto t = outcome->asr->transcribe(*audio, options, outcome->vad.get(), [this](double f) {
            QMetaObject::invokeMethod(this, [this, f] { Q_EMIT transcriptionProgress(f); }, Qt::QueuedConnection);
        });
        if (!t) return void(outcome->error = QString::fromStdString(t.error().message));
        outcome->text = QString::fromStdString(t->text);
    };
    auto* watcher = new QFutureWatcher<void>(this);
    connect(watcher, &QFutureWatcher<void>::finished, this, [this, watcher, outcome] {
        watcher->deleteLater();
        m_transcribing = false;
        m_cancel.reset();
        m_asr = outcome->asr;
        m_vad = outcome->vad;
        if (outcome->error.isEmpty()) {
            showClip(m_audioPath, m_clip);
        } else if (outcome->error == QLatin1String("cancelled")) {
            showClip(m_audioPath, m_clip);  // the clip stays, to transcribe again
            m_audioLabel->setText(tr("Transcription cancelled — %1").arg(m_audioLabel->text()));
        } else {
            showAudioError(outcome->error);
        }
        updateEnabled();
        Q_EMIT transcriptionFinished(outcome->text, outcome->error);
    });
    m_transcribeFuture = QtConcurrent::run(std::move(job));
    watcher->setFuture(m_transcribeFuture);
    return true;
}

void InputPanel::cancelTranscription() {
    if (m_cancel) m_cancel->store(true);
}

void InputPanel::setVoiceOnly(bool on) {
    m_voiceOnly = on;
    m_list->setVisible(!on);
    m_addImage->setVisible(!on);
    m_remove->setVisible(!on);
    if (on) m_images = false;
    updateEnabled();
}

int InputPanel::imageCount() const { return m_list->count(); }

QWidget* InputPanel::showFullSize(int row) {
    if (row < 0 || row >= m_list->count()) return nullptr;
    return ImageViewer::open(m_list->item(row)->data(kImagePathRole).toString(), this);
}

bool InputPanel::canAccept(const QMimeData* md) const {
    if (!md) return false;
    const bool audioIn = m_audio || !m_asrPath.isEmpty();
    bool ok = m_images && md->hasImage();
    for (const QUrl& u : md->urls())
        ok = ok || (m_images && isImagePath(u.toLocalFile())) || (audioIn && isAudioPath(u.toLocalFile()));
    return ok;
}

void InputPanel::dropMime(const QMimeData* md) {
    for (const QUrl& u : md->urls()) {
        const QString f = u.toLocalFile();
        if (isImagePath(f)) {
            addImageFile(f);
        } else if (isAudioPath(f) && setAudioFile(f)) {
            // Speech dropped in is meant as words: transcribed into the prompt unless the setting says not.
            if (m_transcribeOnDrop && !m_asrPath.isEmpty()) m_autoTranscribe = f;
        }
    }
    if (md->urls().isEmpty() && md->hasImage()) addImage(qvariant_cast<QImage>(md->imageData()));
}

void InputPanel::dragEnterEvent(QDragEnterEvent* e) {
    if (canAccept(e->mimeData())) e->acceptProposedAction();
}

void InputPanel::dropEvent(QDropEvent* e) {
    dropMime(e->mimeData());
    e->acceptProposedAction();
}

}  // namespace wbgui
