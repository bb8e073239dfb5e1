// Decoded audio held in memory: what the input panel shows as a waveform, plays and hands to the chat. Files are
// decoded by the engine's decoder (wb::loadAudioFile over engine/audio/audio_decode, libsndfile: WAV, FLAC, OGG
// Vorbis, MP3) and recordings written with libsndfile, rather than QAudioDecoder, because on Debian 12's Qt 6.4
// the default GStreamer backend fails MP3 unless the output format is forced (losing the file's own rate and
// channels) and the FFmpeg backend never reports an error for a corrupt file. Qt Multimedia is used for the
// devices: the microphone (QAudioSource) and playback (QAudioSink).
#pragma once

#include <QString>
#include <QVector>

namespace wbgui {

struct AudioClip {
    QVector<float> samples;  // interleaved, -1..1
    int sampleRate = 0;
    int channels = 0;
    QString error;  // set when decoding failed; the rest is then empty

    qint64 frames() const { return channels > 0 ? samples.size() / channels : 0; }
    double durationSec() const { return sampleRate > 0 ? double(frames()) / sampleRate : 0.0; }
    bool isValid() const { return error.isEmpty() && sampleRate > 0 && channels > 0; }
};

/// Peak envelope of a clip, for drawing.
struct Waveform {
    QVector<float> peaks;  // max |sample| per bucket, 0..1
    int sampleRate = 0;
    int channels = 0;
    double durationSec = 0;
    QString error;
};

/// Decodes a WAV, FLAC, OGG Vorbis or MP3 file (the format is taken from the content, not the name) with the
/// engine's decoder. Blocking: the panel runs it on a pool thread. A file that cannot be read, is not audio, or
/// ends before the length its header gives comes back with `error` naming the file and the cause.
AudioClip decodeAudioFile(const QString& path);

/// Writes `clip` in the format the suffix names (wav: 16-bit PCM, flac, ogg: Vorbis, mp3). Returns an empty string
/// or the error.
QString writeAudioFile(const AudioClip& clip, const QString& path);

Waveform waveformOf(const AudioClip& clip, int buckets = 400);

/// decodeAudioFile + waveformOf, for callers that only draw.
Waveform readWaveform(const QString& path, int buckets = 400);

}  // namespace wbgui
