#include "app/audio_clip.h"

#include <QFile>
#include <QFileInfo>
#include <cmath>
#include <memory>
#include <sndfile.h>

#include "api/speech.h"

namespace wbgui {

namespace {

struct SndCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndFile = std::unique_ptr<SNDFILE, SndCloser>;

}  // namespace

AudioClip decodeAudioFile(const QString& path) {
    // The engine's decoder (engine/audio/audio_decode through api/speech.h: libsndfile from memory, the length
    // limit, a WAV header that lies refused): one decoder for the GUI, `wb transcribe` and the server.
    auto r = wb::loadAudioFile(QFile::encodeName(path).toStdString());
    AudioClip clip;
    if (!r) {
        clip.error = QString::fromStdString(r.error().message);
        return clip;
    }
    clip.samples = QVector<float>(r->samples.begin(), r->samples.end());
    clip.sampleRate = r->sampleRate;
    clip.channels = r->channels;
    return clip;
}

QString writeAudioFile(const AudioClip& clip, const QString& path) {
    if (!clip.isValid()) return QStringLiteral("nothing to write");
    const QString suffix = QFileInfo(path).suffix().toLower();
    SF_INFO info{};
    info.samplerate = clip.sampleRate;
    info.channels = clip.channels;
    if (suffix == QLatin1String("wav")) info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    else if (suffix == QLatin1String("flac")) info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    else if (suffix == QLatin1String("ogg")) info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    else if (suffix == QLatin1String("mp3")) info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    else return path + QStringLiteral(": unknown audio suffix (wav, flac, ogg or mp3)");
    if (!sf_format_check(&info)) return path + QStringLiteral(": this libsndfile cannot write %1").arg(suffix);
    SndFile f(sf_open(QFile::encodeName(path).constData(), SFM_WRITE, &info));
    if (!f) return path + QStringLiteral(": ") + QString::fromLocal8Bit(sf_strerror(nullptr));
    // Float input is clipped rather than wrapped when it reaches ±1 (a loud microphone).
    sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    if (sf_writef_float(f.get(), clip.samples.constData(), clip.frames()) != clip.frames())
        return path + QStringLiteral(": ") + QString::fromLocal8Bit(sf_strerror(f.get()));
    return QString();
}

Waveform waveformOf(const AudioClip& clip, int buckets) {
    Waveform w;
    w.error = clip.error;
    if (!clip.isValid()) return w;
    w.sampleRate = clip.sampleRate;
    w.channels = clip.channels;
    w.durationSec = clip.durationSec();
    w.peaks.fill(0.0f, qMax(1, buckets));
    const qsizetype frames = clip.frames();
    const float* s = clip.samples.constData();
    for (qsizetype i = 0; i < frames * clip.channels; ++i) {
        const qsizetype bucket = (i / clip.channels) * w.peaks.size() / qMax<qsizetype>(1, frames);
        w.peaks[bucket] = qMax(w.peaks[bucket], qMin(1.0f, std::fabs(s[i])));
    }
    return w;
}

Waveform readWaveform(const QString& path, int buckets) { return waveformOf(decodeAudioFile(path), buckets); }

}  // namespace wbgui
