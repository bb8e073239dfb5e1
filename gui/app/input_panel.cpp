#include "app/input_panel.h"

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
#include <QMimeData>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QVBoxLayout>
#include <QtEndian>
#include <cmath>

namespace wbgui {

static bool isImagePath(const QString& p) {
    const QString s = QFileInfo(p).suffix().toLower();
    return QImageReader::supportedImageFormats().contains(s.toLatin1());
}

static bool isAudioPath(const QString& p) {
    static const QStringList kAudio = {"wav", "flac", "ogg", "mp3"};
    return kAudio.contains(QFileInfo(p).suffix().toLower());
}

Waveform readWaveform(const QString& path, int buckets) {
    Waveform w;
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        w.error = path + QStringLiteral(": ") + f.errorString();
        return w;
    }
    const QByteArray data = f.readAll();
    if (data.size() < 12 || !data.startsWith("RIFF") || data.mid(8, 4) != "WAVE") {
        w.error = path + QStringLiteral(": not a WAV file (FLAC, OGG and MP3 need Qt Multimedia, not in this build)");
        return w;
    }
    int format = 0, bits = 0;
    qsizetype pos = 12, dataPos = -1, dataLen = 0;
    while (pos + 8 <= data.size()) {
        const QByteArray id = data.mid(pos, 4);
        const quint32 len = qFromLittleEndian<quint32>(data.constData() + pos + 4);
        if (id == "fmt " && pos + 24 <= data.size()) {
            format = qFromLittleEndian<quint16>(data.constData() + pos + 8);
            w.channels = qFromLittleEndian<quint16>(data.constData() + pos + 10);
            w.sampleRate = int(qFromLittleEndian<quint32>(data.constData() + pos + 12));
            bits = qFromLittleEndian<quint16>(data.constData() + pos + 22);
            if (format == 0xFFFE && len >= 26) format = qFromLittleEndian<quint16>(data.constData() + pos + 32);
        } else if (id == "data") {
            dataPos = pos + 8;
            dataLen = qMin<qsizetype>(len, data.size() - dataPos);
            break;
        }
        pos += 8 + len + (len & 1);
    }
    if (dataPos < 0 || w.channels <= 0 || w.sampleRate <= 0 || !(format == 1 || (format == 3 && bits == 32)) ||
        !(bits == 8 || bits == 16 || bits == 24 || bits == 32)) {
        w.error = path + QStringLiteral(": unsupported WAV layout (format %1, %2 bits)").arg(format).arg(bits);
        return w;
    }
    const int bytes = bits / 8;
    const qsizetype frames = dataLen / (bytes * w.channels);
    w.durationSec = double(frames) / w.sampleRate;
    w.peaks.fill(0.0f, qMax(1, buckets));
    const char* p = data.constData() + dataPos;
    for (qsizetype i = 0; i < frames * w.channels; ++i) {
        const char* s = p + i * bytes;
        float v = 0;
        if (format == 3) v = qFromLittleEndian<float>(s);
        else if (bits == 8) v = (quint8(*s) - 128) / 128.0f;
        else if (bits == 16) v = qFromLittleEndian<qint16>(s) / 32768.0f;
        else if (bits == 24) v = float(qint32(quint32(quint8(s[0])) << 8 | quint32(quint8(s[1])) << 16 | quint32(quint8(s[2])) << 24) >> 8) / 8388608.0f;
        else v = qFromLittleEndian<qint32>(s) / 2147483648.0f;
        const qsizetype bucket = (i / w.channels) * w.peaks.size() / qMax<qsizetype>(1, frames);
        w.peaks[bucket] = qMax(w.peaks[bucket], std::fabs(v));
    }
    return w;
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
    m_audioLabel = new QLabel;
    m_wave = new WaveformWidget;
    m_wave->hide();
    auto* buttons = new QVBoxLayout;
    buttons->addWidget(m_addImage);
    buttons->addWidget(m_addAudio);
    buttons->addWidget(m_remove);
    auto* audio = new QVBoxLayout;
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
    connect(m_list, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) { showFullSize(m_list->row(item)); });
    setCapabilities(false, false, tr("No model is loaded."));
}

void InputPanel::setCapabilities(bool images, bool audio, const QString& reason) {
    m_images = images;
    m_audio = audio;
    m_reason = reason;
    updateEnabled();
}

