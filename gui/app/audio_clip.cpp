#include "app/audio_clip.h"

#include <QFile>
#include <QFileInfo>
#include <cmath>
#include <memory>
#include <sndfile.h>

namespace wbgui {

namespace {

struct SndCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndFile = std::unique_ptr<SNDFILE, SndCloser>;

}  // namespace

AudioClip decodeAudioFile(const QString& path) {
    AudioClip clip;
    auto fail = [&](const QString& why) {
        AudioClip bad;
        bad.error = path + QStringLiteral(": ") + why;
        return bad;
    };
    // libsndfile's own message for a file it cannot place is sometimes "does not exist" even when it does (its
    // MP3 probe overwrites the error), so the file itself is checked first and its message kept only then.
    QFile probe(path);
    if (!probe.open(QIODevice::ReadOnly)) return fail(probe.errorString());
    if (probe.size() == 0) return fail(QStringLiteral("the file is empty"));
    probe.close();

    SF_INFO info{};
    SndFile f(sf_open(QFile::encodeName(path).constData(), SFM_READ, &info));
    if (!f) return fail(QStringLiteral("not a WAV, FLAC, OGG Vorbis or MP3 file that can be decoded"));
    if (info.channels <= 0 || info.samplerate <= 0)
        return fail(QStringLiteral("no audio stream (%1 Hz, %2 channels)").arg(info.samplerate).arg(info.channels));
    // Read to the end rather than trusting info.frames: for MP3 it is an estimate.
    clip.sampleRate = info.samplerate;
    clip.channels = info.channels;
    if (info.frames > 0 && info.frames < (sf_count_t(1) << 31)) clip.samples.reserve(info.frames * info.channels);
    QVector<float> chunk(4096 * info.channels);
    sf_count_t read = 0;
    while ((read = sf_readf_float(f.get(), chunk.data(), 4096)) > 0)
        clip.samples.append(chunk.cbegin(), chunk.cbegin() + read * info.channels);
    if (sf_error(f.get()) != SF_ERR_NO_ERROR) return fail(QString::fromLocal8Bit(sf_strerror(f.get())));
    if (clip.frames() == 0) return fail(QStringLiteral("no audio frames could be decoded"));
    // A truncated file decodes its first part without complaint; a clip far shorter than the header promises
    // would be attached silently cut, so it is refused.
    if (info.frames > 0 && clip.frames() < info.frames * 9 / 10)
        return fail(QStringLiteral("corrupt or truncated: decoded %1 of %2 frames").arg(clip.frames()).arg(info.frames));
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
