#include "audio/audio_decode.h"

#include <sndfile.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

namespace wb::audio {

namespace {

// libsndfile's virtual I/O over a byte span: the decoders never see a file descriptor.
struct MemReader {
    std::span<const uint8_t> bytes;
    sf_count_t pos = 0;
};

sf_count_t vioLength(void* user) {
    return sf_count_t(static_cast<MemReader*>(user)->bytes.size());
}
sf_count_t vioSeek(sf_count_t offset, int whence, void* user) {
    auto* r = static_cast<MemReader*>(user);
    sf_count_t base = whence == SEEK_CUR ? r->pos : whence == SEEK_END ? sf_count_t(r->bytes.size()) : 0;
    sf_count_t to = base + offset;
    if (to < 0) return -1;
    r->pos = std::min<sf_count_t>(to, sf_count_t(r->bytes.size()));
    return r->pos;
}
sf_count_t vioRead(void* ptr, sf_count_t count, void* user) {
    auto* r = static_cast<MemReader*>(user);
    if (count <= 0 || r->pos >= sf_count_t(r->bytes.size())) return 0;
    const sf_count_t n = std::min<sf_count_t>(count, sf_count_t(r->bytes.size()) - r->pos);
    std::memcpy(ptr, r->bytes.data() + r->pos, size_t(n));
    r->pos += n;
    return n;
}
sf_count_t vioWrite(const void*, sf_count_t, void*) {
    return 0;
}
sf_count_t vioTell(void* user) {
    return static_cast<MemReader*>(user)->pos;
}

struct SndCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};

}  // namespace

Result<AudioData> decodeAudio(std::span<const uint8_t> bytes, const std::string& what, const AudioLimits& limits) {
    auto fail = [&](const std::string& why) { return makeError(what + ": " + why); };
    if (bytes.empty()) return fail("the file is empty");
    MemReader reader{bytes, 0};
    SF_VIRTUAL_IO vio{vioLength, vioSeek, vioRead, vioWrite, vioTell};
    SF_INFO info{};
    std::unique_ptr<SNDFILE, SndCloser> f(sf_open_virtual(&vio, SFM_READ, &info, &reader));
    if (!f) return fail("not a WAV, FLAC, OGG Vorbis or MP3 file that can be decoded");
    if (info.channels <= 0 || info.samplerate <= 0)
        return fail("no audio stream (" + std::to_string(info.samplerate) + " Hz, " + std::to_string(info.channels) +
                    " channels)");
    if (info.channels > limits.maxChannels)
        return fail(std::to_string(info.channels) + " channels (at most " + std::to_string(limits.maxChannels) + ")");
    if (info.samplerate > limits.maxSampleRate || info.samplerate < 1000)
        return fail("unsupported sample rate " + std::to_string(info.samplerate) + " Hz");
    const int64_t maxFrames = int64_t(limits.maxDurationSec * info.samplerate);
    AudioData out;
    out.sampleRate = info.samplerate;
    out.channels = info.channels;
    // The header's frame count may lie (a WAV whose data size exceeds the file): it bounds the reservation only
    // when plausible for the bytes there are, and decoding reads to the end whatever it says.
    if (info.frames > 0 && info.frames <= maxFrames && uint64_t(info.frames) <= bytes.size() * 16)
        out.samples.reserve(size_t(info.frames) * size_t(info.channels));
    std::vector<float> chunk(size_t(4096) * size_t(info.channels));
    sf_count_t got = 0;
    while ((got = sf_readf_float(f.get(), chunk.data(), 4096)) > 0) {
        if (out.frames() + got > maxFrames)
            return fail("longer than the limit of " + std::to_string(int64_t(limits.maxDurationSec)) + " s");
        out.samples.insert(out.samples.end(), chunk.begin(), chunk.begin() + got * info.channels);
    }
    if (sf_error(f.get()) != SF_ERR_NO_ERROR) return fail(sf_strerror(f.get()));
    if (out.frames() == 0) return fail("no audio frames could be decoded");
    // A truncated file decodes its first part without complaint; one far shorter than its header promises is
    // refused rather than transcribed cut.
    if (info.frames > 0 && info.frames < (sf_count_t(1) << 40) && out.frames() < info.frames * 9 / 10)
        return fail("corrupt or truncated: decoded " + std::to_string(out.frames()) + " of " +
                    std::to_string(info.frames) + " frames");
    for (float& s : out.samples)
        if (!(s >= -1.0f && s <= 1.0f)) s = s > 1.0f ? 1.0f : s < -1.0f ? -1.0f : 0.0f;  // NaN -> 0, clipped
    return out;
}

Result<AudioData> decodeAudioFile(const std::string& path, const AudioLimits& limits) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return makeError(path + ": cannot open the file");
    const std::streamoff size = in.tellg();
    if (size < 0) return makeError(path + ": cannot read the file");
    // Encoded audio is at most ~1.5 MB/s (24-bit 8-channel 48 kHz is more, but refused by length later).
    if (double(size) > limits.maxDurationSec * 8.0 * 192'000 + 1e6)
        return makeError(path + ": the file is larger than the longest audio accepted");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
        return makeError(path + ": cannot read the file");
    return decodeAudio(bytes, path, limits);
}

Result<void> writeWav16(const std::string& path, std::span<const float> samples, int sampleRate, int channels) {
    if (sampleRate <= 0 || channels <= 0 || samples.size() % size_t(channels) != 0)
        return makeError(path + ": invalid audio to write");
    SF_INFO info{};
    info.samplerate = sampleRate;
    info.channels = channels;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    std::unique_ptr<SNDFILE, SndCloser> f(sf_open(path.c_str(), SFM_WRITE, &info));
    if (!f) return makeError(path + ": " + sf_strerror(nullptr));
    sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const sf_count_t frames = sf_count_t(samples.size() / size_t(channels));
    if (sf_writef_float(f.get(), samples.data(), frames) != frames)
        return makeError(path + ": " + sf_strerror(f.get()));
    return {};
}

}  // namespace wb::audio