void InputPanel::updateEnabled() {
    m_addImage->setEnabled(m_images);
    m_addImage->setToolTip(m_images ? tr("Attach images (or drop or paste them here)") : m_reason);
    m_addAudio->setEnabled(m_audio);
    m_addAudio->setToolTip(m_audio ? tr("Attach a WAV, FLAC, OGG or MP3 file") : m_reason);
    m_list->setToolTip(m_images ? tr("Double-click for the full-size view") : m_reason);
    setAcceptDrops(m_images || m_audio);
    m_remove->setEnabled(m_list->count() > 0 || !m_audioPath.isEmpty());
}

bool InputPanel::addImageFile(const QString& path) {
    if (!m_images) return false;
    QImageReader reader(path);
    reader.setAutoTransform(true);
    const QImage img = reader.read();
    if (img.isNull()) return false;
    auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(img.scaled(112, 112, Qt::KeepAspectRatio, Qt::SmoothTransformation))),
                                     QFileInfo(path).fileName());
    item->setData(Qt::UserRole, path);
    item->setToolTip(QStringLiteral("%1 (%2×%3)").arg(path).arg(img.width()).arg(img.height()));
    m_list->addItem(item);
    updateEnabled();
    Q_EMIT attachmentsChanged();
    return true;
}

bool InputPanel::addImage(const QImage& image) {
    if (!m_images || image.isNull()) return false;
    QDir().mkpath(m_pasteDir);
    const QString path = m_pasteDir + QStringLiteral("/pasted-%1.png").arg(QDateTime::currentMSecsSinceEpoch());
    if (!image.save(path)) return false;
    return addImageFile(path);
}

bool InputPanel::setAudioFile(const QString& path) {
    if (!m_audio) return false;
    const Waveform w = readWaveform(path);
    m_audioPath = path;
    m_audioLabel->setText(w.error.isEmpty()
                              ? tr("%1 — %2 s, %3 Hz, %4 ch").arg(QFileInfo(path).fileName()).arg(w.durationSec, 0, 'f', 1)
                                    .arg(w.sampleRate).arg(w.channels)
                              : w.error);
    m_wave->setWaveform(w);
    m_wave->setVisible(w.error.isEmpty());
    updateEnabled();
    Q_EMIT attachmentsChanged();
    return true;
}

void InputPanel::removeSelected() {
    if (QListWidgetItem* item = m_list->currentItem()) {
        delete item;
    } else if (!m_audioPath.isEmpty()) {
        m_audioPath.clear();
        m_audioLabel->clear();
        m_wave->hide();
    }
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

void InputPanel::clear() {
    m_list->clear();
    m_audioPath.clear();
    m_audioLabel->clear();
    m_wave->hide();
    updateEnabled();
    Q_EMIT attachmentsChanged();
}

QStringList InputPanel::attachments() const {
    QStringList out;
    for (int i = 0; i < m_list->count(); ++i) out.append(m_list->item(i)->data(Qt::UserRole).toString());
    if (!m_audioPath.isEmpty()) out.append(m_audioPath);
    return out;
}

int InputPanel::imageCount() const { return m_list->count(); }

QWidget* InputPanel::showFullSize(int row) {
    if (row < 0 || row >= m_list->count()) return nullptr;
    const QString path = m_list->item(row)->data(Qt::UserRole).toString();
    auto* dialog = new QDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->setWindowTitle(QFileInfo(path).fileName());
    auto* label = new QLabel;
    label->setPixmap(QPixmap(path));
    auto* scroll = new QScrollArea;
    scroll->setWidget(label);
    (new QVBoxLayout(dialog))->addWidget(scroll);
    dialog->resize(800, 600);
    dialog->show();
    return dialog;
}

void InputPanel::dragEnterEvent(QDragEnterEvent* e) {
    const QMimeData* md = e->mimeData();
    bool ok = m_images && md->hasImage();
    for (const QUrl& u : md->urls())
        ok = ok || (m_images && isImagePath(u.toLocalFile())) || (m_audio && isAudioPath(u.toLocalFile()));
    if (ok) e->acceptProposedAction();
}

void InputPanel::dropEvent(QDropEvent* e) {
    const QMimeData* md = e->mimeData();
    for (const QUrl& u : md->urls()) {
        const QString f = u.toLocalFile();
        if (isImagePath(f)) addImageFile(f);
        else if (isAudioPath(f)) setAudioFile(f);
    }
    if (md->urls().isEmpty() && md->hasImage()) addImage(qvariant_cast<QImage>(md->imageData()));
    e->acceptProposedAction();
}

}  // namespace wbgui
